"""The table of bad inputs (issue 12): each row is an input a user (or an attacker) might give, the
documented exit status (or exception, or HTTP status), and a fragment of the one-line message. Every
row asserts the code, that the message is one line with no traceback, and that nothing was written:
the store's bytes and the package's file listing are what they were.

The server's rows are in ``tests/test_server.py`` (``SERVER_BAD_REQUESTS``), where its fixtures live.
One exported package (a real kernel ran the notebook of tests/test_retrain.py) serves every row;
the CLI runs in-process through click's runner, so the whole table takes seconds after the fixture.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_retrain import build_package

import mlops_nb as mnb
from mlops_nb import store as store_module
from mlops_nb.cli import main
from mlops_nb.errors import InvalidValue, MlopsError, PackageError, StoreError

# -- the shared package and the bad files ------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("bad_inputs")
    pkg = build_package(folder)
    store_module.close_all()
    with sqlite3.connect(pkg["store"]) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    bad = folder / "bad"
    bad.mkdir()
    (bad / "binary.csv").write_bytes(bytes(range(256)) * 40)
    (bad / "scalar.json").write_text("5")
    (bad / "empty.csv").write_bytes(b"")
    (bad / "header_only.csv").write_text("a,b\n")
    (bad / "table.xlsx").write_bytes(b"PK\x03\x04")
    (bad / "empty.db").write_bytes(b"")
    (bad / "notes.txt").write_text("not a database\n" * 20)
    with sqlite3.connect(bad / "other.db") as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT)")
        conn.execute("INSERT INTO photos (path) VALUES ('a.jpg')")
    conn.close()
    (bad / "folder.db").mkdir()
    os.mkfifo(bad / "fifo.db")
    (bad / "file.txt").write_text("x")
    fresh = pkg["better"]
    import pandas as pd

    frame = pd.read_csv(fresh)
    numeric = next(c for c in frame.columns if pd.api.types.is_float_dtype(frame[c]))
    inf = frame.copy()
    inf.loc[inf.index[:3], numeric] = float("inf")
    inf.to_csv(bad / "inf.csv", index=False)
    frame.drop(columns=[numeric]).to_csv(bad / "missing_column.csv", index=False)
    frame[[numeric]].to_csv(bad / "one_column.csv", index=False)  # 7 of the 8 features missing
    text = frame.copy()
    text[numeric] = "abc"
    text.to_csv(bad / "text_column.csv", index=False)
    shutil.copyfile(pkg["store"], bad / "store_copy.db")
    return {**pkg, "bad": bad, "fresh": Path(fresh), "numeric": numeric}


def digest(path: Path) -> str:
    """The bytes of a store file and its WAL (where a write would land first)."""
    h = hashlib.sha256()
    for part in (path, Path(f"{path}-wal")):
        if part.is_file():
            h.update(part.read_bytes())
    return h.hexdigest()


def listing(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1) for p in root.rglob("*"))


def snapshot(world: dict) -> tuple:
    bad = world["bad"]
    files = sorted((p.name, p.read_bytes() if p.is_file() else b"") for p in bad.iterdir() if not p.is_fifo())
    return digest(world["store"]), listing(world["root"]), files, digest(bad / "store_copy.db")


def one_line(message: str) -> str:
    text = message.strip()
    assert "Traceback" not in text, text
    assert len(text.splitlines()) == 1, text
    return text


def fill(world: dict, arg: str) -> str:
    return (arg.replace("{PKG}", str(world["root"])).replace("{BAD}", str(world["bad"]))
            .replace("{FRESH}", str(world["fresh"])).replace("{STORE}", str(world["store"])))


# -- the CLI ---------------------------------------------------------------------------------------------

CLI = [
    # store paths: never created, converted or given a journal
    (["--store", "{BAD}/empty.db", "runs"], 78, "is an empty file"),
    (["--store", "{BAD}/empty.db", "upgrade"], 78, "is an empty file"),
    (["--store", "{BAD}/other.db", "runs"], 78, "SQLite database but not an mlops-nb store"),
    (["--store", "{BAD}/other.db", "upgrade"], 78, "SQLite database but not an mlops-nb store"),
    (["--store", "{BAD}/notes.txt", "projects"], 78, "not a SQLite database"),
    (["--store", "{BAD}/folder.db", "runs"], 78, "is a folder"),
    (["--store", "{BAD}/folder.db", "upgrade"], 78, "is a folder"),
    (["--store", "{BAD}/fifo.db", "runs"], 78, "not a regular file"),
    (["--store", "{BAD}/fifo.db", "upgrade"], 78, "not a regular file"),
    (["--store", "/dev/null", "runs"], 78, "not a regular file"),
    (["--store", "/dev/null", "upgrade"], 78, "not a regular file"),
    (["--store", "{BAD}/nothing-here.db", "upgrade"], 78, "no store at"),
    (["--store", "{BAD}/file.txt/sub/mlops.db", "runs"], 78, "no store at"),
    # run ids: ASCII digits within SQLite's range
    (["--store", "{STORE}", "show", "1180591620717411303424"], 2, "is not a run id"),
    (["--store", "{STORE}", "show", "١"], 2, "is not a run id"),
    (["--store", "{STORE}", "show", "1_0"], 2, "is not a run id"),
    (["--store", "{STORE}", "show", "99999"], 1, "99999"),
    (["--store", "{STORE}", "history", "1180591620717411303424", "f1"], 2, "is not a run id"),
    (["--store", "{STORE}", "runs", "--limit", "0"], 2, "0"),
    # predict: bad data 65, missing data 66, an output inside a package 78
    (["predict", "{PKG}", "{FRESH}", "-o", "{PKG}/current/model.skops"], 78, "inside the package"),
    (["predict", "{PKG}", "{FRESH}", "-o", "{PKG}/settings.json"], 78, "inside the package"),
    (["predict", "{PKG}", "{FRESH}", "-o", "{PKG}/versions/predictions.csv"], 78, "inside the package"),
    (["predict", "{PKG}", "{BAD}/binary.csv"], 65, "cannot read"),
    (["predict", "{PKG}", "{BAD}/scalar.json"], 65, "cannot read"),
    (["predict", "{PKG}", "{BAD}/inf.csv"], 65, "infinite"),
    (["predict", "{PKG}", "{BAD}/missing_column.csv"], 65, "is missing"),
    # many missing columns: five named, then how many more, so the one line stays readable
    (["predict", "{PKG}", "{BAD}/one_column.csv"], 65, "is missing; and 2 more"),
    (["predict", "{PKG}", "{BAD}/text_column.csv"], 65, "the model expects"),
    (["predict", "{PKG}", "{BAD}/no-such.csv"], 66, "no data at"),
    (["predict", "{PKG}", "{BAD}/empty.csv"], 66, "holds no rows"),
    (["predict", "{PKG}", "{BAD}/header_only.csv"], 66, "holds no rows"),
    (["predict", "{PKG}", "{BAD}/table.xlsx"], 78, "use .csv"),
    (["predict", "{BAD}/folder.db", "{FRESH}"], 78, ""),
    # export's arguments that end up in a crontab line: checked before anything is written
    (["--store", "{STORE}", "export", "churn", "--to", "{BAD}/new\npkg"], 78, "control character"),
    (["--store", "{STORE}", "export", "churn", "--to", "{BAD}/x", "--data", "a.csv\n* * * * * id"], 78,
     "control character"),
    (["--store", "{STORE}", "export", "churn", "--to", "{BAD}/x", "--schedule", "0 3 31 2 *"], 78, "never fires"),
    (["--store", "{STORE}", "export", "churn", "--to", "{BAD}/x", "--schedule", "every day"], 78,
     "not a cron schedule"),
    (["--store", "{STORE}", "export", "churn", "--to", "{BAD}/x", "--schedule", "0 3 * * 1\r"], 78,
     "control character"),
    # retraining data
    (["retrain", "{PKG}", "--data", "{BAD}/binary.csv"], 65, "cannot read"),
    (["retrain", "{PKG}", "--data", "{BAD}/scalar.json"], 65, "cannot read"),
    (["retrain", "{PKG}", "--data", "{BAD}/inf.csv"], 65, "infinite"),
    (["retrain", "{PKG}", "--data", "{BAD}/missing_column.csv"], 65, "is missing"),
    (["retrain", "{PKG}", "--data", "{BAD}/no-such-*.csv"], 66, "no data at"),
    (["retrain", "{PKG}", "--data", "{BAD}/empty.csv"], 66, "no rows"),
    (["retrain", "{PKG}", "--data", "sqlite:///{BAD}/store_copy.db", "--query", "DROP TABLE runs"], 78,
     "starts with DROP"),
    (["retrain", "{PKG}", "--data", "sqlite:///{BAD}/store_copy.db", "--query", "SELECT 1; DROP TABLE runs"], 78,
     "2 statements"),
    (["retrain", "{PKG}", "--data", "sqlite:///{BAD}/store_copy.db", "--query",
      "WITH x AS (DELETE FROM runs RETURNING *) SELECT * FROM x"], 78, "contains DELETE"),
    (["retrain", "{PKG}", "--data", "sqlite:///{BAD}/store_copy.db", "--query", "SELECT * INTO t FROM runs"], 78,
     "contains INTO"),
    (["retrain", "{PKG}", "--data", "sqlite:///{BAD}/store_copy.db", "--query", "  -- nothing"], 78,
     "only comments"),
    (["retrain", "{PKG}", "--data", "sqlite:///{BAD}/store_copy.db"], 78, "is a database"),
    (["retrain", "{PKG}", "--data", "sqlite:///{BAD}/no-such.db", "--query", "SELECT 1"], 66, "no SQLite database"),
]


@pytest.mark.parametrize(("args", "code", "fragment"), CLI, ids=[" ".join(r[0])[-60:] for r in CLI])
def test_cli(world, args, code, fragment):
    before = snapshot(world)
    store_module.close_all()
    result = CliRunner().invoke(main, [fill(world, a) for a in args], env={"MLOPS_NB_STORE": str(world["store"])})
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    error = (result.stdout + result.stderr).strip().splitlines()
    # retrain prints its progress first; a usage error (2) is click's usage block and its Error: line
    message = error[-1] if args[0] == "retrain" or code == 2 else result.stderr
    assert "Traceback" not in result.stderr
    assert fragment in one_line(message)
    assert not Path("/dev/null-journal").exists() and not (world["bad"] / "empty.db-journal").exists()
    after = snapshot(world)
    if args[0] == "retrain":  # a failed retraining is recorded as a run; the package is untouched
        assert after[1:] == before[1:]
    else:
        assert after == before


SETTINGS = [
    ({"query": "DROP TABLE runs"}, "starts with DROP"),
    ({"query": "SELECT 1; DELETE FROM runs"}, "2 statements"),
    ({"drift_config": {"psi_drift": "x"}}, "\"psi_drift\" is \"x\""),
    ({"drift_config": {"psi_drift": -1}}, "must be a number"),
    ({"drift_config": []}, "\"drift_config\""),
    ({"holdout": 2}, "\"holdout\""),
    ({"min_rows": "20"}, "\"min_rows\""),
    ({"unknown": 1}, "unknown setting"),
    (5, "must hold a JSON object"),
    ("{not json", "is not valid JSON"),
]


@pytest.mark.parametrize(("content", "fragment"), SETTINGS, ids=[str(r[0])[:40] for r in SETTINGS])
def test_settings(world, content, fragment):
    settings = world["root"] / "settings.json"
    original = settings.read_bytes()
    settings.write_text(content if isinstance(content, str) else json.dumps(content))
    try:
        before = snapshot(world)
        store_module.close_all()
        # Accepting the edit checks it: the bad value is named (78), nothing is signed or recorded.
        env = {"MLOPS_NB_STORE": str(world["store"])}
        result = CliRunner().invoke(main, ["reseal", str(world["root"])], env=env)
        assert result.exit_code == 78, (result.stdout, result.stderr)
        assert fragment in one_line((result.stdout + result.stderr).strip().splitlines()[-1])
        assert snapshot(world) == before
        # A job refuses the unaccepted edit before it reads any data (82), whatever the edit says.
        args = ["retrain", str(world["root"]), "--data", f"sqlite:///{world['bad']}/store_copy.db"]
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 82, (result.stdout, result.stderr)
        assert "settings.json" in one_line((result.stdout + result.stderr).strip().splitlines()[-1])
        assert snapshot(world)[1:] == before[1:]
    finally:
        settings.write_bytes(original)


# -- the Python API -------------------------------------------------------------------------------------

API = [
    ("open_store", "{BAD}/empty.db", StoreError, "empty file"),
    ("open_store_ro", "{BAD}/empty.db", StoreError, "empty file"),
    ("open_store", "{BAD}/other.db", StoreError, "not an mlops-nb store"),
    ("open_store", "{BAD}/notes.txt", StoreError, "not a SQLite database"),
    ("open_store", "/dev/null", StoreError, "not a regular file"),
    ("open_store", "{BAD}/folder.db", StoreError, "is a folder"),
    ("open_store", "{BAD}/fifo.db", StoreError, "not a regular file"),
    ("open_store", "{BAD}/missing.db", StoreError, "no store at"),
    ("start", "{BAD}/empty.db", StoreError, "empty file"),
    ("start", "{BAD}/other.db", StoreError, "not an mlops-nb store"),
    ("start", "/dev/null", StoreError, "not a regular file"),
    ("blank_project", "{BAD}/missing.db", InvalidValue, "non-empty name"),
    ("read_source", "DROP TABLE runs", PackageError, "starts with DROP"),
    ("read_source", "SELECT 1 /* unterminated", PackageError, "never ends"),
    ("read_source", "SELECT 'x", PackageError, "never closes"),
    ("read_source", "SELECT 1;;SELECT 2", PackageError, "2 statements"),
    ("read_source", "ATTACH DATABASE 'x.db' AS x", PackageError, "starts with ATTACH"),
    ("read_source", "SELECT 1\x00", PackageError, "control character"),
    ("url", "sqlite:///:memory:", PackageError, "names no SQLite file"),
    ("cron", "{BAD}/pkg\n* * * * * touch /tmp/owned", PackageError, "control character"),
    ("cron_schedule", "0 3 31 2 *", PackageError, "never fires"),
    ("cron_store", "{BAD}/a\nb.db", PackageError, "control character"),
]


@pytest.mark.parametrize(("call", "arg", "error", "fragment"), API, ids=[f"{r[0]}:{r[1][-30:]}" for r in API])
def test_api(world, tmp_path, call, arg, error, fragment):
    from mlops_nb.deploy import cron
    from mlops_nb.deploy.sources import read_source

    before = snapshot(world)
    arg = fill(world, arg)
    tabfile = tmp_path / "crontab"
    actions = {
        "open_store": lambda: store_module.open_store(arg),
        "open_store_ro": lambda: store_module.open_store(arg, readonly=True),
        "start": lambda: mnb.start("p", store=arg),
        "blank_project": lambda: mnb.start("  ", store=arg),
        "read_source": lambda: read_source(f"sqlite:///{world['bad']}/store_copy.db", arg),
        "url": lambda: read_source(arg, "SELECT 1"),
        "cron": lambda: cron.install(arg, tabfile=tabfile),
        "cron_schedule": lambda: cron.install(world["root"], schedule=arg, tabfile=tabfile),
        "cron_store": lambda: cron.install(world["root"], store=arg, tabfile=tabfile),
    }
    with pytest.raises(error) as caught:
        actions[call]()
    assert fragment in one_line(str(caught.value))
    assert not tabfile.exists()
    assert not Path(f"{arg}-journal").exists() and not Path(f"{arg}-wal").exists()
    if "missing" in arg:
        assert not Path(arg).exists()
    assert snapshot(world) == before
    with sqlite3.connect(f"file:{world['bad']}/store_copy.db?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] > 0  # DROP TABLE runs did not run
    conn.close()


# -- the magics (in-process shell) --------------------------------------------------------------------------

MAGICS = [
    ("%mlops start churn --store {BAD}/empty.db", "empty file"),
    ("%mlops start churn --store {BAD}/other.db", "not an mlops-nb store"),
    ("%mlops start churn --store {BAD}/folder.db", "is a folder"),
    ("%mlops start churn --store /dev/null", "not a regular file"),
    ("%mlops frobnicate", "use one of"),
    ("%%stage modelling\nx = 1", "unknown stage"),
    ("%mlops require f1 >>= 0.8", ""),
]


@pytest.mark.parametrize(("line", "fragment"), MAGICS, ids=[r[0][:40] for r in MAGICS])
def test_magics(world, shell, line, fragment):
    from IPython.core.error import UsageError

    before = snapshot(world)
    result = shell.run(fill(world, line), check=False)
    error = result.error_before_exec or result.error_in_exec
    assert isinstance(error, UsageError | MlopsError), error
    assert fragment in one_line(str(error))
    assert snapshot(world) == before
