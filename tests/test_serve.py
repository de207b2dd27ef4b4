"""`mlops-nb serve` as a client of `mlflow models serve` sees it: the real command on a free loopback
port, every payload format of MLflow's scoring protocol and CSV, a bad column (400 naming it), a
promotion and a rollback during a stream of requests (no request fails, /version moves), a tampered
package refused at start and on switch, and the per-minute records in the store
(``MLOPS_NB_SERVE_FLUSH`` shortens the minute, ``MLOPS_NB_SERVE_POLL`` the check of ``current``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import mlops_nb as mnb
from mlops_nb.deploy.layout import MANIFEST, package_dir, switch_current
from mlops_nb.store import open_store

EXIT_INTEGRITY = 82


def _answers_every_format(server, bodies: dict, csv_text: str, expected: list) -> None:
    """Each JSON body and the CSV text get 200 and exactly ``expected`` as predictions."""
    for name, body in bodies.items():
        response = server.client.post("/invocations", json=body)
        assert response.status_code == 200, (name, response.text)
        assert response.json() == {"predictions": expected}, name
    response = server.client.post("/invocations", content=csv_text, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "MLOPS_NB_SERVE_FLUSH": "1", "MLOPS_NB_SERVE_POLL": "0.2", **extra}


class Server:
    """`mlops-nb serve` in a process of its own, on a free loopback port."""

    def __init__(self, root: Path, store: Path, *args: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_nb", "--store", str(store), "serve", str(root), "--port", str(self.port),
             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        self.client = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve ended with {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                if self.client.get("/ping").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("serve did not answer /ping within 90 s")

    def stop(self) -> str:
        self.client.close()
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=60)
        return err


@pytest.fixture
def serving(exported):
    servers = []

    def start(*args: str) -> Server:
        server = Server(exported["root"], exported["store"], *args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.stop()


def _rows() -> list[dict]:
    return [{"age": 30, "income": 40.5}, {"age": 62, "income": 71.0}, {"age": 45, "income": 20.25}]


def test_every_payload_format_and_csv_answer_as_mlflow_does_and_a_bad_column_is_400(exported, serving):
    import pandas as pd

    server = serving("--log-rows", "1")
    frame = pd.DataFrame(_rows())
    expected = mnb.load_model(exported["root"]).predict(frame).tolist()
    bodies = {
        "dataframe_split": {"dataframe_split": frame.to_dict(orient="split")},
        "dataframe_records": {"dataframe_records": _rows()},
        "instances": {"instances": _rows()},
        "inputs": {"inputs": {"age": [30, 62, 45], "income": [40.5, 71.0, 20.25]}},
        "instances as lists": {"instances": [[30, 40.5], [62, 71.0], [45, 20.25]]},
    }
    _answers_every_format(server, bodies, frame.to_csv(index=False), expected)
    with_proba = server.client.post("/invocations", json={"dataframe_records": _rows(),
                                                          "params": {"probabilities": True}}).json()["predictions"]
    assert [r["prediction"] for r in with_proba] == expected and "probability_1" in with_proba[0]

    bad = server.client.post("/invocations", json={"dataframe_records": [{"age": 30, "salary": 1.0}]})
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "BAD_REQUEST" and bad.json()["columns"] == ["income"]
    assert "'income' is missing" in bad.json()["message"]
    assert server.client.post("/invocations", content=b"{not json",
                              headers={"Content-Type": "application/json"}).status_code == 400
    assert server.client.post("/invocations", json={"rows": []}).status_code == 400

    assert server.client.get("/health").status_code == 200
    version = server.client.get("/version").json()
    manifest = (package_dir(exported["root"]) / MANIFEST).read_bytes()
    import hashlib

    assert version["model"] == "churn" and version["model_version"] == 1 and version["package_version"] == "v0001"
    assert version["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    assert version["transform"] == "scikit-learn"  # a bare LogisticRegression: no pipeline steps to compile

    # it listens on the loopback address it was given, nothing else
    import psutil

    listening = {c.laddr for c in psutil.net_connections("inet") if c.pid == server.proc.pid and c.status == "LISTEN"}
    assert {addr.ip for addr in listening} == {"127.0.0.1"}

    # the minute reaches the store (flushed each second here) without any request waiting on it
    deadline = time.time() + 30
    minutes = []
    while time.time() < deadline and sum(m["requests"] for m in minutes) < 10:
        time.sleep(0.5)
        minutes = open_store(exported["store"], readonly=True).serving_minutes(package=str(exported["root"]))
    assert sum(m["requests"] for m in minutes) == 10  # 5 JSON + CSV + probabilities + 3 bad
    assert sum(m["rows"] for m in minutes) == 7 * 3
    assert sum(m["bad_requests"] for m in minutes) == 3 and sum(m["errors"] for m in minutes) == 0
    first = next(m for m in minutes if m["rows"])
    assert first["model_name"] == "churn" and first["version_dir"] == "v0001" and first["latency_p50"] > 0
    assert first["latency_p99"] >= first["latency_p50"]
    assert set(first["drift"]) == {"age", "income"} and 0 <= first["drift_share"] <= 1
    assert first["predictions"]["kind"] == "labels"
    # the scores' PSI against the reference: probabilities the flush computed on the sampled rows
    assert first["predictions"]["drift"]["value"] >= 0, first["predictions"]
    assert sum(sum(m["predictions"]["counts"].values()) for m in minutes if m["predictions"]) == 21
    assert sum(m["logged_rows"] for m in minutes) == 21

    # the terminal view, and the logged rows as a file a retraining run reads
    shown = subprocess.run([sys.executable, "-m", "mlops_nb", "--store", str(exported["store"]), "monitor",
                            str(exported["root"])], capture_output=True, text=True, env=_env(), timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "serving" in shown.stdout and "10 requests" in shown.stdout and "v0001" in shown.stdout
    out = exported["folder"] / "served.csv"
    dumped = subprocess.run([sys.executable, "-m", "mlops_nb", "--store", str(exported["store"]), "monitor",
                             str(exported["root"]), "--rows", str(out)], capture_output=True, text=True, env=_env(),
                            timeout=120)
    assert dumped.returncode == 0, dumped.stderr
    logged = pd.read_csv(out)
    assert len(logged) == 21 and {"age", "income", "served_at"} <= set(logged.columns)

    server.client.post("/invocations", json={"dataframe_records": _rows()})
    server.stop()  # SIGTERM: uvicorn ends the lifespan, which flushes the minute in progress
    assert server.proc.returncode in (0, -15)
    minutes = open_store(exported["store"], readonly=True).serving_minutes(package=str(exported["root"]))
    assert sum(m["requests"] for m in minutes) == 11


def test_a_promotion_and_a_rollback_during_a_stream_of_requests_fail_none_and_move_version(exported, serving):
    server = serving()
    stop = threading.Event()
    answers: list[tuple[int, str]] = []
    versions: set[int] = set()

    def stream():
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                r = client.post("/invocations", json={"dataframe_records": _rows()})
                answers.append((r.status_code, r.text))
                versions.add(client.get("/version").json()["model_version"])

    thread = threading.Thread(target=stream)
    thread.start()
    try:
        env = _env(MLOPS_NB_STORE=str(exported["store"]))
        done = subprocess.run([sys.executable, "-P", "-m", "mlops_nb", "retrain", str(exported["root"]), "--force"],
                              capture_output=True, text=True, env=env, cwd=exported["folder"], timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        _wait_for(lambda: server.client.get("/version").json()["model_version"] == 2)
        done = subprocess.run([sys.executable, "-m", "mlops_nb", "rollback", "churn"], capture_output=True, text=True,
                              env=env, cwd=exported["folder"], timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        _wait_for(lambda: server.client.get("/version").json()["model_version"] == 1)
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
    assert len(answers) > 10
    assert [a for a in answers if a[0] != 200] == []
    assert versions == {1, 2}
    err = server.stop()
    assert "now serving v0002" in err and "now serving v0001" in err


def _wait_for(condition, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _tampered_copy(root: Path) -> Path:
    """A new version beside the current one whose model was swapped and its MANIFEST.json rewritten to
    match: the checksums pass, the signature and the store's record do not."""
    import hashlib

    import numpy as np
    import skops.io as sio
    from sklearn.dummy import DummyClassifier

    current = package_dir(root)
    copy = current.parent / "v0002"
    shutil.copytree(current, copy)
    dummy = DummyClassifier(strategy="constant", constant=1).fit(np.zeros((4, 2)), [0, 1, 0, 1])
    data = sio.dumps(dummy)
    (copy / "model.skops").write_bytes(data)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["files"]["model.skops"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (copy / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return copy


def test_a_tampered_package_is_refused_at_start_and_on_switch(exported, serving):
    root, store = exported["root"], exported["store"]
    server = serving()
    before = server.client.post("/invocations", json={"dataframe_records": _rows()}).json()
    switch_current(root, _tampered_copy(root))
    time.sleep(1.5)  # several polls: the switch is refused once and the old version keeps serving
    assert server.client.get("/version").json()["package_version"] == "v0001"
    assert server.client.post("/invocations", json={"dataframe_records": _rows()}).json() == before
    err = server.stop()
    refusals = [line for line in err.splitlines() if "refusing v0002" in line]
    assert len(refusals) == 1 and "SIGNATURE" in refusals[0]  # a new version no store recorded: its signature

    def start() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mlops_nb", "--store", str(store), "serve", str(root), "--port",
                               str(_free_port())], capture_output=True, text=True, env=_env(), timeout=120)

    started = start()  # current names the tampered copy
    assert started.returncode == EXIT_INTEGRITY
    assert started.stderr.strip().splitlines()[-1].startswith("error:") and "SIGNATURE" in started.stderr

    # the exported version itself, its model swapped and its manifest rewritten: the store's record names the file
    first = root / "versions" / "v0001"
    switch_current(root, first)
    shutil.rmtree(root / "versions" / "v0002")
    _tampered_copy(root)
    shutil.rmtree(first)
    (root / "versions" / "v0002").rename(first)
    started = start()
    assert started.returncode == EXIT_INTEGRITY
    last = started.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "model.skops (differs from the recorded manifest)" in last
    assert "Traceback" not in started.stderr


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """The mixed-type notebook (strings, missing values, a features cell changing its frame in place)
    through export, once for the module."""
    from serving_notebooks import mixed_types

    from mlops_nb.store import close_all

    yield mixed_types(tmp_path_factory.mktemp("mixed"))
    close_all()


def test_raw_rows_in_every_format_get_the_notebooks_predictions_from_the_server(mixed):
    import math

    import pandas as pd

    raw = pd.read_csv(mixed.folder / "raw.csv")
    expected = pd.read_pickle(mixed.folder / "expected.pkl").reset_index(drop=True)
    rows = raw.iloc[:40]
    labels = expected["prediction"].iloc[:40].tolist()

    def clean(value):  # JSON has null where the rows have NaN
        return None if isinstance(value, float) and math.isnan(value) else value

    records = [{k: clean(v) for k, v in r.items()} for r in rows.astype(object).to_dict(orient="records")]
    values = rows.astype(object).values.tolist()
    split = {"columns": list(rows.columns), "data": [[clean(v) for v in r] for r in values]}
    bodies = {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": {c: [clean(v) for v in rows[c].astype(object)] for c in rows.columns}},
    }
    server = Server(mixed.package, mixed.store)
    try:
        # its ColumnTransformer runs from its fitted attributes (deploy/transforms.py), to the same answers
        assert server.client.get("/version").json()["transform"] == "compiled"
        _answers_every_format(server, bodies, rows.to_csv(index=False), labels)
        one = server.client.post("/invocations", json={"dataframe_records": records[:1],
                                                       "params": {"probabilities": True}}).json()["predictions"]
        assert one[0]["probability_1"] == pytest.approx(expected["probability_1"].iloc[0], rel=1e-9)
        # the model's own input is taken as well; a raw row without a column the notebook read is 400
        X = pd.read_pickle(mixed.folder / "model_input.pkl").iloc[:40]
        response = server.client.post("/invocations", content=X.to_csv(index=False),
                                      headers={"Content-Type": "text/csv"})
        assert response.json() == {"predictions": labels}
        bad = server.client.post("/invocations", json={"dataframe_records": [
            {k: v for k, v in records[0].items() if k != "sibsp"}]})
        assert bad.status_code == 400 and "sibsp" in bad.json()["columns"], bad.text

        # 16 clients at once, one of them sending a bad row: the requests that share a model call
        # each get their own row's prediction, and the bad one alone its 400
        from concurrent.futures import ThreadPoolExecutor

        def send(i: int) -> httpx.Response:
            record = dict(records[i]) if i != 5 else {**records[i], "sex": None}
            with httpx.Client(base_url=server.url, timeout=60) as client:
                return client.post("/invocations", json={"dataframe_records": [record]})

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(send, range(16)))
        assert answers[5].status_code == 400 and answers[5].json()["columns"] == ["sex"], answers[5].text
        assert [a.json()["predictions"] for i, a in enumerate(answers) if i != 5] == [
            [label] for i, label in enumerate(labels[:16]) if i != 5]
    finally:
        server.stop()  # flushes the minute in progress
    # the minutes' drift sketches read the sampled requests' bodies again: text and number columns alike
    minutes = [m for m in open_store(mixed.store, readonly=True).serving_minutes(package=str(mixed.package))
               if m.get("drift")]
    assert minutes, "no minute with a drift sketch"
    sketched = set().union(*(m["drift"] for m in minutes))
    assert {"sex", "embarked", "age", "fare"} <= sketched, sketched
    assert all(m["drift"][c]["value"] is not None for m in minutes for c in m["drift"]), minutes


def test_one_model_call_for_many_frames_answers_each_as_its_own_call_would(mixed):
    import pandas as pd

    from mlops_nb.deploy.predict import load_model
    from mlops_nb.errors import SchemaMismatch

    model = load_model(mixed.package)
    scorer = model.predict.scorer()
    raw = pd.read_csv(mixed.folder / "raw.csv")
    frames = [raw.iloc[i:i + 3] for i in range(0, 12, 3)]
    frames[2] = frames[2].drop(columns=["fare"])
    out = scorer.predict_many(frames)
    assert isinstance(out[2], SchemaMismatch) and "'fare' is missing" in str(out[2])
    for frame, got in zip(frames, out, strict=True):
        if not isinstance(got, Exception):
            pd.testing.assert_frame_equal(got, scorer.predict(frame), check_exact=False, rtol=1e-12)
            assert list(got.index) == list(frame.index)
