"""What a new user trips on in the first hour: each case here once surprised someone (issue 16)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from IPython.core.error import UsageError
from shell_helpers import DATA, FEATURES, MODEL, VALIDATION

import mlops_nb as mnb
from mlops_nb.cli import main


def test_logging_after_the_run_ended_is_refused_not_a_silent_new_run(shell, store_path):
    shell.run(f"%mlops start churn --store {store_path}")
    shell.run("%mlops end")
    result = shell.run("%mlops log f1=0.9", check=False)
    assert isinstance(result.error_in_exec, UsageError)
    assert "has ended (finished); start a new run with `%mlops start`" in str(result.error_in_exec)
    assert len(mnb.runs(store=store_path)) == 1  # no second run appeared


def test_a_number_too_large_for_a_float_is_refused_by_the_magic_and_the_api_alike(shell, store_path):
    shell.run(f"%mlops start churn --store {store_path}")
    result = shell.run("%mlops log big=" + "9" * 400, check=False)
    assert isinstance(result.error_in_exec, UsageError) and "too large for a float" in str(result.error_in_exec)
    with mnb.start("churn", store=store_path) as run, pytest.raises(mnb.InvalidValue, match="too large for a float"):
        run.log_metric("big", 10**400)
    assert "metrics.big" not in mnb.runs(store=store_path).columns  # neither stored inf


def test_a_requirement_on_a_metric_validation_never_produces_is_said_at_validation(shell, store_path, capsys):
    shell.run(f"%mlops start churn --store {store_path}")
    shell.run("%mlops require zzz >= 0.5 --target churned")
    for cell in (DATA, FEATURES, MODEL.format(C=1.0)):
        shell.run(cell)
    capsys.readouterr()
    shell.run(VALIDATION)
    said = capsys.readouterr().out
    assert "the requirement's metric 'zzz' was not produced by this validation cell (it produced f1)" in said


def test_the_help_describes_the_demo_as_it_is():
    help_text = CliRunner().invoke(main, ["--help"]).output
    assert "three scikit-learn models" not in help_text
    assert "exports its model and retrains it once" in " ".join(help_text.split())
