"""What a served model saw, where a person looks: the status widget, ``%mlops status --text`` and the
JupyterLab sidebar's run detail; and a retraining run on the rows the server logged.

One scenario, shared by the tests (module scope): a notebook run (the in-process shell, as
test_serve) exported; the real ``mlops-nb serve --log-rows 1`` (``MLOPS_NB_SERVE_FLUSH=1``: a
"minute" a second) sent rows with their target, then rows whose ``income`` moved far from the
reference; ``mlops-nb monitor --rows served.csv`` writes the logged rows; the server stops;
``mlops-nb retrain --data served.csv`` retrains on them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shell_helpers import Shell
from test_serve import Server, _env

import mlops_nb as mnb
from mlops_nb.notebook.widgets.text import status_text
from mlops_nb.store import close_all, open_store
from mlops_nb.tracking.views import run_view

LABELLED, SHIFTED = 150, 100
RETRAINED = (0, 99)  # promoted, or ran fine and kept the champion


def _rows(n: int, seed: int, *, shift: float = 0.0, target: bool = True) -> list[dict]:
    """Rows as the notebook's data stage makes them (its target too), ``income`` moved by ``shift``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    age, income = rng.integers(18, 80, n), rng.normal(50, 15, n).round(1)
    churned = (income + rng.normal(0, 10, n) < 45).astype(int)
    rows = [{"age": int(a), "income": float(i) + shift} for a, i in zip(age, income, strict=True)]
    if target:
        for row, label in zip(rows, churned, strict=True):
            row["churned"] = int(label)
    return rows


def _mlops(store: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", "-m", "mlops_nb", "--store", str(store), *args], capture_output=True,
                          text=True, env=_env(MLOPS_NB_STORE=str(store)), cwd=cwd, timeout=300)


def _served_rows(store: Path, root: Path) -> int:
    return sum(m["rows"] for m in open_store(store, readonly=True).serving_minutes(package=str(root)))


def _wait_for_rows(store: Path, root: Path, n: int) -> None:
    deadline = time.time() + 30
    while _served_rows(store, root) < n:
        assert time.time() < deadline, f"the store has {_served_rows(store, root)} served rows, not {n}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    store, root = folder / "mlops.db", folder / "deploy" / "churn"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        shell = Shell(store, folder)
        try:
            run_id = shell.lifecycle().id
            mnb.register("clf", "churn")
            mnb.export("churn", to=root)
        finally:
            shell.close()
        server = Server(root, store, "--log-rows", "1")
        try:
            labelled = _rows(LABELLED, seed=1)
            for i in range(0, LABELLED, 50):
                answer = server.client.post("/invocations", json={"dataframe_records": labelled[i:i + 50]})
                assert answer.status_code == 200, answer.text
            _wait_for_rows(store, root, LABELLED)
            dumped = _mlops(store, "monitor", str(root), "--rows", str(folder / "served.csv"), cwd=folder)
            assert dumped.returncode == 0, dumped.stderr
            time.sleep(1.1)  # the shifted rows fall in a minute of their own
            shifted = _rows(SHIFTED, seed=2, shift=80.0, target=False)
            for i in range(0, SHIFTED, 50):
                assert server.client.post("/invocations", json={"dataframe_records": shifted[i:i + 50]}).is_success
            _wait_for_rows(store, root, LABELLED + SHIFTED)
        finally:
            server.stop()
        retrained = _mlops(store, "retrain", str(root), "--data", str(folder / "served.csv"), cwd=folder)
    close_all()
    return {"folder": folder, "store": store, "root": root, "run_id": run_id, "retrained": retrained}


def test_a_retraining_run_reads_the_rows_the_server_logged(served):
    import pandas as pd

    logged = pd.read_csv(served["folder"] / "served.csv")
    assert len(logged) == LABELLED and {"age", "income", "churned", "served_at"} <= set(logged.columns)
    done = served["retrained"]
    assert done.returncode in RETRAINED, done.stdout + done.stderr
    children = open_store(served["store"], readonly=True).child_runs(served["run_id"], "retraining")
    assert len(children) == 1 and children[0]["status"] == "finished", children
    assert children[0]["tags"].get("decision"), children[0]["tags"]


def test_the_status_widget_and_its_text_show_traffic_latency_and_drift_beside_retraining(served):
    view = run_view(open_store(served["store"], readonly=True), served["run_id"])
    m = view["monitoring"]
    assert m["totals"]["requests"] == 5 and m["totals"]["rows"] == LABELLED + SHIFTED
    assert m["totals"]["errors"] == 0 and m["version_dir"] == "v0001"
    # income moved by 80 (about five standard deviations); age may drift by chance on 100 rows
    assert m["verdict"] == "drift" and "income" in m["drifted"], m["headline"]
    headline = f"input drift in {', '.join(m['drifted'])} ({len(m['drifted'])} of 2 columns)"
    assert m["headline"] == headline
    assert m["latest"]["latency_p50"] > 0 and m["latest"]["latency_p99"] >= m["latest"]["latency_p50"]
    serve_rows = [r for r in m["rows"] if r["kind"] == "serve"]
    retrain_rows = [r for r in m["rows"] if r["kind"] == "retrain"]
    assert sum(r["requests"] for r in serve_rows) == 5 and len(retrain_rows) == 1
    assert m["rows"][-1]["kind"] == "retrain"  # retrained after the traffic: last in time
    assert sum(m["series"]["requests"]) == 5 and m["drifted_minutes"] >= 1

    widget = mnb.status(served["run_id"], store=served["store"])
    html = widget.html
    assert "Serving" in html and "<b>5</b> requests" in html and f"{LABELLED + SHIFTED} rows" in html
    assert headline in html
    assert f"p99 <b>{m['latest']['latency_p99']:.1f}</b> ms" in html
    assert f"retrain run {retrain_rows[0]['run_id']}" in html and html.count("mnb-sparkline") == 3

    text = status_text(view)
    assert widget._repr_mimebundle_()["text/plain"] == text
    assert f"serving v0001 (model v1): 5 requests, {LABELLED + SHIFTED} rows, 0 errors" in text
    assert f"p99 {m['latest']['latency_p99']:.1f} ms" in text
    assert f"input drift: {headline}" in text
    assert re.search(rf"retrain run {retrain_rows[0]['run_id']} finished: \S", text), text
    for row in serve_rows:  # the same buckets in both
        assert f"{row['requests']:>6} req" in text and f"ms  {row['verdict']}: " in text


def test_the_sidebar_run_detail_shows_what_the_served_model_saw(served):
    from browser import artifact_path, chromium_page, jupyter_lab

    run_id = served["run_id"]
    view = run_view(open_store(served["store"], readonly=True), run_id)
    with jupyter_lab(served["folder"]) as lab, chromium_page(height=1000) as page:
        page.goto(f"{lab.url}/lab?reset&token={lab.token}", timeout=120_000)
        page.wait_for_selector('li[data-id="mlops-nb-sidebar"]', timeout=120_000)
        page.click('li[data-id="mlops-nb-sidebar"]')
        sidebar = page.locator("#mlops-nb-sidebar")
        sidebar.wait_for(state="visible")
        handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first.bounding_box()
        page.mouse.move(handle["x"] + 1, handle["y"] + handle["height"] / 2)  # widen it, as a user would
        page.mouse.down()
        page.mouse.move(440, handle["y"] + handle["height"] / 2, steps=5)
        page.mouse.up()
        sidebar.locator(f'.mlops-run[data-run-id="{run_id}"]').click()
        serving = sidebar.locator(".mlops-run-detail .mlops-serving")
        serving.wait_for()
        assert serving.get_attribute("data-verdict") == "drift"
        text = serving.inner_text()
        assert f"5 requests, {LABELLED + SHIFTED} rows, 0 errors" in text, text
        assert view["monitoring"]["headline"] in text and "income" in text, text
        assert f"p99 {view['monitoring']['latest']['latency_p99']:.1f} ms" in text, text
        assert serving.locator('.mlops-serving-row[data-kind="serve"]').count() == sum(
            1 for r in view["monitoring"]["rows"] if r["kind"] == "serve")
        retrain = serving.locator('.mlops-serving-row[data-kind="retrain"]')
        assert retrain.count() == 1 and "retrain run" in retrain.inner_text()
        assert serving.locator(".mlops-spark polyline, .mlops-spark circle").count() == 3
        sidebar.screenshot(path=str(artifact_path("extension-run-serving.png")))
        assert page.console_errors == []


def test_minutes_fold_into_at_most_twelve_buckets_with_the_newest_verdict():
    from mlops_nb.tracking.monitoring import MAX_ROWS, monitoring_summary

    assert monitoring_summary([], []) is None
    start = 1_700_000_000 - 1_700_000_000 % 3600
    sketch = {"age": {"verdict": "ok"}, "income": {"verdict": "warn"}}
    minutes = [{"package": "/p", "minute": start + 60 * i, "version_dir": "v0001", "model_version": 1, "requests": 2,
                "rows": 4, "errors": 0, "bad_requests": 1 if i == 5 else 0, "latency_p50": 1.0 + i % 2,
                "latency_p99": 3.0 + i / 100, "drift": sketch, "drift_share": 0.0, "drifted": []}
               for i in range(180)]  # three hours of traffic
    retraining = [{"id": 9, "name": "r", "status": "finished", "start_time": start + 60 * 90, "decision": "promoted",
                   "tags": {"dataset_drift": "false"}},
                  {"id": 3, "name": "old", "status": "finished", "start_time": start - 86400, "decision": "kept",
                   "tags": {}}]
    m = monitoring_summary(minutes, retraining)
    assert m["bucket"] == "15 minutes" and m["totals"]["requests"] == 360 and m["totals"]["bad_requests"] == 1
    serve = [r for r in m["rows"] if r["kind"] == "serve"]
    assert len(serve) == MAX_ROWS and sum(r["requests"] for r in serve) == 360
    assert serve[0]["errors"] == 1 and serve[0]["latency_p99"] == 3.14
    assert serve[0]["latency_p50"] == pytest.approx(22 / 15)  # request-weighted: 8 minutes at 1 ms, 7 at 2 ms
    assert [r["run_id"] for r in m["rows"] if r["kind"] == "retrain"] == [9]  # the one inside the window
    assert m["verdict"] == "warn" and m["headline"] == "inputs shifting in income (warning, 1 of 2 columns)"
    minutes[-1].update(drift=None, drift_share=None, drifted=None)
    minutes[-2].update(drift={"age": {"verdict": "drift"}, "income": {"verdict": "ok"}}, drift_share=0.5,
                       drifted=["age"])
    m = monitoring_summary(minutes, [])
    assert m["headline"] == "input drift in age (1 of 2 columns)" and m["drifted_minutes"] == 1
    assert m["rows"][-1]["verdict"] == "drift" and m["rows"][-1]["drifted"] == ["age"]
