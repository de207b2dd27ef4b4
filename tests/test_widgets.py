"""The status and compare widgets, driven through their seams on runs written by the API and the magics.

Runs are recorded the way users record them: ``mnb.start`` for the API, ``%mlops`` and ``%%stage``
cells run in a real IPython shell for the lifecycle. The widgets are then driven as the controls
drive them (``sort_by``, ``click_header``, ``filter``, ``page``, ``select``, ``tick``,
``download_csv``, the traits) and read back through their traits, including what each panel shows
(``header``, ``rows_html``, ``pager``, ``diff_html``, ``history_svg``...), and derived views (``rows``,
``diff``, ``chart_data``, ``to_dataframe``). tests/test_widgets_browser.py checks that the real
controls drive the same seams in JupyterLab.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import mlops_nb as mnb
from mlops_nb import store as store_module
from mlops_nb.errors import InvalidValue, RunNotFound
from mlops_nb.notebook.widgets import CompareWidget, StatusWidget
from mlops_nb.store import open_store


@pytest.fixture
def shell():
    """An IPython shell with ``%load_ext mlops_nb``; a fresh notebook session per test."""
    from IPython.testing.globalipapp import get_ipython

    from mlops_nb.notebook.session import forget_session

    ip = get_ipython()
    forget_session(ip)
    ip.run_line_magic("load_ext", "mlops_nb")
    yield ip
    ip.run_line_magic("unload_ext", "mlops_nb")
    forget_session(ip)


def run_cells(ip, *cells: str, ok: bool = True) -> None:
    for cell in cells:
        result = ip.run_cell(cell)
        assert result.success is ok, f"{cell!r}: {result.error_before_exec or result.error_in_exec}"


def session_of(ip):
    from mlops_nb.notebook.session import session_for

    return session_for(ip)


DATA = """%%stage data
import numpy as np
import pandas as pd
rng = np.random.default_rng({seed})
df = pd.DataFrame({{"a": rng.normal(size={n}), "b": rng.normal(size={n})}})
df["y"] = (df.a + 0.5 * df.b > 0).astype(int)
"""
FEATURES = """%%stage features
X = df[["a", "b"]]
y = df["y"]
"""
MODEL = """%%stage model
from sklearn.linear_model import LogisticRegression
clf = LogisticRegression(C={C}, max_iter={max_iter}).fit(X, y)
"""
VALIDATION = """%%stage validation
from sklearn.metrics import accuracy_score, f1_score
f1 = float(f1_score(y, clf.predict(X)))
log_loss_value = float(1 - accuracy_score(y, clf.predict(X)))
"""


def record_notebook_run(ip, store_path: Path, name: str, *, seed: int = 0, n: int = 200, C: float = 1.0,
                        max_iter: int = 100) -> int:
    """One lifecycle through the magics, as a notebook would record it; returns the run id."""
    run_cells(
        ip,
        f"%mlops start churn --name {name} --store {store_path}",
        "%mlops require f1 >= 0.5 --target y",
        DATA.format(seed=seed, n=n),
        FEATURES,
        MODEL.format(C=C, max_iter=max_iter),
        VALIDATION,
    )
    run_id = session_of(ip).run.id
    run_cells(ip, "%mlops end")
    return run_id


def api_runs(store_path: Path, count: int, project: str = "api") -> list[int]:
    """``count`` runs through the Python API: params ``C`` (number), ``model`` (text), ``depth``
    (missing in every third run), metric ``f1`` with three steps and ``loss`` with one."""
    ids = []
    for i in range(count):
        with mnb.start(project, name=f"r{i:02d}", store=store_path) as run:
            params = {"C": round(0.1 * (i + 1), 2), "model": ["rf", "lr", "gb"][i % 3]}
            if i % 3:
                params["depth"] = i
            run.log_params(params)
            for step in range(3):
                run.log_metric("f1", round(0.5 + 0.01 * i + 0.1 * step, 4))
            run.log_metric("loss", round(1.0 / (i + 1), 4))
        ids.append(run.id)
    return ids


# -- compare: the table ----------------------------------------------------------------------------


def test_table_shows_a_page_of_runs_newest_first_with_the_run_columns_then_metrics_and_params(store_path):
    ids = api_runs(store_path, 30)
    widget = mnb.compare("api", store=store_path)

    assert isinstance(widget, CompareWidget)
    assert widget.columns[:6] == ["name", "status", "start_time", "duration", "stages", "gate"]
    assert {"metrics.f1", "metrics.loss", "params.C", "params.model", "params.depth"} <= set(widget.columns)
    assert (widget.total, widget.pages, widget.current_page) == (30, 2, 1)
    rows = widget.rows
    assert len(rows) == 25
    assert [r["run_id"] for r in rows] == ids[::-1][:25]  # newest first
    assert rows[0]["name"] == "r29" and rows[0]["status"] == "finished"
    assert rows[0]["metrics.f1"] == pytest.approx(0.5 + 0.29 + 0.2)  # the latest value of the metric
    assert rows[0]["stages"] == 0 and rows[0]["gate"] is None
    # Shown: a header per column (the sorted one marked), one row of cells per run on the page.
    assert widget.header[:3] == ["run", "status", "start ▼"] and len(widget.header) == len(widget.columns)
    assert len(widget.rows_html) == 25
    assert ">r29</b>" in widget.rows_html[0] and ">r28</b>" in widget.rows_html[1]
    assert widget.pager == "page 1 of 2 · runs 1-25 of 30"

    widget.page(2)
    assert widget.current_page == 2
    assert [r["run_id"] for r in widget.rows] == ids[::-1][25:]
    assert len(widget.rows_html) == 5 and ">r04</b>" in widget.rows_html[0]
    widget.page(99)  # clamped
    assert widget.current_page == 2
    assert widget.pager == "page 2 of 2 · runs 26-30 of 30"


def test_sorting_by_any_column_numbers_as_numbers_missing_last_and_a_header_click_toggles(store_path):
    api_runs(store_path, 12)
    widget = mnb.compare("api", store=store_path)

    widget.sort_by("metrics.loss")
    losses = [r["metrics.loss"] for r in widget.rows]
    assert losses == sorted(losses) and widget.sort_column == "metrics.loss" and widget.ascending
    widget.sort_by("f1", ascending=False)  # a key alone is enough when only one namespace has it
    assert widget.sort_column == "metrics.f1"
    f1s = [r["metrics.f1"] for r in widget.rows]
    assert f1s == sorted(f1s, reverse=True)

    widget.sort_by("params.depth", ascending=False)
    depths = [r["params.depth"] for r in widget.rows]
    present = [d for d in depths if d is not None]
    assert present == sorted(present, reverse=True) and depths[len(present):] == [None] * 4  # missing last

    widget.sort_by("params.model")
    assert [r["params.model"] for r in widget.rows] == sorted(r["params.model"] for r in widget.rows)

    # A header click sorts by that column, a second click reverses it.
    widget.click_header("metrics.loss")
    assert (widget.sort_column, widget.ascending) == ("metrics.loss", True)
    assert "loss ▲" in widget.header and "f1" in widget.header  # the arrow moved to the sorted column
    widget.click_header("loss")
    assert (widget.sort_column, widget.ascending) == ("metrics.loss", False)
    assert [r["metrics.loss"] for r in widget.rows] == sorted(losses, reverse=True)
    assert "loss ▼" in widget.header and ">r00</b>" in widget.rows_html[0]  # loss 1.0, the largest
    widget.click_header("start_time")  # times start newest first
    assert (widget.sort_column, widget.ascending) == ("start_time", False)

    # Setting the traits drives the same state.
    widget.sort_column = "name"
    assert [r["name"] for r in widget.rows][:2] in (["r11", "r10"], ["r00", "r01"])
    with pytest.raises(InvalidValue, match="unknown column 'nope'; the columns are: name, .*metrics.f1"):
        widget.sort_by("nope")


def test_column_chooser_and_selected_columns(store_path):
    api_runs(store_path, 3)
    widget = mnb.compare("api", store=store_path)
    widget.choose_columns(["params.C", "name", "f1"])
    assert widget.columns == ["name", "metrics.f1", "params.C"]  # canonical order
    assert list(widget.rows[0]) == ["run_id", "name", "metrics.f1", "params.C"]
    assert widget.header == ["run", "f1", "C"]
    assert widget.rows_html[0].count("<div title=") + widget.rows_html[0].count("<div style=\"width") == 3
    # Setting the trait is the same state (the chooser sets it too).
    widget.columns = ["status", "name", "metrics.loss"]
    assert widget.columns == ["name", "status", "metrics.loss"] and widget.header == ["run", "status", "loss"]
    assert "tags" not in " ".join(widget.available_columns)


def test_filter_uses_the_where_language_and_a_bad_one_keeps_the_last_good_result(store_path):
    api_runs(store_path, 30)
    widget = mnb.compare("api", store=store_path)

    assert widget.filter("metrics.loss < 0.1 and params.model = 'rf'")
    assert widget.where == "metrics.loss < 0.1 and params.model = 'rf'" and widget.error == ""
    good = [r["run_id"] for r in widget.rows]
    assert widget.total == len(good) == 6  # r12, r15, ..., r27 (loss < 0.1 is i >= 10; rf is i % 3 == 0)
    assert all(r["params.model"] == "rf" and r["metrics.loss"] < 0.1 for r in widget.rows)
    assert widget.pager == "page 1 of 1 · runs 1-6 of 6 (filtered from 30)"

    assert not widget.filter("metrics.loss <")  # does not parse
    assert widget.error and "metrics.loss <" in widget.error
    assert widget.where == "metrics.loss < 0.1 and params.model = 'rf'"
    assert [r["run_id"] for r in widget.rows] == good
    assert "Still showing the last good result: <code>metrics.loss &lt; 0.1 and params.model = &#x27;rf&#x27;" \
           "</code>" in widget.error_html and "metrics.loss &lt;</pre>" not in widget.error_html

    assert not widget.filter("metrics.auc > 0.5")  # a column no run has: the message lists the columns
    assert "unknown column 'metrics.auc'" in widget.error
    for column in ("name", "status", "params.C", "params.model", "metrics.f1", "metrics.loss"):
        assert column in widget.error
    assert [r["run_id"] for r in widget.rows] == good

    # Setting the trait is the same state (the filter box sets it too); a good filter clears the error.
    widget.where = "params.C >= 2.5"
    assert widget.error == "" and widget.error_html == "" and widget.total == 6
    widget.filter("metrics.f1 > 5")
    assert widget.total == 0 and widget.rows == [] and widget.rows_html == []
    assert "No runs match <code>metrics.f1 &gt; 5</code>" in widget.empty_html
    widget.filter("")
    assert widget.total == 30 and widget.where == "" and widget.empty_html == ""


def test_filter_given_at_creation_and_by_the_magic(shell, store_path):
    api_runs(store_path, 5, project="churn")
    widget = mnb.compare("churn", where="params.model = 'lr'", store=store_path)
    assert widget.total == 2 and widget.where == "params.model = 'lr'"
    widget = mnb.compare("churn", where="params.model =", store=store_path)  # shown inline, not raised
    assert widget.error and widget.where == "" and widget.total == 5
    assert "Still showing the last good result: every run" in widget.error_html

    published = []
    original = shell.display_pub.publish
    shell.display_pub.publish = lambda data, *a, **k: (published.append(data), original(data, *a, **k))
    try:
        run_cells(shell, f"%mlops start churn --store {store_path}",
                  "%mlops compare --where \"metrics.loss < 0.3\"")
    finally:
        shell.display_pub.publish = original
    (shown,) = [d for d in published if "application/vnd.jupyter.widget-view+json" in d]
    assert "CompareWidget project 'churn'" in shown["text/plain"]
    assert "2 of 6 runs" in shown["text/plain"]  # the current run (no metrics yet) is in the project too


# -- compare: the diff ------------------------------------------------------------------------------


def test_selecting_two_runs_diffs_params_metrics_stage_sources_and_data(shell, store_path):
    first = record_notebook_run(shell, store_path, "baseline", C=1.0)
    second = record_notebook_run(shell, store_path, "stronger", C=0.01, max_iter=300)
    third = record_notebook_run(shell, store_path, "new-data", C=1.0, seed=7)
    widget = mnb.compare("churn", store=store_path)
    assert widget.diff is None and "Tick two or more runs" in widget.diff_html
    widget.tick(first)
    assert widget.diff is None and "(1 ticked: tick one more)" in widget.diff_html

    widget.select([first, second])
    assert widget.selected == [first, second]
    diff = widget.diff
    assert diff["runs"] == [first, second] and diff["names"] == {first: "baseline", second: "stronger"}
    params = {p["key"]: p for p in diff["params"]}
    assert params["clf.C"]["differs"] and params["clf.C"]["values"] == {first: 1.0, second: 0.01}
    assert params["clf.max_iter"]["differs"]
    assert not params["clf.tol"]["differs"]
    metrics = {m["key"]: m for m in diff["metrics"]}
    f1 = metrics["f1"]
    assert not f1["lower_is_better"]
    assert f1["best"] == [max(f1["values"], key=f1["values"].get)]
    assert metrics["log_loss_value"]["lower_is_better"]  # by its name
    sources = {s["stage"]: s for s in diff["sources"]}
    assert sources["data"]["same"] and sources["features"]["same"] and sources["validation"]["same"]
    model_diff = sources["model"]["diffs"][second]
    assert "-clf = LogisticRegression(C=1.0, max_iter=100).fit(X, y)" in model_diff
    assert "+clf = LogisticRegression(C=0.01, max_iter=300).fit(X, y)" in model_diff
    assert model_diff.startswith("--- baseline (model)\n+++ stronger (model)\n")
    assert diff["data"]["match"] is True and set(diff["data"]["frames"]) == {"df"}

    # Rendered: differing params highlighted, the best metric starred, the source diff coloured.
    html = widget.diff_html
    assert "Diff of 2 runs" in html and "background:#fff8c5" in html and "clf.C" in html
    assert "★" in html and "LogisticRegression(C=0.01" in html and "data fingerprints match" in html
    # The ticked rows are highlighted.
    highlighted = [r["run_id"] for r, html in zip(widget.rows, widget.rows_html, strict=True)
                   if "background:#ddf4ff" in html]
    assert sorted(highlighted) == sorted([first, second])

    # Other data: the fingerprints differ, and so does the data cell.
    widget.select([first, third])
    assert widget.diff["data"]["match"] is False and widget.diff["data"]["differ"] == ["df"]
    assert "+rng = np.random.default_rng(7)" in widget.diff["sources"][0]["diffs"][third]
    assert "data differs: df" in widget.diff_html

    # Ticking boxes one by one drives the same selection; three runs diff against the first ticked.
    widget.select([])
    assert "Tick two or more runs" in widget.diff_html and "background:#ddf4ff" not in "".join(widget.rows_html)
    for run_id in (second, first, third):
        widget.tick(run_id)
    assert widget.selected == [second, first, third]
    assert set(widget.diff["sources"][0]["diffs"]) == {first, third}
    assert "Diff of 3 runs" in widget.diff_html
    widget.tick(first, False)
    assert widget.selected == [second, third]

    with pytest.raises(InvalidValue, match="run 999 is not in this comparison"):
        widget.select([first, 999])


def test_charts_draw_metric_history_of_the_selected_runs_and_param_against_metric(store_path):
    ids = api_runs(store_path, 9)
    widget = mnb.compare("api", store=store_path)
    assert widget.history_metric == "f1"
    assert widget.chart_data["history"] == {"metric": "f1", "runs": {}}
    assert "tick runs to draw f1" in widget.history_svg

    widget.select(ids[:2])
    history = widget.chart_data["history"]
    assert history["runs"] == {
        ids[0]: [(0, 0.5), (1, 0.6), (2, 0.7)],
        ids[1]: [(0, 0.51), (1, 0.61), (2, 0.71)],
    }
    svg = widget.history_svg
    assert svg.startswith("<svg") and svg.count("<polyline") == 2 and "r00" in svg and "r01" in svg

    widget.scatter_param, widget.scatter_metric = "C", "loss"
    scatter = widget.chart_data["scatter"]
    assert (scatter["param"], scatter["metric"]) == ("C", "loss")
    assert sorted(scatter["points"]) == sorted(
        (run_id, round(0.1 * (i + 1), 2), round(1.0 / (i + 1), 4)) for i, run_id in enumerate(ids))
    assert widget.scatter_svg.count("<circle") == 9 and "loss against C" in widget.scatter_svg
    widget.filter("params.model = 'rf'")  # the scatter follows the filter
    assert len(widget.chart_data["scatter"]["points"]) == 3
    widget.scatter_param = "model"  # a text param: categories on the x axis
    assert {p[1] for p in widget.chart_data["scatter"]["points"]} == {"rf"}
    assert ">rf</text>" in widget.scatter_svg and widget.scatter_svg.count("<circle") == 3
    widget.history_metric = "loss"  # the trait is the same state (the dropdown sets it too)
    assert widget.chart_data["history"]["runs"][ids[0]] == [(0, 1.0)]
    assert "loss over steps" in widget.history_svg


def test_to_dataframe_and_the_csv_download_hold_what_the_table_shows(store_path):
    api_runs(store_path, 30)
    widget = mnb.compare("api", store=store_path)
    widget.filter("params.model != 'gb'")
    widget.sort_by("metrics.loss")
    widget.choose_columns(["name", "stages", "metrics.loss", "params.model"])

    frame = widget.to_dataframe()
    assert list(frame.columns) == ["run_id", "name", "stages", "reached", "metrics.loss", "params.model"]
    assert len(frame) == widget.total == 20  # every page, not only the one shown
    assert frame["metrics.loss"].is_monotonic_increasing
    assert frame["run_id"].tolist()[:25] == [r["run_id"] for r in widget.rows]

    assert widget.download_html == ""  # prepared on demand
    widget.download_csv()
    link = widget.download_html
    match = re.search(r'download="api-runs.csv" href="data:text/csv;charset=utf-8;base64,([^"]+)"', link)
    assert match, link
    text = base64.b64decode(match[1]).decode()
    assert text == widget.to_csv()
    assert text.splitlines()[0] == "run_id,name,stages,reached,metrics.loss,params.model"
    assert len(text.splitlines()) == 21
    assert "20 rows" in link
    widget.sort_by("name")
    assert widget.download_html == ""  # a stale link is not left behind


def test_the_registry_champion_is_marked(store_path):
    ids = api_runs(store_path, 3)
    from mlops_nb.store.writer import Writer

    store = Writer(open_store(store_path))
    with store.transaction():
        for run_id in ids[:2]:
            store.add_model_version("churn", run_id=run_id, artifact_id=None, capture_id=None, class_path=None,
                                    description=None)
        store.set_alias("churn", "champion", 2, by="test", run_id=None, reason=None)
        store.set_alias("churn", "previous", 1, by="test", run_id=None, reason=None)
    widget = mnb.compare("api", store=store_path)
    assert "registry" in widget.columns
    registry = {r["run_id"]: r["registry"] for r in widget.rows}
    assert registry == {ids[0]: "churn@previous v1", ids[1]: "churn@champion v2", ids[2]: None}
    shown = dict(zip([r["run_id"] for r in widget.rows], widget.rows_html, strict=True))
    assert "★" in shown[ids[1]]
    assert "★" not in shown[ids[0]] and "★" not in shown[ids[2]]


def test_lifecycle_columns_show_stages_reached_and_the_gate(shell, store_path):
    passed = record_notebook_run(shell, store_path, "good")
    run_cells(shell, f"%mlops start churn --name partial --store {store_path}", "%mlops require f1 >= 0.99",
              DATA.format(seed=1, n=50))
    partial = session_of(shell).run.id
    widget = mnb.compare("churn", store=store_path)
    rows = {r["run_id"]: r for r in widget.rows}
    assert rows[passed]["stages"] == 4 and rows[passed]["gate"] == "passed"
    assert rows[partial]["stages"] == 1 and rows[partial]["gate"] == "pending"
    frame = widget.to_dataframe().set_index("run_id")
    assert frame.loc[passed, "reached"] == "validation" and frame.loc[partial, "reached"] == "data"
    assert frame.loc[passed, "gate_value"] == rows[passed]["metrics.f1"]
    assert rows[partial]["status"] == "running"
    widget.sort_by("gate", ascending=False)
    assert widget.rows[0]["run_id"] == passed


def test_a_store_from_before_run_reach_shows_the_same_stages_after_its_upgrade(shell, store_path):
    passed = record_notebook_run(shell, store_path, "good")
    run_cells(shell, f"%mlops start churn --name partial --store {store_path}", DATA.format(seed=1, n=50),
              "%mlops end")
    columns = ["run_id", "stages", "reached"]
    before = mnb.compare("churn", store=store_path).to_dataframe()[columns].values.tolist()
    assert [passed, 4, "validation"] in before and len(before) == 2
    # The store as mlops-nb with schema 9 left it: no run_reach table. A fresh process (this one
    # keeps its connections) refuses to read it until it is upgraded, then shows the same stages.
    conn = sqlite3.connect(store_path)
    conn.executescript("DROP TABLE run_reach; DELETE FROM _sqlite_migrations WHERE name = 'm010_run_reach';"
                       " PRAGMA user_version = 9;")
    conn.close()
    read = ("import json, sys, mlops_nb as mnb; w = mnb.compare('churn', store=sys.argv[1]);"
            f" print(json.dumps(w.to_dataframe()[{columns!r}].values.tolist()))")
    refused = subprocess.run([sys.executable, "-c", read, str(store_path)], capture_output=True, text=True)
    assert refused.returncode != 0 and "upgrade it once" in refused.stderr
    upgrade = subprocess.run([sys.executable, "-m", "mlops_nb", "--store", str(store_path), "upgrade"],
                             capture_output=True, text=True)
    assert upgrade.returncode == 0, upgrade.stderr
    after = subprocess.run([sys.executable, "-c", read, str(store_path)], capture_output=True, text=True, check=True)
    assert json.loads(after.stdout) == before


# -- bad input -------------------------------------------------------------------------------------


def test_an_empty_store_or_project_says_how_to_record_a_run(store_path):
    widget = mnb.compare(store=store_path)  # no store file yet: the widget reads, it creates none
    assert not store_path.exists()
    assert "No runs in this store yet" in widget.empty_html
    assert "%load_ext mlops_nb" in widget.empty_html and "%%stage data" in widget.empty_html
    assert widget.rows == [] and widget.total == 0 and widget.diff is None and widget.rows_html == []
    assert widget.to_dataframe().empty
    assert widget.filter("metrics.f1 > 0.5") and widget.total == 0  # nothing to filter, nothing refused
    widget.filter("")

    api_runs(store_path, 2, project="other")
    widget.refresh()  # runs recorded since (what Reload does): the table appears
    assert widget.total == 2 and widget.empty_html == "" and "metrics.f1" in widget.columns
    assert len(widget.rows_html) == 2 and widget.header[0] == "run"
    widget = mnb.compare("nothing-here", store=store_path)
    assert "No runs in project <b>nothing-here</b> yet" in widget.empty_html
    widget.project = "other"  # another project: read again, from a clean slate
    assert widget.total == 2 and [r["name"] for r in widget.rows] == ["r01", "r00"]
    assert widget.empty_html == "" and ">r01</b>" in widget.rows_html[0]

    status = mnb.status(store=open_store(store_path.parent / "empty.db", create=True))
    assert status.run_id is None and "There is no run in the store yet" in status.html
    assert "%load_ext mlops_nb" in status.html
    status = mnb.status(store=store_path.parent / "missing.db")
    assert status.run_id is None and "There is no run in the store yet" in status.html
    assert not (store_path.parent / "missing.db").exists()


def test_runs_without_metrics_or_params_display(store_path):
    bare = [mnb.start("bare", name=f"b{i}", store=store_path) for i in range(3)]
    bare[0].end()
    widget = mnb.compare("bare", store=store_path)
    assert widget.columns == ["name", "status", "start_time", "duration", "stages", "gate"]
    assert [r["name"] for r in widget.rows] == ["b2", "b1", "b0"]
    assert widget.rows[0]["duration"] is None  # still running
    widget.select([bare[0].id, bare[1].id])
    assert widget.diff["params"] == [] and widget.diff["metrics"] == [] and widget.diff["data"]["match"] is None
    assert "No param differs" in widget.diff_html and "No metrics logged" in widget.diff_html
    assert widget.chart_data["scatter"]["points"] == []
    assert "no metrics logged" in widget.history_svg
    assert widget.filter("status = 'finished'") and widget.total == 1
    assert widget.to_csv().splitlines()[0] == "run_id,name,status,start_time,duration,stages,reached,gate,gate_value"


def test_the_widgets_only_read_and_show_a_run_whose_process_is_gone_as_interrupted(store_path):
    with mnb.start("churn", name="killed", store=store_path) as run:
        run.log_metric("f1", 0.8)
    mnb.start("churn", name="alive", store=store_path).end()
    store_module.close_all()
    with sqlite3.connect(store_path, isolation_level=None) as conn:  # as a kernel killed mid-run leaves it
        conn.execute("UPDATE runs SET status = 'running', end_time = NULL, host = ?, pid = ?, pid_start = NULL"
                     " WHERE id = ?", (store_module.HOST, 2**31 - 1, run.id))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = hashlib.sha256(store_path.read_bytes()).hexdigest()

    widget = mnb.compare("churn", store=store_path)
    assert {r["name"]: r["status"] for r in widget.rows} == {"killed": "interrupted", "alive": "finished"}
    assert "interrupted" in widget.rows_html[1] and ">killed</b>" in widget.rows_html[1]
    widget.sort_by("f1")
    widget.filter("metrics.f1 > 0.5")
    widget.select([run.id, run.id + 1])
    assert widget.diff["names"] == {run.id: "killed", run.id + 1: "alive"}
    widget.refresh()
    status = mnb.status(run.id, store=store_path)
    assert status.states == dict.fromkeys(mnb.STAGES, "not run") and "interrupted" in status.html
    assert mnb.status(store=store_path).run_id == run.id + 1
    store_module.close_all()
    assert hashlib.sha256(store_path.read_bytes()).hexdigest() == before


def test_mixed_projects_show_the_project_column_and_refresh_reads_new_runs(store_path):
    api_runs(store_path, 2, project="a")
    api_runs(store_path, 2, project="b")
    widget = mnb.compare(store=store_path)
    assert widget.columns[:2] == ["name", "project"] and widget.total == 4
    widget.filter("project = 'a'")
    api_runs(store_path, 1, project="a")
    widget.refresh()
    assert widget.total == 3 and widget.where == "project = 'a'"


# -- status -----------------------------------------------------------------------------------------


def test_status_shows_each_stage_in_order_with_state_attempts_duration_and_captures(shell, store_path):
    run_id = record_notebook_run(shell, store_path, "full")
    widget = mnb.status(run_id, store=store_path)
    assert isinstance(widget, StatusWidget) and widget.run_id == run_id and not widget.follow
    assert list(widget.states) == list(mnb.STAGES)
    assert widget.states == {**dict.fromkeys(mnb.STAGES, "not run"), "data": "ok", "features": "ok",
                             "model": "ok", "validation": "ok"}
    stages = {s["stage"]: s for s in widget.timeline}
    assert stages["data"]["attempt_count"] == 1 and stages["data"]["duration"] > 0
    assert stages["data"]["captured"] == ["df 200×3"]
    assert sorted(stages["features"]["captured"]) == ["X 200×2", "y (200)"]
    assert stages["model"]["captured"] == ["clf: LogisticRegression"]
    assert any(c.startswith("f1 = ") for c in stages["validation"]["captured"])
    assert stages["requirements"]["captured"] == ["f1 >= 0.5, target y"]
    data = widget.data
    assert data["gate"]["passed"] == 1 and data["warnings"] == [] and data["retraining"] == []
    html = widget.html
    assert "Requirement <b>f1 &gt;= 0.5, target y</b>" in html and "passed (" in html
    assert "No retraining runs yet" in html and "no warnings" in html
    assert "text/plain" in widget._repr_mimebundle_() and "validation" in widget._repr_mimebundle_()["text/plain"]


def test_status_shows_search_candidates_errors_stale_stages_and_retraining_runs(shell, store_path):
    record_notebook_run(shell, store_path, "messy")
    run_cells(
        shell,
        f"%mlops start churn --name messy2 --store {store_path}",
        DATA.format(seed=0, n=120),
        FEATURES,
        MODEL.format(C=1.0, max_iter=100),
        "%%stage tuning\nfrom sklearn.model_selection import GridSearchCV\n"
        "search = GridSearchCV(LogisticRegression(), {'C': [0.1, 1.0, 10.0]}, cv=3).fit(X, y)",
        VALIDATION,
        FEATURES,  # again: model, tuning and validation are now stale
    )
    run_cells(shell, "%%stage selection\nraise ValueError('no columns left')", ok=False)
    run_id = session_of(shell).run.id
    mnb.start("churn", name="retrain-1", kind="retraining", parent=run_id, store=store_path).end()
    child = mnb.start("churn", name="retrain-2", kind="retraining", parent=run_id, store=store_path)
    child.set_tag("decision", "kept the champion")
    child.log_metric("f1", 0.7)
    child.end("finished")

    widget = mnb.status(run_id, store=store_path)
    assert widget.states["features"] == "ok"
    assert widget.states["selection"] == "error"
    assert {widget.states[s] for s in ("model", "tuning", "validation")} == {"stale"}
    stages = {s["stage"]: s for s in widget.timeline}
    assert stages["features"]["attempt_count"] == 2
    assert stages["selection"]["error"] == "ValueError: no columns left"
    assert stages["tuning"]["captured"][0].startswith("search: GridSearchCV, 3 candidates, best ")
    kinds = [w["kind"] for w in widget.data["warnings"]]
    assert kinds.count("stale") == 3 and "failed" in kinds
    assert [c["name"] for c in widget.data["retraining"]] == ["retrain-1", "retrain-2"]
    html = widget.html
    assert "kept the champion" in html and "f1 0.7" in html and "ValueError: no columns left" in html
    assert "model is stale" in html and "#9a6700" in html  # stale's colour


def test_status_magic_displays_once_and_refreshes_that_display_as_later_cells_run(shell, store_path):
    published = []
    original = shell.display_pub.publish
    shell.display_pub.publish = lambda data, *a, **k: (published.append(data), original(data, *a, **k))
    try:
        run_cells(shell, "%mlops status")  # before any run: follows the run the notebook starts later
        widget = session_of(shell).views[0]
        assert widget.follow and widget.run_id is None and "There is no run in this notebook yet" in widget.html

        run_cells(shell, f"%mlops start churn --store {store_path}", "%mlops require f1 >= 0.5")
        assert widget.run_id == session_of(shell).run.id
        assert "Requirement <b>f1 &gt;= 0.5</b>" in widget.html
        seen = []
        widget.observe(lambda change: seen.append(widget.states.get("data")), "html")
        run_cells(shell, DATA.format(seed=0, n=30))
        assert seen[:2] == ["running", "ok"]  # when the stage cell started, then when it ended
        run_cells(shell, FEATURES, MODEL.format(C=1.0, max_iter=100), VALIDATION)
        assert widget.states["validation"] == "ok" and "passed (" in widget.html
        run_cells(shell, FEATURES)
        assert widget.states["model"] == "stale" and widget.states["validation"] == "stale"
        before = len(seen)
        run_cells(shell, "x = 1")  # nothing changed: nothing is sent to the front end
        assert len(seen) == before
    finally:
        shell.display_pub.publish = original
    shown = [d for d in published if "application/vnd.jupyter.widget-view+json" in d]
    assert len(shown) == 1  # one output, refreshed in place

    # A second run in the same notebook: the view follows it.
    run_cells(shell, "%mlops start churn --name second")
    assert widget.run_id == session_of(shell).run.id and set(widget.states.values()) == {"not run"}

    # Closed views are dropped, not refreshed.
    widget.close()
    run_cells(shell, "x = 2")
    assert session_of(shell).views == []


def test_status_of_a_given_run_and_the_text_summary(shell, store_path, capsys):
    first = record_notebook_run(shell, store_path, "first")
    run_cells(shell, f"%mlops status {first} --text")
    assert re.search(r"^  validation\s+ok\s+attempt 1", capsys.readouterr().out, re.M)
    run_cells(shell, f"%mlops status {first}")
    assert session_of(shell).views[-1].run_id == first and not session_of(shell).views[-1].follow
    result = shell.run_cell("%mlops status 12345")
    assert not result.success and "no run 12345" in str(result.error_in_exec)


def test_status_outside_a_notebook_shows_the_newest_run(store_path):
    ids = api_runs(store_path, 2)
    widget = mnb.status(store=store_path)
    assert widget.run_id == ids[-1] and not widget.follow
    assert mnb.status(mnb.get_run(ids[0], store=store_path)).run_id == ids[0]
    with pytest.raises(RunNotFound):
        mnb.status(999, store=store_path)


def test_importing_mlops_nb_does_not_import_ipywidgets():
    import subprocess
    import sys

    code = "import sys, mlops_nb; print('ipywidgets' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
