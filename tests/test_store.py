"""The store under real conditions: several processes, killed processes, and files it must refuse."""

from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import mlops_nb as mnb
from mlops_nb.errors import StoreError
from mlops_nb.store import close_all, open_store
from mlops_nb.store.migrations import migrations

TABLES = {
    "projects", "runs", "params", "param_history", "metrics", "tags", "artifacts", "stages", "cells",
    "captures", "candidates", "requirements", "gates", "warnings", "model_versions", "aliases",
    "alias_history", "drift", "_sqlite_migrations",
}  # fmt: skip
MIGRATIONS = [m.name for m in migrations._migrations]  # every one, in order, applied once


def python(code: str, *args, **popen) -> subprocess.Popen:
    """Start ``code`` in a fresh interpreter (a real, separate process)."""
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_NB_STORE"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        stdin=popen.pop("stdin", subprocess.PIPE), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, **popen,
    )  # fmt: skip


def finish(process: subprocess.Popen, timeout: float = 120) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out


def schema(path: Path) -> tuple[set[str], list[str], str]:
    """Tables, applied migrations and journal mode, read with plain sqlite3."""
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        applied = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY applied_at, name")]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    return tables, applied, mode


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- a fresh store --------------------------------------------------------------------------------


def test_a_new_store_has_the_whole_schema_in_wal_mode(store_path):
    store = open_store(store_path, create=True)
    tables, applied, mode = schema(store_path)
    assert TABLES - tables == set()
    assert applied == MIGRATIONS
    assert mode == "wal"
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_a_store_in_a_new_folder_creates_the_folder(tmp_path):
    path = tmp_path / "deep" / "er" / "mlops.db"
    with mnb.start("churn", store=path) as run:
        run.log_metric("f1", 0.9)
    assert len(mnb.runs(store=path)) == 1


def test_reopening_a_store_in_another_process_applies_no_migration_twice(store_path):
    with mnb.start("churn", store=store_path) as run:
        run.log_metric("f1", 0.9)
    finish(python("import sys, mlops_nb as mnb; print(len(mnb.runs(store=sys.argv[1])))", store_path))
    assert schema(store_path)[1] == MIGRATIONS


# -- several processes at once --------------------------------------------------------------------

WRITER = """
    import sys
    import mlops_nb as mnb

    path, count = sys.argv[1], int(sys.argv[2])
    run = mnb.start("concurrent", store=path)
    print(run.id, flush=True)
    sys.stdin.readline()  # the barrier: every writer is ready, go
    for i in range(count):
        run.log_metric("loss", 1.0 / (i + 1))
    run.end()
    print("done", flush=True)
"""


def test_four_processes_logging_one_metric_at_a_time_lose_no_row(store_path):
    open_store(store_path, create=True)  # created beforehand: this test is about concurrent writes
    writers = [python(WRITER, store_path, 5000) for _ in range(4)]
    run_ids = [int(w.stdout.readline()) for w in writers]
    for w in writers:
        w.stdin.write("go\n")
        w.stdin.flush()
    for w in writers:
        assert finish(w, timeout=300).split() == ["done"]

    with sqlite3.connect(store_path) as conn:
        counts = dict(conn.execute(
            "SELECT run_id, count(*) FROM metrics GROUP BY run_id").fetchall())  # fmt: skip
        steps = conn.execute(
            "SELECT count(*) FROM (SELECT DISTINCT run_id, step FROM metrics)").fetchone()[0]  # fmt: skip
        statuses = {r[0] for r in conn.execute("SELECT status FROM runs")}
    assert counts == {run_id: 5000 for run_id in run_ids}
    assert steps == 20000  # every process numbered its own steps 0..4999
    assert statuses == {"finished"}


CREATOR = """
    import sys, time
    import sqlite_utils, mlops_nb.store.migrations  # imported before the race, not during it
    import mlops_nb as mnb

    slot, paths = float(sys.argv[1]), sys.argv[2:]
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    for i, path in enumerate(paths):
        while time.time() < start_at + i * slot:
            pass
        try:
            with mnb.start("race", store=path) as run:
                run.log_metric("f1", 0.5)
            print("ok", flush=True)
        except Exception as exc:
            print(f"failed {i}: {type(exc).__name__}: {exc}", flush=True)
"""


def test_two_processes_creating_the_same_new_store_at_the_same_moment_both_succeed(tmp_path):
    paths = [tmp_path / f"race{i}" / "mlops.db" for i in range(20)]
    slot = 0.4  # seconds between rounds: each round starts both processes at the same instant
    creators = [python(CREATOR, slot, *paths) for _ in range(2)]
    for c in creators:
        assert c.stdout.readline().strip() == "ready", c.stderr.read()
    start_at = time.time() + 0.2
    for c in creators:
        c.stdin.write(f"{start_at}\n")
        c.stdin.flush()
    outputs = [finish(c).splitlines() for c in creators]

    assert outputs == [["ok"] * 20, ["ok"] * 20]
    for path in paths:
        tables, applied, mode = schema(path)
        assert TABLES - tables == set(), path
        assert applied == MIGRATIONS, path
        assert mode == "wal"
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM runs WHERE status = 'finished'").fetchone()[0] == 2
            assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] == 1


# -- a process that dies mid-run ------------------------------------------------------------------

KILLED = """
    import os, signal, sys
    import mlops_nb as mnb

    run = mnb.start("crash", store=sys.argv[1])
    run.log_metric("loss", 0.5)
    print(run.id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""

ALIVE = """
    import sys
    import mlops_nb as mnb

    run = mnb.start("crash", store=sys.argv[1])
    print(run.id, flush=True)
    sys.stdin.readline()
    run.log_metric("loss", 0.1)
    run.end()
"""


def test_a_killed_run_stays_running_until_another_process_opens_the_store(store_path):
    alive = python(ALIVE, store_path)
    alive_id = int(alive.stdout.readline())
    killed = python(KILLED, store_path)
    out, err = killed.communicate(timeout=60)
    assert killed.returncode == -9, err
    killed_id = int(out)

    with sqlite3.connect(store_path) as conn:  # a look that is not an mlops-nb open
        status = dict(conn.execute("SELECT id, status FROM runs").fetchall())
    assert status == {alive_id: "running", killed_id: "running"}

    frame = mnb.runs(store=store_path).set_index("run_id")  # this process opens the store
    assert frame.loc[killed_id, "status"] == "interrupted"
    assert frame.loc[killed_id, "metrics.loss"] == 0.5  # what it logged before dying is kept
    assert frame.loc[alive_id, "status"] == "running"  # its process is still there
    killed_run = open_store(store_path).run(killed_id)
    assert "ended without ending the run" in killed_run["error"]
    assert killed_run["end_time"] is not None

    alive.stdin.write("go\n")
    alive.stdin.flush()
    finish(alive)
    assert open_store(store_path).run(alive_id)["status"] == "finished"


def test_an_interrupted_run_refuses_more_logging(store_path):
    killed = python(KILLED, store_path)
    out, _ = killed.communicate(timeout=60)
    run = mnb.get_run(int(out), store=store_path)
    assert run.status == "interrupted"
    with pytest.raises(mnb.MlopsError, match="has ended \\(interrupted\\)"):
        run.log_metric("loss", 0.4)


# -- paths and files the store must refuse, touching nothing --------------------------------------


def test_a_file_that_is_not_sqlite_is_refused_and_left_byte_identical(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"my precious notes\n" * 100)
    before = fingerprint(tmp_path)

    with pytest.raises(StoreError) as info:
        mnb.start("churn", store=path)

    message = str(info.value)
    assert str(path) in message and "not a SQLite database" in message
    assert "left untouched" in message and "MLOPS_NB_STORE" in message  # the fix
    assert fingerprint(tmp_path) == before  # no -wal, -shm or artifacts folder either


def test_a_store_under_a_regular_file_is_refused_with_the_fix(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    before = fingerprint(tmp_path)

    with pytest.raises(StoreError) as info:
        mnb.start("churn", store=blocker / "sub" / "mlops.db")

    message = str(info.value)
    assert f"cannot create the folder {blocker / 'sub'}" in message
    assert "choose a writable location" in message
    assert fingerprint(tmp_path) == before


def test_a_folder_given_as_the_store_is_refused(tmp_path):
    with pytest.raises(StoreError, match="is a folder; give a file path"):
        mnb.start("churn", store=tmp_path)


# Root can write to a 0o444 file, so as root such a file is not read-only at all. To see what a user
# sees, the refusing process runs without the capabilities that let root ignore file modes.
WITHOUT_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]

OPEN = """
    import sys
    import mlops_nb as mnb
    from mlops_nb.errors import StoreError

    try:
        mnb.start("churn", store=sys.argv[1])
    except StoreError as exc:
        print(exc)
    else:
        print("opened")
"""


def open_as_a_user(path: Path) -> str:
    """Open the store in a process bound by file permissions; what it printed."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: file permissions cannot be enforced")
        prefix = WITHOUT_OVERRIDE
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_NB_STORE"}
    result = subprocess.run(
        [*prefix, sys.executable, "-c", textwrap.dedent(OPEN), str(path)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_read_only_store_is_refused_and_left_byte_identical(store_path):
    with mnb.start("churn", store=store_path) as run:
        run.log_metric("f1", 0.9)
    close_all()  # checkpoints and removes the -wal file
    store_path.chmod(0o444)
    before = fingerprint(store_path.parent)

    message = open_as_a_user(store_path)

    assert message.startswith(f"the store {store_path} is read-only")
    assert "chmod u+w" in message and "--store PATH" in message
    assert fingerprint(store_path.parent) == before


def test_a_store_in_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        message = open_as_a_user(folder / "mlops.db")
    finally:
        folder.chmod(0o755)
    assert message.startswith(f"cannot write in {folder}")
    assert "choose a writable location" in message
    assert list(folder.iterdir()) == []


def test_the_schema_version_counts_every_migration_and_a_migrated_store_skips_sqlite_utils(store_path):
    from mlops_nb.store import SCHEMA_VERSION, open_store
    from mlops_nb.store.migrations import migrations

    assert len(migrations._migrations) == SCHEMA_VERSION
    open_store(store_path, create=True)
    assert sqlite3.connect(store_path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    # Opening it again in a fresh process must not pay for importing sqlite-utils.
    code = ("import sys; from mlops_nb.store import open_store; open_store(sys.argv[1]);"
            " print('sqlite_utils' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(store_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- reading never writes ------------------------------------------------------------------------------


def recorded_store(store_path: Path) -> int:
    """A store with one of everything a read can show: a finished notebook-like run with stages,
    captures, a requirement and gate, warnings, a registered model, a deployment and a retraining
    child with drift. Returns the notebook run's id."""
    from mlops_nb.stages import Requirement
    from mlops_nb.tracking import lifecycle, registry, retraining, serving
    from mlops_nb.tracking.deployments import record_deployment

    run = mnb.start("churn", name="nb", store=store_path, kind="notebook")
    run.log_params({"C": 1.0, "model": "rf"})
    run.log_metric("f1", 0.9)
    run.set_tag("owner", "ana")
    lifecycle.set_requirement(run, Requirement("f1", ">=", 0.85), target="churned")
    data = lifecycle.begin_stage(run, "data", source="df = load()", cell_id="c1", execution_count=1)
    lifecycle.finish_stage(run, data, duration=0.1, status="ok", variables=["df"], captures=[
        {"name": "df", "kind": "dataframe", "fingerprint": "abc", "rows": 3, "columns": []}])
    model = lifecycle.begin_stage(run, "model", source="clf = fit(df)", cell_id="c2", execution_count=2)
    lifecycle.finish_stage(run, model, duration=0.2, status="ok", variables=["clf"], captures=[
        {"name": "clf", "kind": "estimator", "class": "sklearn.X", "artifact": b"model bytes"}])
    lifecycle.record_cell(run, source="df = df.head()", cell_id="c3", execution_count=3, status="ok")
    validation = lifecycle.begin_stage(run, "validation", source="f1 = 0.9", cell_id="c4", execution_count=4)
    lifecycle.finish_stage(run, validation, duration=0.1, status="ok", metrics={"f1": 0.9}, gate={
        "metric": "f1", "op": ">=", "threshold": 0.85, "value": 0.9, "passed": 1})
    lifecycle.judge(run)
    registry.register("clf", "churn-rf", run=run.id, store=store_path)
    record_deployment(run.id, source="export", start_time=time.time(), duration=1.0,
                      summary={"model": "churn-rf", "version": 1, "path": "/pkg"}, manifest=b"{}", store=store_path)
    run.end()
    child = mnb.start("churn", store=store_path, kind="retraining", parent=run.id)
    retraining.record_drift(child.id, [{"column": "x", "kind": "numeric", "statistic": "psi", "value": 0.3,
                                        "verdict": "drift", "details": {}}], b"{}", store=store_path)
    retraining.finish_retraining(child.id, ok=True, metrics={"candidate_f1": 0.91}, store=store_path)
    serving.record_minute({"package": "/pkg", "run_id": run.id, "minute": time.time(), "seconds": 60, "requests": 2,
                           "rows": 3, "errors": 0, "bad_requests": 1, "latency_p50": 1.0, "latency_p90": 2.0,
                           "latency_p99": 3.0, "latency_max": 3.0, "drift": {"x": {"verdict": "ok"}}},
                          rows_csv=b"x\n1\n", store=store_path)
    close_all()
    return run.id


def every_public_read(store, run_id: int) -> dict[str, object]:
    """Call each public method of ``Store`` with arguments it accepts; return the results by name."""
    calls = {
        "run": (run_id,), "run_details": (run_id,), "last_steps": (run_id,), "metric_history": (run_id, "f1"),
        "metric_histories": ([run_id], "f1"), "known_keys": ("churn",), "projects": (), "run_ids": ("churn",),
        "runs_page": ("churn",), "runs_frame": ("churn", "metrics.f1 > 0.5"), "runs_overview": ("churn",),
        "compile_where": ("params.C = 1",), "latest_run_id": ("churn",), "rows": ("SELECT count(*) FROM runs",),
        "events": (run_id,), "warnings": (run_id,), "requirement": (run_id,), "resumable_run": ("kernel-1.json",),
        "captures": (run_id,), "gates": (run_id,), "stage_captures": (run_id,), "stage_sources": ([run_id],),
        "data_fingerprints": ([run_id],), "child_runs": (run_id,), "artifact": (1,), "model_versions": (),
        "model_version": ("churn-rf", 1), "aliases": ("churn-rf",), "alias_history": ("churn-rf",),
        "deployments": ("churn-rf",), "manifests": ("/pkg", "v0001"), "drift": (run_id + 1,),
        "artifact_path": ("mlops-artifacts/x",), "has_project": ("churn",), "serving_minutes": (),
        "served_packages": (),
        "requirement_metrics": ([run_id],), "max_run_id": (), "notebook_runs": ("churn.ipynb",),
        "stage_frames": (run_id, ["data"]),
        "setting": ("mlflow_uri",), "settings": (),
        "sync_runs": ("http://mlflow",), "sync_items": ("http://mlflow", "artifact"), "runs_to_sync": (["churn"], 1),
        "metric_rows": (run_id, 0, 10), "run_params_tags": (run_id,), "all_params_tags": ([run_id],),
        "lifecycle_digest": ([run_id],),
    }
    public = {name for name in dir(store) if not name.startswith("_") and inspect.ismethod(getattr(store, name))}
    assert public - {"close"} == set(calls), "a new read of Store: add it here, so it is checked too"
    return {name: getattr(store, name)(*args) for name, args in calls.items()}


def file_digests(store_path: Path) -> dict[str, str]:
    """SHA-256 of the store and its WAL (a write lands in the WAL before any checkpoint)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (store_path, store_path.with_name(store_path.name + "-wal")) if p.exists()}


@pytest.mark.parametrize("readonly", [True, False], ids=["read-only open", "writing open"])
def test_every_read_of_the_store_leaves_its_files_byte_identical(store_path, readonly):
    run_id = recorded_store(store_path)
    store = open_store(store_path, readonly=readonly)  # the writing open may settle runs: before the digest
    before = file_digests(store_path)
    results = every_public_read(store, run_id)
    assert file_digests(store_path) == before
    # the reads saw the record, so the check above covered real work
    assert results["run_details"]["requirement"]["metric"] == "f1"
    assert [s["stage"] for s in results["run_details"]["stages"]] == ["data", "model", "validation", "deployment"]
    assert results["deployments"][0]["path"] == "/pkg" and results["drift"][0]["verdict"] == "drift"
    assert results["child_runs"][0]["metrics"] == {"candidate_f1": 0.91}


def test_a_write_through_a_read_only_store_is_refused_and_changes_nothing(store_path):
    from mlops_nb.store.writer import Writer

    recorded_store(store_path)
    running = mnb.start("churn", store=store_path).id  # still running: only the store stops the write
    close_all()
    store = open_store(store_path, readonly=True)
    before = file_digests(store_path)
    with pytest.raises(StoreError, match="opened read-only.*open_store"):
        Writer(store)
    run = mnb.get_run(running, store=store)
    with pytest.raises(StoreError, match="opened read-only"):
        run.log_metric("f1", 0.1)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):  # and SQLite itself refuses
        store.conn.execute("DELETE FROM runs")
    assert file_digests(store_path) == before


def test_runs_reads_ended_runs_from_their_packed_row_exactly_as_from_the_tables(tmp_path):
    """m007 packs each ended run's params, latest metrics and tags into one row for runs(); the
    frame must be the one the tables give, values, NaN, infinities, dtypes and late tags included."""
    import math
    import sqlite3

    import pandas as pd

    import mlops_nb as mnb
    from mlops_nb.store import close_all, open_store
    from mlops_nb.store.writer import Writer

    path = tmp_path / "mlops.db"
    first = mnb.start("a", name="x", store=path)
    first.log_params({"C": 0.1, "big": 2**62, "features": ["a", "b"], "none": None, "s": "hi"})
    for value in (0.30000000000000004, 1 / 3):
        first.log_metric("f1", value)
    first.log_metric("missing", math.nan)
    first.log_metric("inf", math.inf)
    first.set_tag("t", "v")
    first.end()
    second = mnb.start("a", name="y", store=path)
    second.log_params({"C": 1, "other": "z"})
    second.log_metric("acc", 0.5)
    second.end()
    Writer(open_store(path)).set_tags(first.id, {"late": "tag set after the end"})
    running = mnb.start("b", name="running", store=path)
    running.log_metric("f1", 0.9)
    packed = mnb.runs(store=path)
    assert packed.loc[0, "tags.late"] == "tag set after the end" and packed.loc[0, "metrics.f1"] == 1 / 3
    close_all()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM run_summaries").fetchone()[0] == 2
        conn.execute("DELETE FROM run_summaries")
    pd.testing.assert_frame_equal(mnb.runs(store=path), packed)


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_runs_read_in_chunks_is_the_frame_read_at_once(tmp_path, monkeypatch, chunk):
    """runs() decodes chunks of runs and merges them: runs with other key sets, a key missing from
    a whole chunk, NaN, big ints and a running run across chunk borders give the one-chunk frame."""
    import math

    import pandas as pd

    import mlops_nb as mnb
    from mlops_nb.store import runs as runs_module

    path = tmp_path / "mlops.db"
    for i, params in enumerate([{"C": 0.1, "s": "a"}, {"C": 1, "big": 2**62}, {"C": 2.5, "s": None},
                                {"other": ["x"]}, {"C": 3, "s": "b"}]):
        run = mnb.start("p", name=f"r{i}", store=path)
        run.log_params(params)
        run.log_metric("f1" if i % 2 else "acc", math.nan if i == 2 else i / 7)
        run.set_tag("t", str(i))
        if i != 3:
            run.end()
    whole = mnb.runs(store=path)
    monkeypatch.setattr(runs_module, "RUNS_CHUNK", chunk)
    pd.testing.assert_frame_equal(mnb.runs(store=path), whole)
    assert mnb.runs(store=path, where="params.C > 1")["name"].tolist() == ["r2", "r4"]


def test_runs_page_past_the_middle_is_the_same_slice_of_the_one_order(tmp_path):
    """The sidebar's deep pages are read from the other end of the order (so the last page of
    100,000 runs costs what the first does); every page must still be that slice of the one order,
    runs without the value last, ties by id, whichever the sort and direction."""
    import mlops_nb as mnb
    from mlops_nb.store import open_store

    path = tmp_path / "mlops.db"
    for i in range(23):
        run = mnb.start("p", name=f"r{i:02d}", store=path)
        if i % 4:
            run.log_metric("f1", (i % 5) / 10)  # ties, and a quarter of the runs without the metric
        run.end()
    store = open_store(path, readonly=True)
    for sort in ("run_id", "metrics.f1", "name"):
        for descending in (True, False):
            whole = [r["run_id"] for r in store.runs_page("p", sort=sort, descending=descending, limit=100)["runs"]]
            assert len(whole) == 23
            for limit in (5, 7):
                for offset in range(0, 25, 3):
                    page = store.runs_page("p", sort=sort, descending=descending, limit=limit, offset=offset)
                    assert [r["run_id"] for r in page["runs"]] == whole[offset:offset + limit], (sort, offset)


def test_a_remembered_runs_page_total_follows_every_write(tmp_path):
    """runs_page remembers a filter's total until the store changes: a run written by another
    connection, or by the reading one, must show in the next total."""
    import mlops_nb as mnb
    from mlops_nb.store import open_store

    path = tmp_path / "mlops.db"
    mnb.start("p", store=path).end()
    reader = open_store(path, readonly=True)
    assert reader.runs_page("p", where="status = 'finished'")["total"] == 1
    mnb.start("p", store=path).end()  # the writing connection, another than the reader's
    assert reader.runs_page("p", where="status = 'finished'")["total"] == 2
    writer = open_store(path)
    assert writer.runs_page("p", where="status = 'finished'")["total"] == 2
    mnb.start("p", store=path).end()  # this very connection writes
    assert writer.runs_page("p", where="status = 'finished'")["total"] == 3
    assert reader.known_keys("p")["metrics"] == []
    run = mnb.start("p", store=path)
    run.log_metric("f1", 0.5)  # a key the remembered list has not seen
    assert reader.known_keys("p")["metrics"] == ["f1"] and writer.known_keys("p")["metrics"] == ["f1"]
    run.end()
