"""The five front ends agree: one run whose model and validation went stale (the features cell ran
again after them) shows the same state per stage in the status widget, ``%mlops status --text``,
``mlops-nb show`` (text and JSON), the server's JSON and the JupyterLab sidebar in a real browser.

Also the view itself: a run whose process is gone reads as ``interrupted`` without a write, and
the formatting every front end shares.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3

import pytest
from browser import chromium_page, jupyter_lab, require_browser
from click.testing import CliRunner
from shell_helpers import FEATURES

import mlops_nb as mnb
from mlops_nb import format as formatting
from mlops_nb import store as store_module
from mlops_nb.cli import main
from mlops_nb.tracking.views import run_view, stage_states

EXPECTED = {"data": "ok", "features": "ok", "model": "stale", "validation": "stale"}


def ran(states: dict[str, str]) -> dict[str, str]:
    return {stage: state for stage, state in states.items() if state != "not run"}


@pytest.fixture
def stale_run(shell, capsys):
    """A lifecycle recorded by the in-process shell, then its features cell run again."""
    run = shell.lifecycle()
    shell.run(FEATURES)
    capsys.readouterr()
    return run


def test_the_five_front_ends_show_the_same_stale_stages(stale_run, shell, capsys, tmp_path):
    run_id = stale_run.id
    store = shell.store

    # 1. The status widget, shown by %mlops status (the session hands itself to the widget).
    shell.run(f"%mlops status {run_id}")
    from mlops_nb.notebook.session import session_for

    widget = session_for(shell.shell).views[-1]
    assert ran(widget.states) == EXPECTED
    assert "model is stale" in widget.html

    # 2. %mlops status --text.
    capsys.readouterr()
    shell.run(f"%mlops status {run_id} --text")
    text = capsys.readouterr().out
    text_states = dict(re.findall(r"^  (\w+)\s+(ok|error|stale|running)\s+attempt", text, re.M))
    assert text_states == EXPECTED, text
    shell.run("%mlops end")
    store_module.close_all()

    # 3. mlops-nb show, text and JSON.
    runner = CliRunner()
    shown = runner.invoke(main, ["--store", str(store), "show", str(run_id)])
    assert shown.exit_code == 0, shown.output
    block = shown.stdout.split("\nstages\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    latest = {}
    for line in block:
        stage, _attempt, state, *_ = line.split()
        latest[stage] = state  # the last line of a stage is its latest attempt
    assert latest == EXPECTED, shown.stdout
    as_json = runner.invoke(main, ["--store", str(store), "show", str(run_id), "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    view = json.loads(as_json.stdout)
    assert ran(stage_states(view)) == EXPECTED
    assert view == json.loads(json.dumps(run_view(store_module.open_store(store, readonly=True), run_id)))
    store_module.close_all()

    # 4 and 5. The server's JSON and the sidebar, from one real JupyterLab serving the store's folder.
    require_browser()
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    with jupyter_lab(tmp_path) as lab:
        status, served = lab.api(f"mlops-nb/api/runs/{run_id}")
        assert status == 200, served
        assert ran(stage_states(served)) == EXPECTED
        assert served["stages"] == view["stages"]

        with chromium_page(height=900) as page:
            page.goto(f"{lab.url}/lab?reset&token={lab.token}", timeout=120_000)
            page.wait_for_selector('li[data-id="mlops-nb-sidebar"]', timeout=120_000)
            page.click('li[data-id="mlops-nb-sidebar"]')
            sidebar = page.locator("#mlops-nb-sidebar")
            sidebar.locator(f'.mlops-run[data-run-id="{run_id}"]').click()
            detail = sidebar.locator(f'.mlops-run-detail[data-run-id="{run_id}"]')
            detail.wait_for()
            rows = detail.locator(".mlops-stage-row").evaluate_all(
                "rows => rows.map(r => [r.dataset.stage, r.dataset.state])")
            assert dict(rows) == EXPECTED
            model = detail.locator('.mlops-stage-row[data-stage="model"] .mlops-stage-status')
            assert model.get_attribute("title") == "stale" and model.inner_text() == "!"
            warnings = detail.locator(".mlops-stage-details .mlops-warning").all_inner_texts()
            assert any("model is stale" in w for w in warnings), warnings
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before


def test_a_run_whose_process_is_gone_reads_as_interrupted_and_nothing_is_written(store_path):
    with mnb.start("churn", name="killed", store=store_path) as run:
        run.log_metric("f1", 0.8)
    store_module.close_all()
    with sqlite3.connect(store_path, isolation_level=None) as conn:  # as a kernel killed mid-run leaves it
        conn.execute("UPDATE runs SET status = 'running', end_time = NULL, host = ?, pid = ?, pid_start = NULL",
                     (store_module._HOST, 2**31 - 1))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = hashlib.sha256(store_path.read_bytes()).hexdigest()
    view = run_view(store_module.open_store(store_path, readonly=True), run.id)
    assert view["status"] == "interrupted" and view["duration"] is None
    assert "ended without ending the run" in view["error"]
    assert set(stage_states(view).values()) == {"not run"}
    json.dumps(view, allow_nan=False)  # plain JSON-safe data
    store_module.close_all()
    assert hashlib.sha256(store_path.read_bytes()).hexdigest() == before


def test_the_view_is_json_safe_even_with_nan_metrics(store_path):
    with mnb.start("churn", store=store_path) as run:
        run.log_metrics({"f1": float("nan"), "loss": 0.25})
    view = run_view(store_module.open_store(store_path, readonly=True), run.id)
    assert view["metrics"] == {"f1": None, "loss": 0.25}
    assert view["status"] == "finished" and view["duration"] >= 0
    json.dumps(view, allow_nan=False)


@pytest.mark.parametrize(("seconds", "text"), [
    (None, ""), (float("nan"), ""), (0.001, "<0.01 s"), (3.5, "3.50 s"), (12.34, "12.3 s"), (75, "1m 15s"),
    (3725, "1h 02m"),
])
def test_durations_read_the_same_everywhere(seconds, text):
    assert formatting.duration(seconds) == text


def test_numbers_sizes_times_and_json_safe_values():
    np = pytest.importorskip("numpy")
    assert [formatting.number(v) for v in (0.123456, 12345, 2.0, math.inf, None, "rf", np.float32(0.5))] == [
        "0.1235", "12,345", "2", "∞", "", "rf", "0.5"]
    assert [formatting.size(n) for n in (512, 1536, 3 * 1024**2)] == ["512 B", "1.5 KB", "3.0 MB"]
    assert formatting.iso(0) == "1970-01-01T00:00:00+00:00" and formatting.iso(None) is None
    safe = formatting.json_safe({"a": [np.float64("nan"), np.int64(3), (1, math.inf)], 2: np.bool_(True)})
    assert safe == {"a": [None, 3, [1, None]], "2": True}
    assert type(safe["a"][1]) is int
    json.dumps(safe, allow_nan=False)
