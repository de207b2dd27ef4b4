"""Syncing to MLflow, against a real ``mlflow server`` (SQLite backend, local artifact folder) on a free
loopback port: a store written by a real notebook run and a real retraining job is pushed, then
everything is read back through MLflow's own client. Then: a second sync pushes nothing, new metrics
are pushed alone, a sync killed with kill -9 part-way and resumed pushes each value exactly once, and
a run that ends while the server is down is finished locally and pushed by the next sync.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient  # noqa: E402  (the test extra installs mlflow: a missing one fails, never skips)
from notebook_helpers import notebook, run_notebook, text_of
from test_retrain import build_package, job

import mlops_nb as mnb
from mlops_nb.store import close_all, open_store
from mlops_nb.sync import sync_mlflow
from mlops_nb.tracking import sync_state

MLOPS_NB = str(Path(sys.executable).parent / "mlops-nb")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(folder: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite backend, local artifacts) on a free loopback port; its URI."""
    port = free_port()
    log = open(folder / "server.log", "w")  # noqa: SIM115  (open while the server runs)
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((folder / "server.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        yield uri
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real MLflow tracking server; it takes several seconds to start, so one per module."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


@pytest.fixture(scope="module")
def pkg(tmp_path_factory):
    yield build_package(tmp_path_factory.mktemp("sync"))
    close_all()


def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def remote_runs(uri: str, experiment: str) -> dict[str, object]:
    """The experiment's runs by local run id (``mlops_nb.run_id`` tag)."""
    c = client(uri)
    found = c.get_experiment_by_name(experiment)
    if found is None:
        return {}
    return {r.data.tags["mlops_nb.run_id"]: r for r in c.search_runs([found.experiment_id], max_results=1000)}


def artifact_paths(uri: str, run_id: str, path: str = "") -> list[str]:
    out = []
    for info in client(uri).list_artifacts(run_id, path or None):
        out += artifact_paths(uri, run_id, info.path) if info.is_dir else [info.path]
    return out


def test_a_notebook_run_and_a_retraining_run_are_mirrored_and_read_back_through_mlflow(server, pkg):
    store = pkg["store"]
    result = subprocess.run([MLOPS_NB, "--store", str(store), "sync", "mlflow", "--tracking-uri", server, "--auto"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "1 new run(s)" in result.stdout and "1 model version(s)" in result.stdout

    # The retraining job pushes its own run (the store's mlflow_uri setting, set by --auto above).
    retrained = job(pkg, "--data", str(pkg["better"]))
    assert retrained.returncode == 0, retrained.stdout + retrained.stderr
    assert "pushed to MLflow" in retrained.stdout

    runs = remote_runs(server, "churn")
    assert sorted(runs) == ["1", "2"]
    notebook_run, retraining_run = runs["1"], runs["2"]
    local = open_store(store, readonly=True)
    details = local.run_details(1)
    assert notebook_run.info.status == "FINISHED" and notebook_run.info.run_name == details["name"]
    assert notebook_run.info.start_time == round(details["start_time"] * 1000)
    assert notebook_run.info.end_time == round(details["end_time"] * 1000)
    assert notebook_run.data.metrics["f1"] == pytest.approx(details["metrics"]["f1"])
    tags = notebook_run.data.tags
    assert tags["mlops_nb.kind"] == "notebook" and tags["mlops_nb.integrity"] == "ok"
    assert tags["mlops_nb.stages"].startswith("data ok, features ok, model ok, validation ok")
    assert tags["mlops_nb.gate"].startswith("f1 >= 0.7: ") and tags["mlops_nb.gate"].endswith("passed")

    # The retraining run: its parent, params, every metric value with its step, tags.
    rtags = retraining_run.data.tags
    assert rtags["mlops_nb.kind"] == "retraining" and rtags["mlops_nb.parent"] == "1"
    assert rtags["mlflow.parentRunId"] == notebook_run.info.run_id
    assert rtags["decision"] == "promoted"
    params, _ = local.run_params_tags(2)
    assert set(retraining_run.data.params) == set(params)
    for key in ("exit_code", "duration_s"):
        history = client(server).get_metric_history(retraining_run.info.run_id, key)
        assert [(m.step, m.value) for m in history] == [
            (int(s), v) for s, v in local.conn.execute(
                "SELECT step, value FROM metrics WHERE run_id = 2 AND key = ? ORDER BY rowid", (key,))]

    # Artifacts: stage sources, the stages table, DataFrame profiles, the environment, the model file.
    files = artifact_paths(server, notebook_run.info.run_id)
    assert {"mlops-nb/stages.json", "mlops-nb/environment.json"} <= set(files)
    assert [f for f in files if f.startswith("mlops-nb/stages/") and f.endswith("-data-1.py")]
    assert [f for f in files if f.startswith("mlops-nb/profiles/") and f.endswith("-df.json")]
    assert [f for f in files if f.startswith("mlops-nb/artifacts/") and f.endswith(".skops")]
    stage_file = next(f for f in files if f.endswith("-data-1.py"))
    got = client(server).download_artifacts(notebook_run.info.run_id, stage_file, str(pkg["folder"]))
    assert Path(got).read_text() == "%%stage data\ndf = pd.read_csv('data.csv')"

    # The registry: both versions, their descriptions, sources in the runs' artifacts, the aliases.
    c = client(server)
    versions = {v.tags["mlops_nb.version"]: v for v in c.search_model_versions("name = 'churn'")}
    assert sorted(versions) == ["1", "2"]
    assert versions["1"].run_id == notebook_run.info.run_id and versions["2"].run_id == retraining_run.info.run_id
    assert versions["1"].source.endswith(".skops") and versions["1"].tags["mlops_nb.format"] == "skops"
    local_versions = {v["version"]: v for v in local.model_versions("churn")}
    assert (versions["2"].description or None) == (local_versions[2]["description"] or None)
    model = c.get_registered_model("churn")
    assert model.aliases["champion"] == versions["2"].version and model.aliases["previous"] == versions["1"].version

    # A second sync pushes nothing and changes nothing on the server.
    before = {k: (r.data.metrics, r.data.params, r.data.tags) for k, r in runs.items()}
    again = subprocess.run([MLOPS_NB, "--store", str(store), "sync", "mlflow"], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0 and "up to date; nothing to push" in again.stdout
    after = {k: (r.data.metrics, r.data.params, r.data.tags) for k, r in remote_runs(server, "churn").items()}
    assert after == before
    assert len(c.search_model_versions("name = 'churn'")) == 2


def test_new_metrics_after_a_sync_are_pushed_alone(server, tmp_path):
    store = tmp_path / "mlops.db"
    run = mnb.start("epochs", store=store)
    run.log_params({"lr": 0.1, "layers": [64, 32], "long": "x" * 7000})
    for epoch in range(3):
        run.log_metrics({"loss": 1 / (epoch + 1), "acc": epoch / 10}, step=epoch)
    first = sync_mlflow(server, store=store)
    assert first.runs_created == 1 and first.metric_values == 6
    for epoch in range(3, 5):
        run.log_metrics({"loss": 1 / (epoch + 1), "acc": epoch / 10}, step=epoch)
    second = sync_mlflow(server, store=store)
    assert second.runs_created == 0 and second.metric_values == 4
    [remote] = remote_runs(server, "epochs").values()
    history = client(server).get_metric_history(remote.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(e, 1 / (e + 1)) for e in range(5)]
    assert remote.info.status == "RUNNING"
    # Too long a param is truncated to MLflow's limit, with a tag saying so, never dropped.
    assert len(remote.data.params["long"]) == 6000 and remote.data.params["layers"] == "[64, 32]"
    assert "7000 characters" in remote.data.tags["mlops_nb.truncated.params.long"]
    run.end()
    assert sync_mlflow(server, store=store).metric_values == 0
    [remote] = remote_runs(server, "epochs").values()
    assert remote.info.status == "FINISHED"


KILLER = textwrap.dedent("""
    import os, signal, sys
    from mlflow import MlflowClient
    from mlops_nb.tracking import sync_state
    name, kill_at = sys.argv[3].split(":")
    owner = {"record_run": sync_state, "log_batch": MlflowClient}[name]
    calls, real = [0], getattr(owner, name)
    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9, right before this call
        return real(*args, **kwargs)
    setattr(owner, name, wrapped)
    from mlops_nb.sync import sync_mlflow
    sync_mlflow(sys.argv[1], store=sys.argv[2], progress=False)
""")


def _many_metrics_store(path: Path, project: str) -> None:
    for r in range(2):
        with mnb.start(project, store=path, name=f"r{r}") as run:
            run.log_params({"r": r})
            for step in range(700):  # 1,400 values a run: two log_batch calls each
                run.log_metrics({"loss": 1 / (step + 1), "acc": step / 700}, step=step)


@pytest.mark.parametrize("kill_at", ["record_run:2", "log_batch:2", "record_run:3"])
def test_a_sync_killed_part_way_and_resumed_pushes_every_value_exactly_once(server, tmp_path, kill_at):
    # The first run's bookkeeping is three writes (record_run calls): 1 the intent to create it, 2 its
    # MLflow id with all its values in flight, 3 all acknowledged once the run is pushed. Killed at 2:
    # the run exists on the server, the store does not know it. At the second log_batch: the first
    # batch reached the server, the second did not. At 3: every value reached the server, the store
    # still says they are in flight.
    store = tmp_path / "mlops.db"
    project = "killed-" + kill_at.replace(":", "")
    _many_metrics_store(store, project)
    close_all()
    killed = subprocess.run([sys.executable, "-c", KILLER, server, str(store), kill_at],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    state = open_store(store, readonly=True).sync_runs(server)[1]
    if kill_at == "record_run:2":  # MLflow created the run; the store does not know its id
        assert state["remote_id"] is None and list(remote_runs(server, project)) == ["1"]
    else:  # values reached the server; the store still says they are in flight
        assert state["inflight_rowid"] is not None and state["metric_rowid"] == 0
        on_server = len(client(server).get_metric_history(state["remote_id"], "loss"))
        assert (0 < on_server < 700) if kill_at == "log_batch:2" else on_server == 700
    close_all()
    sync_mlflow(server, store=store)
    assert sync_mlflow(server, store=store).nothing
    runs = remote_runs(server, project)
    assert sorted(runs) == ["1", "2"]  # no run created twice
    local = open_store(store, readonly=True)
    for local_id, remote in runs.items():
        for key in ("loss", "acc"):
            history = client(server).get_metric_history(remote.info.run_id, key)
            expected = local.conn.execute("SELECT step, value, time FROM metrics WHERE run_id = ? AND key = ?"
                                          " ORDER BY rowid", (int(local_id), key)).fetchall()
            assert [(m.step, m.value, m.timestamp) for m in history] == [
                (s, v, round(t * 1000)) for s, v, t in expected]
        assert remote.info.status == "FINISHED" and remote.data.params == {"r": str(int(local_id) - 1)}
    # Both runs have the same environment: uploaded once, with the first run, and named by both.
    holder = f"runs:/{runs['1'].info.run_id}/mlops-nb/environment.json"
    assert {r.data.tags["mlops_nb.environment"] for r in runs.values()} == {holder}
    assert "mlops-nb/environment.json" in artifact_paths(server, runs["1"].info.run_id)
    assert "mlops-nb/environment.json" not in artifact_paths(server, runs["2"].info.run_id)
    import mlflow.artifacts

    got = mlflow.artifacts.download_artifacts(holder, dst_path=str(tmp_path), tracking_uri=server)
    assert json.loads(Path(got).read_text()) == json.loads(local.run(2)["environment"])


def test_a_run_ending_while_the_server_is_down_stays_finished_and_is_pushed_later(server, tmp_path, capfd):
    store = tmp_path / "mlops.db"
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: a stopped server
    run = mnb.start("offline", store=store)
    sync_state.set_setting("mlflow_uri", down, store=run.store)
    run.log_metric("f1", 0.9)
    started = time.monotonic()
    run.end()
    assert time.monotonic() - started < 15  # short timeouts: the end of a run does not stall
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "recorded locally but was not pushed" in err and down in err
    assert open_store(store, readonly=True).run(run.id)["status"] == "finished"

    result = subprocess.run([MLOPS_NB, "--store", str(store), "sync", "mlflow"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 69 and result.stderr.startswith("error: the MLflow server") and down in result.stderr

    sync_state.set_setting("mlflow_uri", server, store=run.store)  # the server is back
    assert sync_mlflow(server, store=store).runs_created == 1
    [remote] = remote_runs(server, "offline").values()
    assert remote.info.status == "FINISHED" and remote.data.metrics == {"f1": 0.9}


def test_dry_run_asks_nothing_and_a_missing_uri_says_what_to_pass(tmp_path):
    store = tmp_path / "mlops.db"
    with mnb.start("dry", store=store) as run:
        run.log_metric("m", 1.0)
    result = subprocess.run([MLOPS_NB, "--store", str(store), "sync", "mlflow", "--tracking-uri",
                             "http://127.0.0.1:9", "--dry-run"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "would push" in result.stdout and "1 new run(s)" in result.stdout
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    missing = subprocess.run([MLOPS_NB, "--store", str(store), "sync", "mlflow"], capture_output=True, text=True,
                             timeout=120, env=env)
    assert missing.returncode == 1 and "--tracking-uri" in missing.stderr
    assert json.loads(json.dumps(open_store(store, readonly=True).sync_runs("http://127.0.0.1:9"))) == {}


def test_percent_mlops_sync_prints_one_line_and_auto_pushes_the_run_when_it_ends(server, tmp_path):
    cells = [
        "%load_ext mlops_nb\n%mlops start magic",
        "%mlops log f1=0.9",
        f"%mlops sync --tracking-uri {server} --auto",
        "%mlops log f1=0.95",
        "%mlops end",
    ]
    done = run_notebook(notebook(cells), tmp_path, store=tmp_path / "mlops.db", timeout=300)
    synced = text_of(done.cells[2].outputs).strip()
    assert synced.count("\n") == 0 and "1 new run(s)" in synced and "pushes itself" in synced
    assert "pushed to MLflow" in text_of(done.cells[4].outputs)
    [remote] = remote_runs(server, "magic").values()
    assert remote.info.status == "FINISHED"
    history = client(server).get_metric_history(remote.info.run_id, "f1")
    assert [m.value for m in history] == [0.9, 0.95]
