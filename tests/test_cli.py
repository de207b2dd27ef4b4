"""The `mlops-nb` command line, driven like a user would: record runs, then read them back."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import mlops_nb as mnb
from mlops_nb import store as store_module
from mlops_nb.cli import main
from mlops_nb.stages import STAGES

SCRIPT = Path(sys.executable).parent / "mlops-nb"


@pytest.fixture(autouse=True)
def _close_stores():
    yield
    store_module.close_all()


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    """A store path for this test, made the default through $MLOPS_NB_STORE."""
    path = tmp_path / "mlops.db"
    monkeypatch.setenv("MLOPS_NB_STORE", str(path))
    return path


@pytest.fixture
def recorded(db_path):
    """Three runs in two projects, recorded through the public API; their ids, oldest first."""
    ids = []
    with mnb.start("churn", name="lr", store=db_path) as run:
        run.log_params({"C": 0.5, "model": "lr"})
        for step, loss in enumerate([0.9, 0.6, 0.4]):
            run.log_metric("loss", loss, step=step)
        run.log_metric("f1", 0.81)
        run.set_tag("team", "growth")
        ids.append(run.id)
    with mnb.start("churn", name="rf", store=db_path) as run:
        run.log_params({"n_estimators": 200, "model": "rf"})
        run.log_metric("f1", 0.93)
        ids.append(run.id)
    with mnb.start("fraud", name="gb", store=db_path) as run:
        run.log_metric("f1", float("nan"))
        ids.append(run.id)
    return ids


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_runs_table_lists_runs_newest_first_with_params_and_metrics(recorded, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    result = invoke("runs")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = lines[0].split()
    # who and when, the metrics most runs have (no requirement stated), the param that differs
    assert header == ["run_id", "project", "name", "kind", "status", "start_time", "duration", "f1", "loss",
                      "params.model"]
    assert [line.split()[0] for line in lines[1:]] == [str(i) for i in reversed(recorded)]
    lr_row = lines[-1]
    assert "lr" in lr_row and "script" in lr_row and "0.81" in lr_row and "0.4" in lr_row
    # local time to the second, and missing values as '-' rather than NaN / None
    assert re.search(r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", lr_row)
    assert "NaN" not in result.stdout and "None" not in result.stdout
    assert " - " in lines[1]
    assert "more columns: --columns NAME,... picks some, --all shows every one" in result.stderr

    every = invoke("runs", "--all")
    assert every.exit_code == 0 and not every.stderr
    assert {"params.C", "params.n_estimators", "metrics.f1", "tags.team", "end_time"} <= set(
        every.stdout.splitlines()[0].split())
    assert "growth" in every.stdout


def test_runs_table_fits_the_terminal_and_names_what_it_left_out(recorded, monkeypatch):
    monkeypatch.setenv("COLUMNS", "44")
    result = invoke("runs")
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 44
    assert {"run_id", "name", "status"} <= set(lines[0].split())
    assert "more columns" in result.stderr


def test_runs_table_shows_the_requirement_metric_and_whole_numbers(db_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    for name, depth, auc in (("shallow", 2, 0.7), ("deep", 8, 0.9)):
        with mnb.start("churn", name=name, store=db_path) as run:
            run.log_params({"depth": depth, "seed": 0})
            run.log_metrics({"accuracy": 0.5, "loss": 0.3, "auc": auc})
    with mnb.start("churn", name="unfinished", store=db_path) as run:
        run.log_metric("accuracy", 0.4)
    from mlops_nb.stages import parse_requirement
    from mlops_nb.tracking import lifecycle

    lifecycle.set_requirement(mnb.get_run(2, store=db_path), parse_requirement("auc >= 0.8"))
    result = invoke("runs")
    header = result.stdout.splitlines()[0].split()
    assert "auc" in header and "params.depth" in header
    assert "params.seed" not in header  # the same in every run, so it tells nothing
    # a param logged as 8 reads 8, not 8.0, although the third run's missing depth made it float
    assert re.search(r" deep .* 8$", result.stdout.splitlines()[2])
    assert json.loads(invoke("runs", "-f", "json").stdout)[1]["params.depth"] == 8
    assert invoke("runs", "--all", "--columns", "f1").exit_code == 2


def test_runs_csv_is_machine_readable(recorded):
    result = invoke("runs", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["run_id"]) for r in rows] == list(reversed(recorded))
    by_name = {r["name"]: r for r in rows}
    assert float(by_name["rf"]["metrics.f1"]) == 0.93
    assert by_name["gb"]["metrics.f1"] == ""
    assert by_name["lr"]["params.model"] == "lr"
    assert by_name["lr"]["start_time"].endswith("+00:00") and "T" in by_name["lr"]["start_time"]


def test_runs_json_has_nulls_and_iso_times(recorded):
    result = invoke("runs", "--format", "json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["run_id"] for r in records] == list(reversed(recorded))
    gb, rf, lr = records
    assert gb["metrics.f1"] is None and gb["params.C"] is None
    assert rf["metrics.f1"] == 0.93 and rf["params.n_estimators"] == 200
    assert lr["metrics.loss"] == 0.4 and lr["tags.team"] == "growth" and lr["kind"] == "script"
    assert lr["duration"] >= 0
    for moment in (lr["start_time"], lr["end_time"]):
        assert moment.endswith("+00:00")
    assert "NaN" not in result.stdout


def test_runs_project_where_columns_limit(recorded):
    lr, rf, gb = recorded
    result = invoke("runs", "--project", "churn", "--format", "json")
    assert [r["run_id"] for r in json.loads(result.stdout)] == [rf, lr]

    result = invoke("runs", "--where", "metrics.f1 > 0.9", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [r["run_id"] for r in json.loads(result.stdout)] == [rf]

    result = invoke("runs", "--where", "params.model = 'lr' or project = 'fraud'", "--format", "json")
    assert [r["run_id"] for r in json.loads(result.stdout)] == [gb, lr]

    result = invoke("runs", "--columns", "metrics.f1,C", "--format", "json", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"run_id": gb, "metrics.f1": None, "params.C": None},
        {"run_id": rf, "metrics.f1": 0.93, "params.C": None},
    ]

    result = invoke("runs", "--columns", "name,f1")
    assert result.stdout.split("\n")[0].split() == ["run_id", "name", "metrics.f1"]


def test_runs_where_matching_nothing_says_so(recorded):
    result = invoke("runs", "--where", "metrics.f1 > 0.99")
    assert result.exit_code == 0
    assert "no runs match 'metrics.f1 > 0.99'" in result.stdout
    assert json.loads(invoke("runs", "--where", "metrics.f1 > 0.99", "-f", "json").stdout) == []


def test_bad_where_expression_points_at_the_token(recorded):
    result = invoke("runs", "--where", "metrics.f1 >> 0.8")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ")
    expression_line, caret_line = lines[-2], lines[-1]
    assert expression_line.strip() == "metrics.f1 >> 0.8"
    assert expression_line[caret_line.index("^")] == ">"
    assert "Traceback" not in result.output


def test_unknown_where_column_lists_the_columns(recorded):
    result = invoke("runs", "--where", "metrics.f2 > 0.8")
    assert result.exit_code == 1
    assert "unknown column 'metrics.f2'" in result.stderr and "metrics.f1" in result.stderr


def test_unknown_column_is_a_usage_error(recorded):
    result = invoke("runs", "--columns", "metrics.nope")
    assert result.exit_code == 2
    assert "no column 'metrics.nope'" in result.stderr and "metrics.f1" in result.stderr


def test_show_prints_params_metrics_tags(recorded):
    lr = recorded[0]
    result = invoke("show", str(lr))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"run {lr}  lr  (script run in project churn)  finished")
    assert "params\n" in out and "  C      0.5" in out and "  model  lr" in out
    assert "metrics\n" in out and "  f1    0.81" in out and "  loss  0.4" in out
    assert "tags\n  team  growth" in out
    assert "stages: none" in out and "integrity warnings: none" in out


def test_show_lifecycle_records(recorded):
    """Stages, requirement, gates and warnings as the lifecycle writers store them."""
    run_id = recorded[1]
    from mlops_nb.store.writer import Writer

    opened = Writer(store_module.open_store())
    now = time.time()
    with opened.transaction():
        for stage, status, duration, error in [("data", "ok", 0.25, None),
                                               ("model", "error", 75.0, "Traceback...\nValueError: bad X"),
                                               ("model", "ok", 3.5, None)]:
            stage_id = opened.begin_stage(run_id, stage, source="x = 1", source_sha256="0" * 64, cell_id=None,
                                          execution_count=None, start_time=now)
            gate = ({"metric": "f1", "op": ">=", "threshold": 0.85, "value": 0.93, "passed": 1}
                    if (stage, status) == ("model", "ok") else None)
            opened.finish_stage(run_id, stage_id, duration=duration, status=status, error=error, variables=[],
                                captures=[], metrics={}, params={}, gate=gate)
        opened.set_requirement(run_id, metric="f1", op=">=", threshold=0.85, target="churned", notes=None)
        opened.replace_warnings(run_id, [{"kind": "edited", "stage": "model",
                                          "message": "model was edited after it ran"}])

    out = invoke("show", str(run_id)).stdout
    assert "stages\n  stage  attempt  status  duration" in out
    assert "  model  1        error   1m 15s    ValueError: bad X" in out
    assert "  model  2        ok      3.50 s" in out  # no stale warning: the latest attempt is ok
    assert "requirement: f1 >= 0.85, target churned" in out
    assert "  f1      0.93   >= 0.85      passed" in out
    assert "integrity warnings\n" in out and "edited  model  model was edited after it ran" in out

    details = json.loads(invoke("show", str(run_id), "--format", "json").stdout)
    ran = [s for s in details["stages"] if s["state"] != "not run"]
    assert [(s["stage"], len(s["attempts"])) for s in ran] == [("data", 1), ("model", 2)]
    assert [s["stage"] for s in details["stages"][:len(STAGES)]] == list(STAGES)  # every stage, in order
    assert details["gates"][0]["passed"] is True and details["requirement"]["target"] == "churned"
    assert details["stages"][1]["start_time"] == pytest.approx(now)  # epoch seconds, as the server gives


def test_show_json(recorded):
    gb = recorded[2]
    result = invoke("show", str(gb), "--format", "json")
    assert result.exit_code == 0, result.output
    details = json.loads(result.stdout)
    assert details["id"] == gb and details["project"] == "fraud"
    assert details["metrics"] == {"f1": None}
    assert isinstance(details["start_time"], float) and details["duration"] >= 0
    assert details["environment"]["python"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_commands_leave_the_store_bytes_unchanged(recorded, db_path):
    """`runs`, `show`, `projects`, `history`, `models` only read, even a run whose process is gone
    (shown interrupted, not written): the store file's SHA-256 stays the same."""
    import sqlite3

    store_module.close_all()
    with sqlite3.connect(db_path, isolation_level=None) as conn:  # as a kernel killed mid-run leaves its run
        conn.execute("UPDATE runs SET status = 'running', end_time = NULL, host = ?, pid = ?, pid_start = NULL"
                     " WHERE id = ?", (store_module._HOST, 2**31 - 1, recorded[0]))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = digest(db_path)
    for args in (["runs"], ["runs", "--format", "json"], ["show", str(recorded[0])],
                 ["show", str(recorded[0]), "--format", "json"], ["projects"], ["history", str(recorded[0]), "loss"],
                 ["models"], ["models", "--format", "json"]):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
        assert digest(db_path) == before, args
    view = json.loads(invoke("show", str(recorded[0]), "--format", "json").stdout)
    assert view["status"] == "interrupted" and "ended without ending the run" in view["error"]
    store_module.close_all()
    assert digest(db_path) == before


def test_show_unknown_run_is_a_clear_error(recorded):
    result = invoke("show", "999")
    assert result.exit_code == 1
    assert result.stderr == f"error: no run 999 in {store_module.resolve_path()}; list the runs with `mlops-nb runs`\n"
    assert invoke("show", "abc").exit_code == 2  # not a number: click's usage error


def test_projects(recorded):
    result = invoke("projects")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["project", "runs", "last_run"]
    assert lines[1].split()[:2] == ["fraud", "1"] and lines[2].split()[:2] == ["churn", "2"]
    records = json.loads(invoke("projects", "-f", "json").stdout)
    assert [(r["project"], r["runs"]) for r in records] == [("fraud", 1), ("churn", 2)]


def test_history(recorded):
    lr = recorded[0]
    result = invoke("history", str(lr), "loss", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [(r["step"], r["value"]) for r in json.loads(result.stdout)] == [(0, 0.9), (1, 0.6), (2, 0.4)]
    table = invoke("history", str(lr), "loss").stdout.splitlines()
    assert table[0].split() == ["step", "value", "time"] and len(table) == 4
    rows = list(csv.DictReader(io.StringIO(invoke("history", str(lr), "loss", "-f", "csv").stdout)))
    assert [float(r["value"]) for r in rows] == [0.9, 0.6, 0.4]


def test_history_of_an_unknown_metric_lists_the_metrics(recorded):
    result = invoke("history", str(recorded[0]), "acc")
    assert result.exit_code == 1
    assert result.stderr == f"error: run {recorded[0]} has no metric 'acc'; its metrics are: f1, loss\n"


@pytest.mark.parametrize("command", [["runs"], ["show", "1"], ["projects"], ["history", "1", "f1"]])
def test_missing_store_is_reported_not_created(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLOPS_NB_STORE", raising=False)
    result = invoke(*command)
    assert result.exit_code == 78  # bad configuration: no store there
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: no store at {tmp_path / 'mlops.db'}; create one with `mlops-nb demo`")
    assert list(tmp_path.iterdir()) == []

    elsewhere = tmp_path / "sub" / "other.db"
    result = invoke("--store", str(elsewhere), *command)
    assert result.exit_code == 78 and f"no store at {elsewhere};" in result.stderr
    assert not elsewhere.parent.exists()


def test_store_option_beats_the_environment(recorded, tmp_path):
    other = tmp_path / "other.db"
    with mnb.start("elsewhere", store=other):
        pass
    records = json.loads(invoke("--store", str(other), "runs", "-f", "json").stdout)
    assert [r["project"] for r in records] == ["elsewhere"]


def test_store_that_is_not_sqlite_is_an_error(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello")
    result = invoke("--store", str(bogus), "runs")
    assert result.exit_code == 78
    assert result.stderr.startswith(f"error: {bogus} is not an mlops-nb store")
    assert bogus.read_text() == "hello"


def test_every_command_has_help_with_an_example():
    assert invoke("--help").exit_code == 0  # lists, so imports, every command
    for name, command in main.commands.items():
        result = invoke(name, "--help")
        assert result.exit_code == 0, name
        assert result.stdout.startswith(f"Usage: mlops-nb {name} ")
        assert f"mlops-nb {name}" in result.stdout, f"{name} --help has no example"
        assert command.short_help, name


def test_demo_refuses_store_and_dir_together(tmp_path):
    result = invoke("--store", str(tmp_path / "a.db"), "demo", "--dir", str(tmp_path / "b"))
    assert result.exit_code == 2
    assert "give --dir, not --store" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_console_script_help_and_demo(tmp_path):
    """The README's main job, as a first-time user runs it: the installed `mlops-nb demo` executes the
    quickstart through every stage, exports it, and retrains once as cron would."""
    assert SCRIPT.exists(), "install the package (pip install -e .) to get the mlops-nb script"
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_NB_STORE"}
    help_run = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert help_run.returncode == 0 and "Usage: mlops-nb" in help_run.stdout

    demo = subprocess.run([str(SCRIPT), "demo"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    folder = tmp_path / "mlops-demo"
    store = folder / "mlops.db"
    assert f"Store: {store}" in demo.stdout
    assert "exit 0 (promoted)" in demo.stdout or "exit 99" in demo.stdout, demo.stdout
    # Nothing alarming that does not concern the user, and the closing hint is a command that runs from here.
    assert "WARNING" not in demo.stdout + demo.stderr and "Traceback" not in demo.stdout + demo.stderr
    hint = re.search(r"Look further: `(\S+) --store (\S+) show 1`", demo.stdout)
    assert hint, demo.stdout
    shown = subprocess.run([hint[1], "--store", hint[2], "show", "1"], capture_output=True, text=True, env=env,
                           cwd=tmp_path)
    assert shown.returncode == 0 and "quickstart" in shown.stdout, shown.stderr

    frame = mnb.runs(store=store)
    notebook_run, retraining_run = frame.to_dict("records")
    assert (notebook_run["kind"], notebook_run["status"]) == ("notebook", "finished")
    assert notebook_run["metrics.f1"] >= 0.95
    assert (retraining_run["kind"], retraining_run["status"]) == ("retraining", "finished")
    details = mnb.get_run(retraining_run["run_id"], store=store).store.run_details(retraining_run["run_id"])
    assert details["parent_id"] == notebook_run["run_id"]
    stages = [s["stage"] for s in mnb.get_run(notebook_run["run_id"], store=store).store.run_details(
        notebook_run["run_id"])["stages"]]
    assert stages == ["requirements", "data", "eda", "features", "selection", "model", "tuning", "validation",
                      "deployment"]

    import nbformat

    executed = nbformat.read(folder / "quickstart.ipynb", as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]
    assert (folder / "deploy" / "breast-cancer" / "current" / "MANIFEST.json").is_file()

    listing = subprocess.run([str(SCRIPT), "--store", str(store), "runs", "-f", "json"], capture_output=True,
                             text=True, env=env, cwd=tmp_path)
    assert len(json.loads(listing.stdout)) == 2
