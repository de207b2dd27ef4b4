"""End-to-end: notebooks executed in a real ipykernel (nbclient, jupyter_client), then the store read
through the public API. Each test builds its notebook in ``tmp_path`` and gives the kernel its own
store through ``MLOPS_NB_STORE``."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from nbclient.exceptions import CellExecutionError
from notebook_helpers import (
    Kernel,
    Replies,
    code,
    errors_of,
    kernel_env,
    notebook,
    notebook_client,
    read,
    restart_kernel,
    run_notebook,
    text_of,
)

import mlops_nb as mnb
from mlops_nb.stages import STAGES
from mlops_nb.store import close_all, open_store

QUICKSTART = Path(__file__).parent.parent / "notebooks" / "quickstart.ipynb"
LIFECYCLE = STAGES[: STAGES.index("validation") + 1]  # requirements ... validation
GATE_LINE = re.compile(r"requirement f1 >= 0\.95: (passed|FAILED) \((\d\.\d{3})\)")

# A small lifecycle (no sklearn data set download, fits in milliseconds) shared by several tests.
SETUP = "%load_ext mlops_nb\n%mlops start {project}"
DATA = """
%%stage data
import numpy as np
import pandas as pd

rng = np.random.default_rng(0)
df = pd.DataFrame({"age": rng.integers(18, 80, 60), "income": rng.normal(50, 15, 60).round(1)})
df["churned"] = (df["income"] + rng.normal(0, 10, 60) < 45).astype(int)
"""
FEATURES = """
%%stage features
X = df[["age", "income"]]
y = df["churned"]
"""
MODEL = """
%%stage model
from sklearn.linear_model import LogisticRegression

model = LogisticRegression().fit(X, y)
"""
VALIDATION = """
%%stage validation
from sklearn.metrics import accuracy_score

accuracy = accuracy_score(y, model.predict(X))
"""


@pytest.fixture(autouse=True)
def _close_stores():
    yield
    close_all()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """The store the kernel writes, away from the notebook (proves ``$MLOPS_NB_STORE`` is used)."""
    return tmp_path / "store" / "mlops.db"


def only_run(store_path: Path, project: str) -> dict:
    frame = mnb.runs(project, store=store_path)
    assert len(frame) == 1, frame
    return open_store(store_path).run_details(int(frame["run_id"][0]))


def attempts(details: dict) -> list[tuple[str, int, str]]:
    return [(s["stage"], s["attempt"], s["status"]) for s in details["stages"]]


def warning_kinds(details: dict) -> set[tuple[str, str | None]]:
    return {(w["kind"], w["stage"]) for w in details["warnings"]}


def stage_cell_index(nb, stage: str) -> int:
    header = f"%%stage {stage}\n"
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith(header))


# -- the quickstart --------------------------------------------------------------------------------


def test_quickstart_is_saved_clean_and_covers_the_lifecycle():
    nb = read(QUICKSTART)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code_cells), "save it without outputs"
    staged = [c.source.split("\n", 1)[0].split()[1] for c in code_cells if c.source.startswith("%%stage ")]
    assert staged == list(LIFECYCLE)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    sources = "\n".join(c.source for c in nb.cells)
    assert "fetch_" not in sources and "matplotlib" not in sources
    assert "MLOPS_NB_STORE" in sources and "mlops-nb show" in sources


def test_quickstart_executes_and_records_every_stage(tmp_path: Path, store_path: Path):
    shutil.copy(QUICKSTART, tmp_path / "quickstart.ipynb")
    nb = read(tmp_path / "quickstart.ipynb")
    client = notebook_client(nb, tmp_path)
    with client.setup_kernel(env=kernel_env(store_path)):
        for index, cell in enumerate(nb.cells):  # "Run All"
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
        check_quickstart_run(nb, tmp_path, store_path)

        # What section 9 suggests: re-run the features cell, then `%mlops status`.
        features = nb.cells[stage_cell_index(nb, "features")]
        client.execute_cell(features, stage_cell_index(nb, "features"))
        nb.cells.append(code("%mlops status"))
        client.execute_cell(nb.cells[-1], len(nb.cells) - 1)

    downstream = ["selection", "model", "tuning", "validation"]
    assert f"now stale: {', '.join(downstream)}" in text_of(features.outputs)
    status = text_of(nb.cells[-1].outputs)
    for stage in downstream:
        assert re.search(rf"^  {stage}\s+stale", status, re.M), status
    run = only_run(store_path, "quickstart")
    assert {w["stage"] for w in run["warnings"] if w["kind"] == "stale"} == set(downstream)


def check_quickstart_run(nb, tmp_path: Path, store_path: Path) -> None:
    """Everything one "Run All" of the quickstart recorded (the kernel is still running)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not errors_of(cell.outputs), text_of(cell.outputs)
            assert "Traceback" not in text_of(cell.outputs)
    assert store_path.exists() and not (tmp_path / "mlops.db").exists()
    store = open_store(store_path)
    run = only_run(store_path, "quickstart")

    # Every stage once, in order, with its source, execution count, a duration and status ok.
    assert attempts(run) == [(stage, 1, "ok") for stage in (*LIFECYCLE, "deployment")]
    sources = {e["stage"]: e for e in store.events(run["id"]) if e["kind"] == "stage"}
    for row in run["stages"]:
        if row["stage"] == "deployment":  # recorded by %mlops export, not a %%stage cell
            continue
        cell = nb.cells[stage_cell_index(nb, row["stage"])]
        assert sources[row["stage"]]["source"] == cell.source
        assert row["source_sha256"] == hashlib.sha256(cell.source.encode()).hexdigest()
        assert row["execution_count"] == cell.execution_count
        assert row["duration"] > 0 and row["error"] is None
    assert run["warnings"] == []
    assert run["requirement"]["target"] == "target"

    captures = {(c["stage"], c["name"]): c for c in store.rows(
        "SELECT captures.*, stages.stage FROM captures JOIN stages ON stages.id = captures.stage_id"
        " WHERE captures.run_id = ?", (run["id"],))}

    # DataFrames: rows, columns, a content fingerprint that anyone can recompute.
    from sklearn.datasets import load_breast_cancer

    from mlops_nb.capture import fingerprint

    df = load_breast_cancer(as_frame=True).frame
    df["target"] = (df["target"] == 0).astype(int)
    data = json.loads(captures["data", "df"]["summary"])
    assert data["kind"] == "dataframe" and data["rows"] == 569
    assert [c["name"] for c in data["columns"]] == list(df.columns)
    assert captures["data", "df"]["fingerprint"] == fingerprint(df)
    assert data["profile"]["columns"][0]["name"] == "mean radius"
    for name, rows in (("X_train", 426), ("X_test", 143)):
        summary = json.loads(captures["features", name]["summary"])
        assert summary["rows"] == rows and len(summary["columns"]) == 30
        assert re.fullmatch(r"[0-9a-f]{64}", captures["features", name]["fingerprint"])

    # The fitted model: described, and saved as a skops file whose SHA-256 is the recorded one.
    model = json.loads(captures["model", "model"]["summary"])
    assert model["class"] == "sklearn.pipeline.Pipeline"
    assert [s["name"] for s in model["steps"]] == ["scale", "select", "clf"]
    assert model["feature_names_in"] == list(df.columns[:-1])
    artifact = next(a for a in run["artifacts"] if a["id"] == captures["model", "model"]["artifact_id"])
    path = store.artifact_path(artifact["path"])
    assert path.is_file() and path.stat().st_size == artifact["size"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == artifact["sha256"]
    import skops.io as sio

    loaded = sio.load(path, trusted=["sklearn.feature_selection._univariate_selection.f_classif"])
    assert type(loaded).__name__ == "Pipeline"

    # The grid search: one candidate row per point of the grid, ranks 1..8, best params as params.
    search = captures["tuning", "search"]
    assert json.loads(search["summary"])["n_candidates"] == 8
    candidates = store.rows("SELECT * FROM candidates WHERE capture_id = ?", (search["id"],))
    assert len(candidates) == 4 * 2
    assert sorted(c["rank"] for c in candidates) == list(range(1, 9))
    best = json.loads(search["summary"])["best_params"]
    assert run["params"]["search.best.clf__C"] == best["clf__C"]

    # Validation: metrics logged, the gate printed under the cell and recorded.
    validation = nb.cells[stage_cell_index(nb, "validation")]
    match = GATE_LINE.search(text_of(validation.outputs))
    assert match, text_of(validation.outputs)
    (gate,) = run["gates"]
    assert (gate["metric"], gate["op"], gate["threshold"]) == ("f1", ">=", 0.95)
    assert match[1] == "passed" and gate["passed"] == 1 and f"{gate['value']:.3f}" == match[2]
    assert gate["stage_id"] == next(s["id"] for s in run["stages"] if s["stage"] == "validation")
    assert run["metrics"]["f1"] == gate["value"]
    assert 0.9 < run["metrics"]["accuracy"] <= 1

    # A stage cell's last expression is displayed as usual (the fitted pipeline's repr).
    model_cell = nb.cells[stage_cell_index(nb, "model")]
    (result,) = [o for o in model_cell.outputs if o.output_type == "execute_result"]
    assert result.execution_count == model_cell.execution_count
    assert "LogisticRegression" in result.data["text/plain"]

    status_cell = next(c for c in nb.cells if c.source.strip() == "%mlops status")
    status = text_of(status_cell.outputs)
    for stage in LIFECYCLE:
        assert re.search(rf"^  {stage}\s+ok\s+attempt 1", status, re.M), status
    assert "requirement f1 >= 0.95: passed" in status
    runs_cell = next(c for c in nb.cells if c.source.strip() == "%mlops runs")
    assert "metrics.f1" in runs_cell.outputs[0].data["text/plain"]

    # Deployment: the tuned model is version 1 (champion) and its package verifies.
    package = tmp_path / "deploy" / "breast-cancer"
    from mlops_nb.deploy.verify import verify

    verify(package)
    assert [v["version"] for v in store.rows("SELECT * FROM model_versions")] == [1]
    assert [(a["alias"], a["version"]) for a in store.rows("SELECT * FROM aliases")] == [("champion", 1)]


# -- integrity, failures, display --------------------------------------------------------------------


def test_features_rerun_after_model_makes_later_stages_stale(tmp_path: Path, store_path: Path):
    nb = notebook([SETUP.format(project="order"), DATA, FEATURES, MODEL, VALIDATION, FEATURES, "%mlops status"])
    run_notebook(nb, tmp_path, store=store_path)

    run = only_run(store_path, "order")
    assert attempts(run)[-1] == ("features", 2, "ok")
    stale = {w["stage"]: w["message"] for w in run["warnings"] if w["kind"] == "stale"}
    assert set(stale) == {"model", "validation"}
    assert "features ran again after it" in stale["model"]
    assert "now stale: model, validation" in text_of(nb.cells[5].outputs)
    status = text_of(nb.cells[6].outputs)
    assert re.search(r"^  model\s+stale", status, re.M) and "warning: model is stale" in status


def test_failing_stage_is_recorded_and_stops_run_all(tmp_path: Path, store_path: Path):
    broken = '%%stage features\nX = df[["age", "income_typo"]]\ny = df["churned"]'
    nb = notebook([SETUP.format(project="boom"), DATA, broken, MODEL, "print('still running')"])
    replies = Replies()
    with pytest.raises(CellExecutionError) as raised:
        run_notebook(nb, tmp_path, store=store_path, replies=replies)
    assert "income_typo" in str(raised.value)

    # The kernel said "error" for that cell, showed the exception, and nothing after it ran.
    assert replies.by_index[2]["status"] == "error" and replies.by_index[2]["ename"] == "KeyError"
    (error,) = errors_of(nb.cells[2].outputs)
    assert error.ename == "KeyError" and "income_typo" in error.evalue
    assert sorted(replies.by_index) == [0, 1, 2]
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells[3:])

    run = only_run(store_path, "boom")
    assert attempts(run) == [("data", 1, "ok"), ("features", 1, "error")]
    failed = run["stages"][1]
    assert failed["error"].startswith("KeyError") and "income_typo" in failed["error"]
    assert failed["duration"] >= 0 and failed["execution_count"] == nb.cells[2].execution_count
    assert ("failed", "features") in warning_kinds(run)


def test_stage_cell_displays_its_last_expression(tmp_path: Path):
    nb = notebook([
        "%load_ext mlops_nb",
        '%%stage data\nimport pandas as pd\ndf = pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]})\ndf.shape',
        "%%stage eda\ndf.describe();",
        "%%stage eda\nprint('printed')\nint(df['a'].sum())",
    ])
    run_notebook(nb, tmp_path, store=None)  # no MLOPS_NB_STORE: ./mlops.db beside the notebook

    for index, expected in ((1, "(3, 2)"), (3, "6")):
        cell = nb.cells[index]
        results = [o for o in cell.outputs if o.output_type == "execute_result"]
        assert len(results) == 1 and results[0].data["text/plain"] == expected
        assert results[0].execution_count == cell.execution_count
    assert not [o for o in nb.cells[2].outputs if o.output_type == "execute_result"]  # `;` hides it
    assert text_of(nb.cells[3].outputs).startswith("printed")
    assert [c.execution_count for c in nb.cells] == [1, 2, 3, 4]

    store = tmp_path / "mlops.db"
    assert store.exists()
    run = only_run(store, "default")  # a stage cell without %mlops start starts a run
    assert [(s["stage"], s["execution_count"]) for s in run["stages"]] == [("data", 2), ("eda", 3), ("eda", 4)]
    assert "started run" in text_of(nb.cells[1].outputs)


def test_rerunning_cells_records_new_attempts(tmp_path: Path, store_path: Path):
    nb = notebook([SETUP.format(project="again"), DATA, FEATURES, MODEL, VALIDATION])
    client = notebook_client(nb, tmp_path)
    with client.setup_kernel(env=kernel_env(store_path)):
        for _ in range(2):  # "Run All" twice in one kernel: %load_ext again, a second run
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        nb.cells.append(code("%reload_ext mlops_nb"))
        client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
        for index, cell in enumerate(nb.cells[1:5], start=1):  # then each stage cell once more
            client.execute_cell(cell, index)
            assert not errors_of(cell.outputs), text_of(cell.outputs)

    frame = mnb.runs("again", store=store_path)
    assert list(frame["status"])[0] == "finished" and len(frame) == 2
    store = open_store(store_path)
    first, second = (store.run_details(int(i)) for i in frame["run_id"])
    stages = ["data", "features", "model", "validation"]
    assert attempts(first) == [(s, 1, "ok") for s in stages]
    assert attempts(second) == [(s, 1, "ok") for s in stages] + [(s, 2, "ok") for s in stages]
    counts = [s["execution_count"] for s in second["stages"]]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    assert second["warnings"] == []
    assert list(mnb.metric_history(second["id"], "accuracy", store=store_path)["step"]) == [0, 1]


def test_kernel_restart_resumes_the_run(tmp_path: Path, store_path: Path):
    nb = notebook([SETUP.format(project="restart"), DATA, FEATURES, MODEL])
    client = notebook_client(nb, tmp_path, allow_errors=True)
    after = [code("%load_ext mlops_nb"), code(MODEL.strip()), code(DATA.strip()), code(FEATURES.strip()),
             code(MODEL.strip())]
    with client.setup_kernel(env=kernel_env(store_path)):
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        restart_kernel(client)
        for cell in after:
            nb.cells.append(cell)
            client.execute_cell(cell, len(nb.cells) - 1)

    run = only_run(store_path, "restart")  # resumed: still one run
    assert f"resumed run {run['id']}" in text_of(after[1].outputs)
    assert "after a kernel restart" in text_of(after[1].outputs)
    assert errors_of(after[1].outputs)[0].ename == "NameError"  # the model cell alone: X is gone
    assert attempts(run) == [("data", 1, "ok"), ("features", 1, "ok"), ("model", 1, "ok"),
                             ("model", 2, "error"), ("data", 2, "ok"), ("features", 2, "ok"), ("model", 3, "ok")]
    assert "NameError" in run["stages"][3]["error"]

    store = open_store(store_path)
    cells = store.rows("SELECT kind, seq FROM cells WHERE run_id = ?", (run["id"],))
    assert [c["kind"] for c in cells] == ["restart"]
    assert run["stages"][2]["seq"] < cells[0]["seq"] < run["stages"][3]["seq"]
    restart = [w for w in run["warnings"] if w["kind"] == "restart"]
    assert len(restart) == 1 and "restarted after model" in restart[0]["message"]
    assert not [w for w in run["warnings"] if w["kind"] == "stale"]  # data and features ran again


def test_cell_id_from_the_front_end_is_recorded(tmp_path: Path, store_path: Path):
    with Kernel(tmp_path, kernel_env(store_path)) as kernel:
        executable = kernel.execute("import sys; print(sys.executable)")
        assert executable.text.strip() == sys.executable  # the tests' own interpreter
        assert kernel.execute("%load_ext mlops_nb\n%mlops start ids").status == "ok"
        data = kernel.execute(DATA.strip(), cell_id="cell-data")
        outside = kernel.execute("n_rows = len(df)\nn_rows", cell_id="cell-peek")
        edited = kernel.execute(DATA.strip().replace("60", "80"), cell_id="cell-data")
        plain = kernel.execute(FEATURES.strip())  # no cellId, as nbclient
    assert data.status == outside.status == edited.status == plain.status == "ok"
    assert outside.outputs[-1]["output_type"] == "execute_result"

    run = only_run(store_path, "ids")
    assert [(s["stage"], s["cell_id"]) for s in run["stages"]] == [
        ("data", "cell-data"), ("data", "cell-data"), ("features", None)]
    cells = open_store(store_path).rows("SELECT cell_id, source FROM cells WHERE run_id = ?", (run["id"],))
    assert cells == [{"cell_id": "cell-peek", "source": "n_rows = len(df)\nn_rows"}]
    assert ("edited", "data") in warning_kinds(run)  # one cell id, two sources


def test_bad_input_explains_the_fix(tmp_path: Path, store_path: Path):
    notes = tmp_path / "notes.db"
    notes.write_text("my notes, not a database\n")
    nb = notebook([
        "%load_ext mlops_nb",
        "%%stage nonsense\nx = 1",
        "'x' in dir()",
        "%mlops require f1 >> 3",
        "%mlops start x --store /proc/nope/mlops.db",
        f"%mlops start x --store {notes}",
        "%mlops frobnicate",
    ])
    replies = Replies()
    run_notebook(nb, tmp_path, store=store_path, allow_errors=True, replies=replies)

    def usage_error(index: int) -> str:
        assert replies.by_index[index]["status"] == "error"
        text = text_of(nb.cells[index].outputs)
        assert "UsageError" in text and "Traceback" not in text, text
        return text

    assert f"unknown stage 'nonsense'; use one of: {', '.join(STAGES)}" in usage_error(1)
    assert nb.cells[2].outputs[0].data["text/plain"] == "False"  # the body did not run
    assert "METRIC OP VALUE, for example 'f1 >= 0.85'" in usage_error(3)
    assert "cannot create the folder /proc/nope for the store" in usage_error(4)
    assert "is not an mlops-nb store (not a SQLite database); it was left untouched" in usage_error(5)
    assert notes.read_text() == "my notes, not a database\n"
    assert "unknown sub-command 'frobnicate'; use one of: start" in usage_error(6)
    assert not store_path.exists()  # nothing valid ran, so no run and no store
