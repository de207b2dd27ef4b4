"""The Jupyter Server extension: every route over a store written by real runs, authentication,
the store path confined to the server's root, and malformed parameters.

The store is written once per module, the way users write it: runs through ``mnb.start`` and a
notebook executed by a real kernel with ``%load_ext mlops_nb`` and ``%%stage`` cells (captures,
gates, integrity warnings, a registered model). Each test copies it into its server's root.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from notebook_helpers import notebook, run_notebook

# pytest-jupyter's fixtures (jp_fetch, jp_serverapp...) for this module only: loaded as a plugin
# (pytest_plugins) its autouse event-loop and server-cleanup fixtures would wrap every test of the
# suite, and close the event loop Playwright's browser tests run on.
from pytest_jupyter.jupyter_server import *  # noqa: F403
from tornado.httpclient import HTTPClientError

import mlops_nb as mnb
from mlops_nb import server
from mlops_nb import store as store_module

# Jupyter Server warns at start-up about any handler without an authentication decorator: fail then.
pytestmark = pytest.mark.filterwarnings("error::jupyter_server.utils.JupyterServerAuthWarning")

API = ("mlops-nb", "api")

NOTEBOOK = [
    "%load_ext mlops_nb",
    "%mlops start churn --name notebook-run",
    "%mlops require f1 >= 0.8 --target y",
    """
%%stage data
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
y = (X.a + X.b > 0).astype(int)
""",
    """
%%stage model
from sklearn.linear_model import LogisticRegression
clf = LogisticRegression(C=0.5).fit(X, y)
""",
    """
%%stage validation
from sklearn.metrics import f1_score
f1 = f1_score(y, clf.predict(X))
""",
    "%mlops register clf --name churn-model",
    # A second run whose data stage runs again after the model: the model is stale.
    "%mlops start churn --name stale-run",
    "%%stage data\nX = X * 2",
    "%%stage model\nclf = LogisticRegression().fit(X, y)",
    "%%stage data\nX = X + 1",
    "%mlops end",
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A folder holding ``mlops.db`` written by a real kernel and by the Python API."""
    folder = tmp_path_factory.mktemp("recorded")
    store = folder / "mlops.db"
    run_notebook(notebook(NOTEBOOK), folder, store=store)
    for i, f1 in enumerate([0.55, 0.72, 0.91, 0.64, 0.83]):
        with mnb.start("churn", name=f"api-{i}", store=store) as run:
            run.log_params({"C": 10.0 ** (i - 2), "model": "rf" if i % 2 else "lr"})
            run.log_metrics({"f1": f1, "accuracy": f1 + 0.05})
    with mnb.start("other project", store=store) as run:
        run.log_metric("rmse", 1.5)
    store_module.close_all()
    with sqlite3.connect(store) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return folder


@pytest.fixture
def jp_root_dir(tmp_path, recorded) -> Path:
    root = tmp_path / "root_dir"
    root.mkdir()
    shutil.copyfile(recorded / "mlops.db", root / "mlops.db")
    return root


@pytest.fixture
def store_kind() -> str | None:
    """Which escaping ``MlopsNb.store`` setting the server gets (None: the default, mlops.db)."""
    return None


@pytest.fixture
def jp_server_config(store_kind, jp_root_dir, tmp_path):
    config = {
        "ServerApp": {
            "jpserver_extensions": {"mlops_nb.server": True},
            "allow_unauthenticated_access": False,
        }
    }
    if store_kind is not None:
        config["MlopsNb"] = {"store": escaping_settings(jp_root_dir, outside_store(tmp_path))[store_kind]}
    return config


@pytest.fixture
def fetch(jp_fetch, jp_asyncio_loop):
    """``jp_fetch`` of a route under ``mlops-nb/api/``, run to completion on the server's loop."""

    def fetch(*parts: str, **kwargs):
        return jp_asyncio_loop.run_until_complete(jp_fetch(*API, *parts, **kwargs))

    return fetch


def get_json(fetch, *parts: str, params: dict | None = None, **kwargs) -> dict:
    response = fetch(*parts, params=params or {}, **kwargs)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


def get_error(fetch, *parts: str, params: dict | None = None, **kwargs) -> tuple[int, dict]:
    with pytest.raises(HTTPClientError) as caught:
        fetch(*parts, params=params or {}, **kwargs)
    body = caught.value.response.body
    return caught.value.code, json.loads(body) if body else {}


def expected_runs(store: Path, where: str | None = None) -> list[dict]:
    """The project's runs as the Python API reports them."""
    frame = mnb.runs("churn", where=where, store=store)
    return frame.to_dict("records")


def find_run(fetch, name: str) -> dict:
    page = get_json(fetch, "projects", "churn", "runs", params={"where": f"name = '{name}'"})
    assert page["total"] == 1
    return page["runs"][0]


# -- the routes ------------------------------------------------------------------------------------


def test_projects_lists_every_project_with_its_run_count(fetch):
    reply = get_json(fetch, "projects")
    assert reply["store"] == {"path": "mlops.db", "exists": True}
    counts = {p["project"]: p["runs"] for p in reply["projects"]}
    assert counts == {"churn": 7, "other project": 1}
    assert all(isinstance(p["last_run"], float) for p in reply["projects"])


def test_runs_page_has_status_gate_metrics_and_warnings(fetch, jp_root_dir):
    page = get_json(fetch, "projects", "churn", "runs")
    assert page["total"] == 7
    assert (page["offset"], page["limit"], page["sort"], page["order"]) == (0, 50, "run_id", "desc")
    assert page["metrics"] == ["accuracy", "f1"]
    ids = [r["run_id"] for r in page["runs"]]
    assert ids == sorted((r["run_id"] for r in expected_runs(jp_root_dir / "mlops.db")), reverse=True)
    by_name = {r["name"]: r for r in page["runs"]}
    assert set(by_name) == {"notebook-run", "stale-run", *(f"api-{i}" for i in range(5))}

    notebook_run = by_name["notebook-run"]
    assert notebook_run["status"] == "finished"
    assert notebook_run["kind"] == "notebook"
    assert notebook_run["requirement"]["metric"] == "f1"
    assert notebook_run["gate"]["metric"] == "f1"
    assert notebook_run["gate"]["passed"] == 1
    assert notebook_run["gate"]["value"] == pytest.approx(notebook_run["metrics"]["f1"])
    assert notebook_run["duration"] > 0

    assert by_name["stale-run"]["warnings"] >= 1
    assert by_name["stale-run"]["gate"] is None
    assert by_name["api-2"]["metrics"] == {"accuracy": pytest.approx(0.96), "f1": pytest.approx(0.91)}
    assert by_name["api-2"]["gate"] is None and by_name["api-2"]["requirement"] is None


def test_runs_where_sort_and_pagination_agree_with_the_python_api(fetch, jp_root_dir):
    where = "metrics.f1 > 0.6 and kind = 'script'"
    expected = sorted(expected_runs(jp_root_dir / "mlops.db", where), key=lambda r: r["metrics.f1"])
    assert len(expected) == 4
    page = get_json(fetch, "projects", "churn", "runs", params={
        "where": where, "sort": "metrics.f1", "order": "asc", "limit": "2", "offset": "1"})
    assert page["total"] == 4
    assert [r["run_id"] for r in page["runs"]] == [r["run_id"] for r in expected[1:3]]

    by_name = get_json(fetch, "projects", "churn", "runs", params={"sort": "name", "order": "asc"})
    names = [r["name"] for r in by_name["runs"]]
    assert names == sorted(names)

    # Runs without the sort value come last in either order.
    for order in ("asc", "desc"):
        page = get_json(fetch, "projects", "churn", "runs", params={"sort": "params.C", "order": order})
        assert {r["name"] for r in page["runs"][-2:]} == {"notebook-run", "stale-run"}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_run_whose_process_died_shows_as_interrupted_without_a_write(fetch, jp_root_dir):
    store = jp_root_dir / "mlops.db"
    assert (find_run(fetch, "api-0"))["status"] == "finished"
    with sqlite3.connect(store, isolation_level=None) as conn:  # as a kernel killed mid-run leaves it
        conn.execute("UPDATE runs SET status = 'running', end_time = NULL, host = ?, pid = ?, pid_start = NULL"
                     " WHERE name = 'api-0'", (store_module._HOST, 2**31 - 1))
    before = digest(store)
    row = find_run(fetch, "api-0")
    assert row["status"] == "interrupted"
    run = get_json(fetch, "runs", str(row["run_id"]))
    assert run["status"] == "interrupted" and "ended without ending the run" in run["error"]
    get_json(fetch, "projects")
    assert digest(store) == before  # shown, never written: the next writer records it


def test_every_get_route_leaves_the_store_bytes_unchanged(fetch, jp_root_dir):
    store = jp_root_dir / "mlops.db"
    before = digest(store)
    run_id = find_run(fetch, "stale-run")["run_id"]
    for parts, params in ((("projects",), {}), (("projects", "churn", "runs"), {"where": "metrics.f1 > 0.5"}),
                          (("projects", "churn", "runs"), {"sort": "metrics.f1", "order": "asc"}),
                          (("runs", str(run_id)), {}), (("registry",), {})):
        get_json(fetch, *parts, params=params)
        assert digest(store) == before, parts


def test_jupyterlab_cache_buster_is_accepted(fetch):
    response = fetch("projects", "churn", "runs", params={"1795709716736": "", "limit": "1"})
    assert json.loads(response.body)["limit"] == 1


def test_project_names_with_spaces_reach_their_runs(fetch):
    page = get_json(fetch, "projects", "other project", "runs")
    assert page["total"] == 1
    assert page["runs"][0]["metrics"] == {"rmse": 1.5}


def test_run_shows_stages_in_order_with_captures_gate_and_params(fetch):
    run_id = (find_run(fetch, "notebook-run"))["run_id"]
    run = get_json(fetch, "runs", str(run_id))
    assert (run["id"], run["project"], run["name"], run["status"]) == (run_id, "churn", "notebook-run", "finished")
    assert [s["stage"] for s in run["stages"]] == list(mnb.STAGES)  # every stage, in lifecycle order
    ran = [s for s in run["stages"] if s["state"] != "not run"]
    assert [s["stage"] for s in ran] == ["data", "model", "validation"]
    for stage in ran:
        assert stage["state"] == stage["status"] == "ok"
        assert len(stage["attempts"]) == 1
        assert stage["attempts"][0]["duration"] >= 0
    data, model, validation = ran
    captured = {c["name"]: c for c in data["attempts"][0]["captures"]}
    assert captured["X"]["kind"] == "dataframe"
    assert captured["X"]["summary"] == "200 rows × 3 columns"
    assert captured["X"]["fingerprint"]
    assert captured["y"]["kind"] == "series"
    assert set(data["attempts"][0]["variables"]) >= {"X", "y", "rng"}
    [clf] = model["attempts"][0]["captures"]
    assert (clf["name"], clf["kind"], clf["summary"]) == ("clf", "estimator", "LogisticRegression")
    assert run["requirement"]["metric"] == "f1" and run["requirement"]["threshold"] == 0.8
    [gate] = run["gates"]
    assert gate["passed"] is True and gate["value"] == pytest.approx(run["metrics"]["f1"])
    assert run["gate"] == gate
    assert run["params"]["clf.C"] == 0.5
    assert run["environment"]["python"]
    assert run["warnings"] == []
    assert any(a["kind"] == "model" for a in run["artifacts"])


def test_run_shows_attempts_and_integrity_warnings(fetch):
    run_id = (find_run(fetch, "stale-run"))["run_id"]
    run = get_json(fetch, "runs", str(run_id))
    stages = {s["stage"]: s for s in run["stages"]}
    assert [a["attempt"] for a in stages["data"]["attempts"]] == [1, 2]
    assert stages["data"]["attempts"][0]["seq"] < stages["model"]["attempts"][0]["seq"]
    stale = [w for w in run["warnings"] if w["kind"] == "stale"]
    assert [w["stage"] for w in stale] == ["model"]
    assert "data ran again" in stale[0]["message"]
    assert stages["model"]["state"] == "stale" and stages["model"]["status"] == "ok"
    assert stages["data"]["state"] == "ok" and stages["validation"]["state"] == "not run"


def test_registry_lists_models_versions_and_aliases(fetch):
    reply = get_json(fetch, "registry")
    [model] = reply["models"]
    assert model["name"] == "churn-model"
    assert model["aliases"] == {"champion": 1}
    [version] = model["versions"]
    assert version["version"] == 1
    assert version["class"].endswith("LogisticRegression")
    assert version["aliases"] == ["champion"]
    notebook_run = find_run(fetch, "notebook-run")
    assert version["run_id"] == notebook_run["run_id"]


def test_a_missing_store_is_an_empty_one_and_is_not_created(fetch, jp_root_dir):
    (jp_root_dir / "mlops.db").unlink()
    assert get_json(fetch, "projects") == {"store": {"path": "mlops.db", "exists": False}, "projects": []}
    assert get_json(fetch, "registry") == {"models": []}
    code, error = get_error(fetch, "projects", "churn", "runs")
    assert code == 404 and "no project 'churn'" in error["message"]
    code, error = get_error(fetch, "runs", "1")
    assert code == 404
    assert not (jp_root_dir / "mlops.db").exists()


def test_a_store_deleted_and_started_again_is_read_afresh(fetch, jp_root_dir):
    assert {p["project"] for p in get_json(fetch, "projects")["projects"]} == {"churn", "other project"}
    for leftover in jp_root_dir.glob("mlops.db*"):
        leftover.unlink()
    script = "import mlops_nb as mnb; mnb.start('fresh', store='mlops.db').end()"
    subprocess.run([sys.executable, "-c", script], cwd=jp_root_dir, check=True, timeout=60)
    assert [p["project"] for p in get_json(fetch, "projects")["projects"]] == ["fresh"]


def test_store_parameter_reads_another_store_inside_the_root(fetch, jp_root_dir):
    (jp_root_dir / "sub").mkdir()
    (jp_root_dir / "mlops.db").rename(jp_root_dir / "sub" / "runs.db")
    reply = get_json(fetch, "projects", params={"store": "sub/runs.db"})
    assert reply["store"] == {"path": "sub/runs.db", "exists": True}
    assert {p["project"] for p in reply["projects"]} == {"churn", "other project"}
    # A symlink that stays inside the root is fine.
    (jp_root_dir / "link.db").symlink_to(jp_root_dir / "sub" / "runs.db")
    page = get_json(fetch, "projects", "churn", "runs", params={"store": "link.db", "limit": "1"})
    assert page["total"] == 7 and len(page["runs"]) == 1


# -- authentication --------------------------------------------------------------------------------

ROUTES = [("projects",), ("projects", "churn", "runs"), ("runs", "1"), ("registry",)]


@pytest.mark.parametrize("route", ROUTES, ids="/".join)
def test_every_route_answers_403_without_a_token(fetch, route):
    code, _ = get_error(fetch, *route, headers={"Authorization": ""})
    assert code == 403


@pytest.mark.parametrize("route", ROUTES, ids="/".join)
def test_every_route_answers_403_with_a_wrong_token(fetch, route):
    code, _ = get_error(fetch, *route, headers={"Authorization": "token not-the-token"})
    assert code == 403


def test_no_handler_lacks_an_authentication_decorator(tmp_path):
    """Jupyter Server's own check, as the extension template runs it in CI."""
    from jupyter_server.serverapp import ServerApp
    from jupyter_server.utils import JupyterServerAuthWarning

    ServerApp.clear_instance()
    app = ServerApp(allow_unauthenticated_access=False, jpserver_extensions={"mlops_nb.server": True},
                    reraise_server_extension_failures=True, root_dir=str(tmp_path))
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        app.initialize(argv=[], find_extensions=False, new_httpserver=False)
    try:
        assert [str(r.message) for r in records if issubclass(r.category, JupyterServerAuthWarning)] == []
        paths = [rule.matcher.regex.pattern for rule in app.web_app.default_router.rules[0].target.rules
                 if "mlops-nb" in rule.matcher.regex.pattern]
        assert len(paths) == 4
    finally:
        ServerApp.clear_instance()


# -- the store must stay inside the root -----------------------------------------------------------


def outside_store(tmp_path: Path) -> Path:
    """A folder outside the server's root holding a real store, which must never be read."""
    folder = tmp_path / "outside"
    if not folder.exists():
        folder.mkdir()
        with mnb.start("secret", store=folder / "x.db"):
            pass
        store_module.close_all()
    return folder


@pytest.fixture
def outside(tmp_path) -> Path:
    return outside_store(tmp_path)


def escaping_settings(root: Path, outside: Path) -> dict[str, str]:
    (root / "escape.db").symlink_to(outside / "x.db")
    (root / "escape-dir").symlink_to(outside, target_is_directory=True)
    return {
        "dotdot": "../outside/x.db",
        "absolute": str(outside / "x.db"),
        "symlinked-file": "escape.db",
        "symlinked-folder": "escape-dir/x.db",
        "the-root-itself": ".",
    }


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlinked-file", "symlinked-folder", "the-root-itself"])
def test_store_parameter_outside_the_root_is_refused(fetch, jp_root_dir, outside, kind):
    setting = escaping_settings(jp_root_dir, outside)[kind]
    for route in ROUTES:
        code, error = get_error(fetch, *route, params={"store": setting})
        assert code == 400, route
        assert "outside the server's root" in error["message"]
        assert "secret" not in json.dumps(error)


@pytest.mark.parametrize("store_kind", ["dotdot", "absolute", "symlinked-file", "symlinked-folder"])
def test_store_setting_outside_the_root_is_refused(fetch, jp_serverapp, tmp_path, store_kind):
    assert jp_serverapp.web_app.settings["mlops_nb"].store != "mlops.db"
    for route in ROUTES:
        code, error = get_error(fetch, *route)
        assert code == 500, route
        assert "outside the server's root" in error["message"]
        assert "secret" not in json.dumps(error)
    assert (tmp_path / "outside" / "x.db").stat().st_size > 0


def test_resolve_store_accepts_paths_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    assert server.resolve_store("mlops.db", root) == root.resolve() / "mlops.db"
    assert server.resolve_store("a/../b.db", root) == root.resolve() / "b.db"
    assert server.resolve_store(str(root / "a" / "x.db"), root) == root.resolve() / "a" / "x.db"


# -- malformed parameters --------------------------------------------------------------------------

BAD_RUNS_PARAMS = [
    ({"limit": "ten"}, "limit='ten' is not a whole number"),
    ({"limit": "0"}, "limit=0 is out of range"),
    ({"limit": "501"}, "limit=501 is out of range"),
    ({"offset": "-1"}, "offset=-1 is out of range"),
    ({"order": "up"}, "use asc or desc"),
    ({"sort": "metrics.nope"}, "cannot sort by 'metrics.nope'"),
    ({"sort": "1; DROP TABLE runs"}, "cannot sort by"),
    ({"where": "metrics.f1 >"}, "unexpected end of expression"),
    ({"where": "metrics.recall > 0.5"}, "unknown column 'metrics.recall'"),
    ({"where": "name = 'x' or 1 = 1; --"}, "unexpected"),
    ({"limt": "5"}, "unknown parameter 'limt'"),
]


@pytest.mark.parametrize(("params", "message"), BAD_RUNS_PARAMS, ids=[str(p) for p, _ in BAD_RUNS_PARAMS])
def test_malformed_runs_parameters_answer_400_with_a_json_error(fetch, params, message):
    code, error = get_error(fetch, "projects", "churn", "runs", params=params)
    assert code == 400
    assert message in error["message"]


@pytest.mark.parametrize(("route", "params", "message"), [
    (("runs", "abc"), {}, "'abc' is not a run id"),
    (("runs", "1"), {"verbose": "1"}, "unknown parameter 'verbose'"),
    (("projects",), {"where": "x"}, "unknown parameter 'where'"),
    (("runs", "-1"), {}, "'-1' is not a run id"),
])
def test_malformed_parameters_on_other_routes_answer_400(fetch, route, params, message):
    code, error = get_error(fetch, *route, params=params)
    assert code == 400
    assert message in error["message"]


def test_unknown_project_and_run_answer_404(fetch):
    code, error = get_error(fetch, "projects", "nope", "runs")
    assert code == 404 and "no project 'nope'" in error["message"]
    code, error = get_error(fetch, "runs", "999999")
    assert code == 404 and "no run 999999" in error["message"]


@pytest.mark.parametrize("content", [b"", b"not sqlite", "foreign"], ids=["empty", "text", "foreign-sqlite"])
@pytest.mark.parametrize("route", [("projects",), ("registry",), ("runs", "1"), ("projects", "churn", "runs")])
def test_a_file_that_is_not_a_store_answers_400_and_keeps_its_bytes(fetch, jp_root_dir, content, route):
    path = jp_root_dir / "notes.db"
    if content == "foreign":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE notes (text TEXT)")
        conn.close()
    else:
        path.write_bytes(content)
    before = digest(path)
    code, error = get_error(fetch, *route, params={"store": "notes.db"})
    assert code == 400 and "not an mlops-nb store" in error["message"]
    assert digest(path) == before and sorted(p.name for p in jp_root_dir.iterdir()) == ["mlops.db", "notes.db"]


# -- installation ----------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _jupyter(*args: str) -> str:
    jupyter = Path(sys.executable).with_name("jupyter")
    done = subprocess.run([str(jupyter), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return _ANSI.sub("", done.stdout + done.stderr)


def test_the_installed_extensions_are_enabled_and_ok():
    """What `pip install` set up: the prebuilt labextension and the server extension."""
    labextensions = _jupyter("labextension", "list")
    assert re.search(r"mlops-nb v\S+ enabled OK \(python, mlops-nb\)", labextensions), labextensions
    server_extensions = _jupyter("server", "extension", "list")
    assert re.search(r"mlops_nb\.server enabled\n", server_extensions), server_extensions
    assert re.search(r"mlops_nb\.server \S* ?OK", server_extensions), server_extensions


# -- the server's rows of the bad-input table (tests/test_bad_inputs.py has the others) -------------------

SERVER_BAD_REQUESTS = [
    # (route, params, HTTP status, a fragment of the one-line message)
    (("runs", "1180591620717411303424"), {}, 400, "is not a run id"),
    (("runs", "9" * 400), {}, 400, "is not a run id"),
    (("runs", "\u0661"), {}, 400, "is not a run id"),  # an Arabic-Indic one is not run 1
    (("runs", "\uff11"), {}, 400, "is not a run id"),  # a fullwidth one neither
    (("runs", "1.0"), {}, 400, "is not a run id"),
    (("runs", "0x1"), {}, 400, "is not a run id"),
    (("projects", "churn", "runs"), {"offset": str(10**30)}, 400, "offset"),
    (("projects", "churn", "runs"), {"limit": "1e3"}, 400, "limit"),
    (("projects", "churn", "runs"), {"limit": "\u0665"}, 400, "limit"),
    (("projects",), {"store": "."}, 400, "store"),
    (("projects",), {"store": "sub"}, 400, "store"),
    (("projects",), {"store": "../mlops.db"}, 400, "outside the server's root"),
    (("projects",), {"store": "/etc/passwd"}, 400, "outside the server's root"),
    (("registry",), {"store": "empty.db"}, 400, "not an mlops-nb store"),
    (("runs", "1"), {"store": "foreign.db"}, 400, "not an mlops-nb store"),
    (("runs", "999999999"), {}, 404, "no run 999999999"),
    (("projects", "no such project", "runs"), {}, 404, "no project"),
]


@pytest.mark.parametrize(("route", "params", "status", "message"), SERVER_BAD_REQUESTS,
                         ids=[f"{'/'.join(r)}{p}"[:60] for r, p, _, _ in SERVER_BAD_REQUESTS])
def test_bad_requests_get_a_one_line_json_error_and_write_nothing(fetch, jp_root_dir, route, params, status, message):
    (jp_root_dir / "sub").mkdir()
    (jp_root_dir / "empty.db").write_bytes(b"")
    with sqlite3.connect(jp_root_dir / "foreign.db") as conn:
        conn.execute("CREATE TABLE photos (path TEXT)")
    conn.close()
    before = {p.name: digest(p) for p in jp_root_dir.iterdir() if p.is_file()}
    code, error = get_error(fetch, *route, params=params)
    assert code == status, error
    assert message in error["message"] and "\n" not in error["message"] and "Traceback" not in error["message"]
    after = {p.name: digest(p) for p in jp_root_dir.iterdir() if p.is_file()}
    assert {name: after[name] for name in before} == before
    # Reading a WAL store may add SQLite's shared-memory index beside it; nothing else appears.
    assert set(after) - set(before) <= {"mlops.db-wal", "mlops.db-shm"}
