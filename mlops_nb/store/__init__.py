"""The only module that speaks SQL: opening the store, migrations, writes in transactions, queries.

One SQLite file (``./mlops.db`` unless ``$MLOPS_NB_STORE`` or an explicit path says otherwise) in
WAL mode with a busy timeout, so notebooks, scripts and cron jobs write to it at once. Artifacts are
content-addressed files in ``mlops-artifacts/`` beside it. Importing this module must stay cheap:
sqlite-utils (0.3 s to import) is loaded only when a store is opened, pandas only by queries that
return frames.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from mlops_nb.errors import FilterError, InvalidValue, RunNotFound, StoreError

if TYPE_CHECKING:
    import pandas

DEFAULT_FILENAME = "mlops.db"
#: How many migrations ``mlops_nb/migrations.py`` has; a store whose ``PRAGMA user_version`` says
#: so needs none (checked by a test, so the two cannot drift apart).
SCHEMA_VERSION = 5
ENV_VAR = "MLOPS_NB_STORE"
ARTIFACTS_DIR = "mlops-artifacts"
BUSY_TIMEOUT_S = 30.0
_HOST = socket.gethostname()

RUN_COLUMNS = ("run_id", "project", "name", "kind", "status", "start_time", "end_time")


def resolve_path(store: str | os.PathLike | None = None) -> Path:
    """The store file to use: ``store`` if given, else ``$MLOPS_NB_STORE``, else ``./mlops.db``."""
    chosen = store if store not in (None, "") else os.environ.get(ENV_VAR) or DEFAULT_FILENAME
    return Path(chosen).expanduser().absolute()


def process_start_token(pid: int) -> str | None:
    """An identifier of *this incarnation* of process ``pid`` (its start time in clock ticks, Linux).

    A pid can be reused after a process dies; comparing this token tells a reused pid from the
    process that started the run. None where /proc is not available.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat.rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _process_alive(pid: int, token: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    current = process_start_token(pid)
    return token is None or current is None or current == token


def process_gone(run: Mapping[str, Any]) -> bool:
    """Whether a ``running`` run's process is known to be gone (started on this host, and its pid no
    longer exists or was reused). Readers show such a run as ``interrupted`` without writing; the
    next writer that opens the store records it (:meth:`Store.mark_interrupted`)."""
    if run.get("status") != "running" or run.get("host") != _HOST or not run.get("pid"):
        return False
    return not _process_alive(run["pid"], run.get("pid_start"))


def _check_path(path: Path) -> None:
    """Refuse, with the fix, a path that cannot hold a store; never touch an existing file."""
    if path.is_dir():
        raise StoreError(f"the store path {path} is a folder; give a file path such as {path / DEFAULT_FILENAME}")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the folder {folder} for the store ({exc.strerror}); "
            f"choose a writable location with --store PATH or ${ENV_VAR}"
        ) from None
    if path.exists():
        if path.stat().st_size and not _is_sqlite(path):
            raise StoreError(
                f"{path} is not an mlops-nb store (not a SQLite database); it was left untouched. "
                f"Point --store or ${ENV_VAR} at another file"
            )
        if not os.access(path, os.W_OK):
            raise StoreError(
                f"the store {path} is read-only; make it writable (chmod u+w) "
                f"or use another store with --store PATH or ${ENV_VAR}"
            )
    if not os.access(folder, os.W_OK):
        raise StoreError(
            f"cannot write in {folder}, where the store {path.name} and its journal live; "
            f"choose a writable location with --store PATH or ${ENV_VAR}"
        )


def _is_sqlite(path: Path) -> bool:
    """Whether the file at ``path`` is a SQLite database, asked through SQLite itself (``immutable``:
    no lock taken, no -wal or -shm file created, nothing written).

    Reading its header with ``open()`` would be simpler, but closing that file descriptor drops every
    POSIX lock this process holds on the file, those of its live SQLite connections included ("How
    To Corrupt An SQLite Database File", 2.2.1): a store opened in a kernel that has its own sqlite3
    connection to the file would then let another process checkpoint the WAL under that connection.
    SQLite's own open and close keep the process's locks."""
    probe = sqlite3.connect(f"{path.absolute().as_uri()}?immutable=1", uri=True, timeout=BUSY_TIMEOUT_S)
    try:
        probe.execute("PRAGMA schema_version").fetchone()
    except sqlite3.OperationalError:
        return True  # cannot tell (unreadable, say): the real open decides and says why
    except sqlite3.DatabaseError:
        return False  # "file is not a database"
    finally:
        probe.close()
    return True


def _param_value(key: str, value: Any) -> Any:
    """A param as SQLite will hold it: str, int and float natively (so filters compare numbers as
    numbers), everything else JSON text. Unserialisable values raise InvalidValue."""
    if value is None or isinstance(value, (str, float)) or type(value) is int:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalar
        return _param_value(key, value.item())
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    try:
        text = json.dumps(value, default=_json_default, allow_nan=True)
    except (TypeError, ValueError):
        raise InvalidValue(
            f"param {key!r} is a {type(value).__name__}, which cannot be stored; "
            f"log a string, number, bool, list or dict instead (for example str(value))"
        ) from None
    if len(text) > 65536:
        raise InvalidValue(f"param {key!r} is {len(text)} characters long; log it as an artifact instead")
    return text


def _json_default(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(type(value).__name__)


def _metric_value(key: str, value: Any) -> float | None:
    """A metric value as a float (None stands for NaN in SQLite); anything else is InvalidValue."""
    if isinstance(value, (bool, str, bytes)):
        raise InvalidValue(
            f"metric {key!r} must be a number, got {type(value).__name__} {value!r}; log a float or int"
        )
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidValue(
            f"metric {key!r} must be a number, got {type(value).__name__}; log a float or int"
        ) from None
    return None if math.isnan(number) else number


def dumps(value: Any) -> str:
    """JSON text for the store's JSON columns (numpy values converted)."""
    return json.dumps(value, default=_json_default, allow_nan=True)


class Store:
    """An open store. Get one with :func:`open_store`; methods are the store's whole vocabulary."""

    def __init__(self, path: Path, conn: sqlite3.Connection, *, readonly: bool = False):
        self.path = path
        self.conn = conn
        #: Opened with ``open_store(..., readonly=True)``: SQLite refuses every write (``query_only``).
        self.readonly = readonly
        self.artifacts_dir = path.parent / ARTIFACTS_DIR
        self._lock = threading.RLock()

    # -- transactions -------------------------------------------------------------------------

    def transaction(self):
        """A context manager: everything inside commits together or not at all."""
        return _Transaction(self.conn, self._lock)

    def _write(self, sql: str, params: Iterable = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, tuple(params))
        except sqlite3.OperationalError as exc:
            raise _store_error(self.path, exc) from None

    # -- projects and runs ----------------------------------------------------------------------

    def project_id(self, name: str) -> int:
        row = self.conn.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()
        if row:
            return row[0]
        self._write("INSERT OR IGNORE INTO projects (name, created) VALUES (?, ?)", (name, time.time()))
        return self.conn.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()[0]

    def create_run(
        self,
        project: str,
        *,
        name: str | None,
        kind: str = "notebook",
        parent_id: int | None = None,
        notebook: str | None = None,
        kernel: str | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert a ``running`` run for this process and return its id."""
        env = dict(environment or {})
        git = env.get("git") or {}
        pid = os.getpid()
        if parent_id is not None:
            self.run(parent_id)
        with self.transaction():
            project_id = self.project_id(project)
            cursor = self._write(
                "INSERT INTO runs (project_id, name, kind, parent_id, start_time, host, pid, pid_start,"
                " notebook, kernel, git_commit, git_dirty, environment)"
                " VALUES (?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    project_id, kind, parent_id, time.time(), _HOST, pid, process_start_token(pid),
                    notebook, kernel, git.get("commit"), git.get("dirty"), dumps(env),
                ),
            )
            run_id = cursor.lastrowid
            self._write("UPDATE runs SET name = ? WHERE id = ?", (name or f"run-{run_id}", run_id))
        return run_id

    def end_run(self, run_id: int, status: str, error: str | None = None, *, reason: str = "explicit") -> None:
        with self.transaction():
            self._write(
                "UPDATE runs SET status = ?, end_time = ?, error = ?, end_reason = ? WHERE id = ?",
                (status, time.time(), error, reason, run_id),
            )
            self._settle_metrics(run_id)

    _SETTLE = (
        "INSERT OR REPLACE INTO ended_metrics (run_id, key, step, value, time)"
        " SELECT run_id, key, step, value, time FROM metrics WHERE rowid IN"
        " (SELECT max(rowid) FROM metrics WHERE run_id = ? GROUP BY key)"
    )

    def _settle_metrics(self, run_id: int) -> None:
        """An ended run's metrics never change again: keep their latest values in ``ended_metrics``,
        so reading 10,000 runs does not aggregate every metric row ever logged."""
        self._write(self._SETTLE, (run_id,))

    def resume_run(self, run_id: int) -> None:
        """Mark ``run_id`` as running again in this process (a kernel restart inside a run)."""
        pid = os.getpid()
        with self.transaction():
            self._write(
                "UPDATE runs SET status = 'running', end_time = NULL, error = NULL, end_reason = NULL,"
                " host = ?, pid = ?, pid_start = ? WHERE id = ?",
                (_HOST, pid, process_start_token(pid), run_id),
            )
            self._write("DELETE FROM ended_metrics WHERE run_id = ?", (run_id,))

    def run(self, run_id: int) -> dict[str, Any]:
        """The run's row with its project name; :class:`RunNotFound` names the fix."""
        try:
            run_id = int(run_id)
        except (TypeError, ValueError):
            raise RunNotFound(f"{run_id!r} is not a run id; run ids are numbers (see `mlops-nb runs`)") from None
        row = self.conn.execute(
            "SELECT runs.*, projects.name AS project FROM runs JOIN projects ON projects.id = runs.project_id"
            " WHERE runs.id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise RunNotFound(f"no run {run_id} in {self.path}; list the runs with `mlops-nb runs`")
        return dict(row)

    def mark_interrupted(self) -> list[int]:
        """Mark as ``interrupted`` the running runs of this host whose process is gone.

        A run records the host, pid and the pid's start time when it starts. A run is judged gone
        when it was started on this host and that pid no longer exists, or exists but started at
        another time (the pid was reused). Runs of other hosts are left alone: we cannot see them.
        """
        rows = self.conn.execute(
            "SELECT id, pid, pid_start FROM runs WHERE status = 'running' AND host = ?", (_HOST,)
        ).fetchall()
        gone = [r["id"] for r in rows if r["pid"] and not _process_alive(r["pid"], r["pid_start"])]
        if gone:
            with self.transaction():
                for run_id in gone:
                    self._write(
                        "UPDATE runs SET status = 'interrupted', end_time = ?,"
                        " error = 'the process that ran it ended without ending the run', end_reason = 'process gone'"
                        " WHERE id = ? AND status = 'running'",
                        (time.time(), run_id),
                    )
                    self._settle_metrics(run_id)
        return gone

    # -- params, metrics, tags ------------------------------------------------------------------

    def log_params(self, run_id: int, params: Mapping[str, Any]) -> None:
        now = time.time()
        rows = [(run_id, str(k), _param_value(str(k), v), now) for k, v in params.items()]
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO params (run_id, key, value, time) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, time = excluded.time",
                rows,
            )

    _INSERT_METRIC = "INSERT INTO metrics (run_id, key, step, value, time) VALUES (?, ?, ?, ?, ?)"

    def log_metric(self, run_id: int, key: str, step: int, value: Any) -> None:
        """One durable row: the hot path, so straight to sqlite3 in autocommit mode."""
        row = (run_id, key, step, _metric_value(key, value), time.time())
        try:
            self.conn.execute(self._INSERT_METRIC, row)
        except sqlite3.OperationalError as exc:
            raise _store_error(self.path, exc) from None

    def log_metrics(self, rows: list[tuple[int, str, int, Any]]) -> None:
        """Many rows of ``(run_id, key, step, value)`` in one transaction."""
        now = time.time()
        prepared = [(r, k, s, _metric_value(k, v), now) for r, k, s, v in rows]
        with self.transaction():
            self.conn.executemany(self._INSERT_METRIC, prepared)

    def last_steps(self, run_id: int) -> dict[str, int]:
        return dict(
            self.conn.execute(
                "SELECT key, max(step) FROM metrics WHERE run_id = ? GROUP BY key", (run_id,)
            ).fetchall()
        )

    def set_tags(self, run_id: int, tags: Mapping[str, Any]) -> None:
        with self.transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, str(k), None if v is None else str(v)) for k, v in tags.items()],
            )

    # -- artifacts ------------------------------------------------------------------------------

    def put_file(self, source: Path) -> tuple[str, int, str]:
        """Copy ``source`` into the content-addressed folder; return (sha256, size, relative path)."""
        with open(source, "rb") as stream:
            return self._put(stream)

    def put_bytes(self, data: bytes) -> tuple[str, int, str]:
        """Like :meth:`put_file` for bytes already in memory (a serialised model)."""
        return self._put(io.BytesIO(data))

    def _put(self, stream: BinaryIO) -> tuple[str, int, str]:
        """Write ``stream`` to a temporary file while hashing it (one pass), then rename it to its
        SHA-256: a reader never sees a half-written artifact, and the same bytes are kept once."""
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=self.artifacts_dir, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            sha = digest.hexdigest()
            relative = f"{ARTIFACTS_DIR}/{sha[:2]}/{sha}"
            target = self.path.parent / relative
            if target.exists():
                os.unlink(tmp)
            else:
                target.parent.mkdir(exist_ok=True)
                os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha, size, relative

    def add_artifact(
        self, run_id: int, name: str, stored: tuple[str, int, str], *, kind: str = "file",
        stage_id: int | None = None,
    ) -> int:
        sha, size, relative = stored
        cursor = self._write(
            "INSERT INTO artifacts (run_id, stage_id, name, kind, sha256, size, path, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, stage_id, name, kind, sha, size, relative, time.time()),
        )
        return cursor.lastrowid

    def artifact_path(self, relative: str) -> Path:
        return self.path.parent / relative

    # -- generic rows (lifecycle tables) ----------------------------------------------------------

    def insert(self, table: str, row: Mapping[str, Any]) -> int:
        """Insert one row into a lifecycle table (names are ours, never user text)."""
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        return self._write(f"INSERT INTO {table} ({columns}) VALUES ({marks})", row.values()).lastrowid

    def update(self, table: str, row_id: int, changes: Mapping[str, Any]) -> None:
        assignments = ", ".join(f"{c} = ?" for c in changes)
        self._write(f"UPDATE {table} SET {assignments} WHERE id = ?", [*changes.values(), row_id])

    def rows(self, sql: str, params: Iterable = ()) -> list[dict[str, Any]]:
        """Rows of a read query as dicts."""
        return [dict(r) for r in self.conn.execute(sql, tuple(params)).fetchall()]

    def execute(self, sql: str, params: Iterable = ()) -> sqlite3.Cursor:
        return self._write(sql, params)

    # -- queries --------------------------------------------------------------------------------

    def run_details(self, run_id: int) -> dict[str, Any]:
        """Everything recorded about one run, for ``mlops-nb show`` and the widgets."""
        run = self.run(run_id)
        run["environment"] = json.loads(run["environment"] or "{}")
        run["params"] = {r["key"]: r["value"] for r in self.rows(
            "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run_id,))}
        run["metrics"] = {r["key"]: _nan(r["value"]) for r in self.rows(
            "SELECT key, value FROM latest_metrics WHERE run_id = ? ORDER BY key", (run_id,))}
        run["tags"] = {r["key"]: r["value"] for r in self.rows(
            "SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", (run_id,))}
        run["artifacts"] = self.rows(
            "SELECT id, name, kind, sha256, size, path, created FROM artifacts WHERE run_id = ? ORDER BY id",
            (run_id,))
        run["stages"] = self.rows(
            "SELECT id, seq, stage, attempt, cell_id, execution_count, source_sha256, start_time, duration,"
            " status, error, variables FROM stages WHERE run_id = ? ORDER BY seq", (run_id,))
        run["requirement"] = next(iter(self.rows("SELECT * FROM requirements WHERE run_id = ?", (run_id,))), None)
        run["gates"] = self.rows("SELECT * FROM gates WHERE run_id = ? ORDER BY id", (run_id,))
        run["warnings"] = self.rows(
            "SELECT kind, stage, message FROM warnings WHERE run_id = ? ORDER BY id", (run_id,))
        run["drift"] = self.drift(run_id)
        return run

    def metric_history(self, run_id: int, key: str) -> pandas.DataFrame:
        import pandas as pd

        self.run(run_id)
        rows = self.conn.execute(
            "SELECT step, value, time FROM metrics WHERE run_id = ? AND key = ? ORDER BY step, rowid",
            (run_id, key),
        ).fetchall()
        frame = pd.DataFrame(
            [(s, _nan(v), t) for s, v, t in rows], columns=["step", "value", "time"]
        ).astype({"step": "int64", "value": "float64", "time": "float64"})
        frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
        return frame

    def known_keys(self, project: str | None = None) -> dict[str, list[str]]:
        """The param, metric and tag keys present (in ``project``), for filters and column pickers."""
        scope, args = _project_scope(project)
        keys: dict[str, list[str]] = {}
        for namespace in ("params", "metrics", "tags"):
            keys[namespace] = [r[0] for r in self.conn.execute(
                f"SELECT DISTINCT key FROM {namespace} WHERE run_id IN (SELECT runs.id FROM runs"
                f" JOIN projects ON projects.id = runs.project_id {scope}) ORDER BY key", args)]
        return keys

    def projects(self) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT projects.name AS project, count(runs.id) AS runs, max(runs.start_time) AS last_run"
            " FROM projects LEFT JOIN runs ON runs.project_id = projects.id"
            " GROUP BY projects.id ORDER BY last_run DESC"
        )

    def runs_page(
        self, project: str, *, where: str | None = None, sort: str = "run_id", descending: bool = True,
        limit: int = 50, offset: int = 0,
    ) -> dict[str, Any]:
        """One page of ``project``'s runs, filtered, sorted and cut in SQL (the JupyterLab sidebar).

        ``where``: a filter expression (:mod:`mlops_nb.filters`). ``sort``: a base column
        (``run_id``, ``name``, ``status``, ``start_time``, ``duration``...) or ``metrics.<key>`` /
        ``params.<key>`` / ``tags.<key>``; runs without the value come last either way.
        Returns ``{"total", "runs"}``: each run has its base columns, ``duration``, ``metrics``
        (latest values), ``requirement``, ``gate`` (the latest gate result) and ``warnings``
        (how many integrity warnings). Unknown columns raise :class:`FilterError`.
        """
        scope, args = "WHERE projects.name = ?", [project]
        if where:
            condition, where_args = self.compile_where(where, project)
            scope, args = f"{scope} AND ({condition})", [*args, *where_args]
        namespace, dot, key = sort.partition(".")
        if not dot and sort in _BASE_SQL:
            order, order_args = _BASE_SQL[sort], []
        elif dot and namespace in _NAMESPACE_SQL and key in self.known_keys(project)[namespace]:
            order, order_args = _NAMESPACE_SQL[namespace], [key]
        else:
            keys = [f"{ns}.{k}" for ns, ks in self.known_keys(project).items() for k in ks]
            raise FilterError(f"cannot sort by {sort!r}; sort by one of: {', '.join([*_BASE_SQL, *keys])}")
        direction = "DESC" if descending else "ASC"
        base = f"FROM runs JOIN projects ON projects.id = runs.project_id {scope}"
        total = self.conn.execute(f"SELECT count(*) {base}", args).fetchone()[0]
        runs = self.rows(
            "SELECT runs.id AS run_id, runs.name, runs.kind, runs.status, runs.start_time, runs.end_time,"
            f" runs.end_time - runs.start_time AS duration, runs.parent_id {base}"
            f" ORDER BY {order} IS NULL, {order} {direction}, runs.id {direction} LIMIT ? OFFSET ?",
            [*args, *order_args, *order_args, limit, offset],
        )
        ids = [run["run_id"] for run in runs]
        marks = ", ".join("?" for _ in ids)
        metrics: dict[int, dict[str, float | None]] = {i: {} for i in ids}
        for run_id, key, value in self.conn.execute(
            "SELECT run_id, key, value FROM metrics WHERE rowid IN (SELECT max(rowid) FROM metrics"
            f" WHERE run_id IN ({marks}) GROUP BY run_id, key) ORDER BY key", ids,
        ):
            metrics[run_id][key] = value
        requirements = {r["run_id"]: r for r in self.rows(
            f"SELECT run_id, metric, op, threshold, target FROM requirements WHERE run_id IN ({marks})", ids)}
        gates = {g["run_id"]: g for g in self.rows(
            "SELECT run_id, metric, op, threshold, value, passed FROM gates WHERE id IN"
            f" (SELECT max(id) FROM gates WHERE run_id IN ({marks}) GROUP BY run_id)", ids)}
        warnings = dict(self.conn.execute(
            f"SELECT run_id, count(*) FROM warnings WHERE run_id IN ({marks}) GROUP BY run_id", ids).fetchall())
        for run in runs:
            run_id = run["run_id"]
            run["metrics"] = metrics[run_id]
            run["requirement"] = requirements.get(run_id)
            run["gate"] = gates.get(run_id)
            run["warnings"] = warnings.get(run_id, 0)
        return {"total": total, "runs": runs}

    def runs_frame(self, project: str | None = None, where: str | None = None) -> pandas.DataFrame:
        """One row per run: the run columns, then ``params.<k>``, ``metrics.<k>`` (latest), ``tags.<k>``."""
        import pandas as pd

        scope, args = _project_scope(project)
        if where:
            condition, where_args = self.compile_where(where, project)
            scope = f"{scope} {'AND' if scope else 'WHERE'} ({condition})"
            args = [*args, *where_args]
        plain = self.conn.cursor()  # tuples, not sqlite3.Row: a quarter less time on 100k+ rows
        plain.row_factory = None
        run_rows = plain.execute(
            "SELECT runs.id, projects.name, runs.name, runs.kind, runs.status, runs.start_time,"
            f" runs.end_time FROM runs JOIN projects ON projects.id = runs.project_id {scope}"
            " ORDER BY runs.id",
            args,
        ).fetchall()
        columns: dict[str, list] = {c: [] for c in RUN_COLUMNS}
        if run_rows:
            transposed = zip(*run_rows, strict=True)
            columns = {name: list(values) for name, values in zip(RUN_COLUMNS, transposed, strict=True)}
        position = {run_id: i for i, run_id in enumerate(columns["run_id"])}
        n = len(run_rows)
        chosen = f"SELECT runs.id FROM runs JOIN projects ON projects.id = runs.project_id {scope}"
        # Every run chosen: params and tags need no IN (their foreign keys rule out orphans), which
        # saves 10 ms on 10,000 runs. Metrics have no foreign key, so they keep it.
        within, within_args = (f"WHERE run_id IN ({chosen})", args) if scope else ("", [])
        extra: dict[str, list] = {}
        for namespace, sql, sql_args in (
            ("params", f"SELECT run_id, key, value FROM params {within}", within_args),
            # Ended runs from their settled latest values; running ones aggregated live.
            ("metrics", f"SELECT run_id, key, value FROM ended_metrics {within} UNION ALL"
                        " SELECT run_id, key, value FROM metrics WHERE rowid IN (SELECT max(rowid) FROM metrics"
                        f" WHERE run_id IN ({chosen} {'AND' if scope else 'WHERE'} runs.status = 'running')"
                        " GROUP BY run_id, key)", [*within_args, *args]),
            ("tags", f"SELECT run_id, key, value FROM tags {within}", within_args),
        ):
            block: dict[str, list] = {}
            nan = math.nan if namespace == "metrics" else None
            for run_id, key, value in plain.execute(sql, sql_args):
                column = block.get(key)
                if column is None:
                    column = block[key] = [nan] * n
                column[position[run_id]] = nan if value is None else value
            for key in sorted(block):
                extra[f"{namespace}.{key}"] = block[key]
        frame = pd.DataFrame({**columns, **extra})
        for name in ("start_time", "end_time"):
            frame[name] = pd.to_datetime(frame[name].astype("float64"), unit="s", utc=True)
        return frame

    def _key_exists(self, namespace: str, key: str, project: str | None = None) -> bool:
        """Whether a run (of ``project``) has ``key`` in ``namespace``: index probes that stop at the
        first hit, where :meth:`known_keys` reads every row (180 ms on a million metric rows)."""
        scope, args = _project_scope(project)
        return bool(self.conn.execute(
            f"SELECT EXISTS (SELECT 1 FROM {namespace} WHERE key = ? AND run_id IN (SELECT runs.id FROM runs"
            f" JOIN projects ON projects.id = runs.project_id {scope}))", [key, *args]).fetchone()[0])

    def compile_where(
        self, expression: str, project: str | None = None, known: Mapping[str, Iterable[str]] | None = None,
    ) -> tuple[str, list]:
        """Turn a ``where`` expression into SQL over ``runs``; user values only ever become parameters.

        ``known``: the param, metric and tag keys per namespace (as :meth:`known_keys` returns them),
        when the caller already has them; saves that query (the compare widget re-filters often).
        """
        from mlops_nb import filters

        tree = filters.parse(expression)
        for column in filters.columns(tree):
            if column.namespace is None:
                continue
            if known is None:
                present = self._key_exists(column.namespace, column.key, project)
            else:
                present = column.key in known[column.namespace]
            if not present:
                known = self.known_keys(project) if known is None else known
                existing = [f"{ns}.{k}" for ns, keys in known.items() for k in keys]
                raise FilterError(
                    f"unknown column '{column.namespace}.{column.key}'; the columns are: "
                    f"{', '.join([*filters.BASE_COLUMNS, *existing])}",
                    expression=expression, position=column.position,
                )
        args: list = []
        return _compile(tree, args), args

    # -- widgets: aggregated reads (status and compare) -------------------------------------------

    def run_ids(
        self, project: str | None = None, where: str | None = None,
        known: Mapping[str, Iterable[str]] | None = None,
    ) -> list[int]:
        """The ids of the runs (of ``project``) that ``where`` selects, in id order.

        ``known``: as for :meth:`compile_where`. A bad expression raises :class:`FilterError`.
        """
        scope, args = _project_scope(project)
        if where:
            condition, where_args = self.compile_where(where, project, known)
            scope = f"{scope} {'AND' if scope else 'WHERE'} ({condition})"
            args = [*args, *where_args]
        return [row[0] for row in self.conn.execute(
            f"SELECT runs.id FROM runs JOIN projects ON projects.id = runs.project_id {scope} ORDER BY runs.id",
            args,
        )]

    def runs_overview(self, project: str | None = None) -> pandas.DataFrame:
        """What a comparison table shows beside :meth:`runs_frame`, one row per run, in one query.

        Columns: ``run_id``, ``parent_id``; ``stages``, how many lifecycle stages ended ok at least
        once; ``reached``, the furthest of them in lifecycle order (None before any); the
        requirement's ``req_metric``, ``req_op``, ``req_threshold``; ``gate``, the latest gate:
        ``'passed'``, ``'failed'``, ``'pending'`` (a requirement, no gate yet) or None (no
        requirement), and ``gate_value``; ``registry``, the aliases pointing at a model version of
        the run (``'churn@champion v3, churn@previous v2'``) or None.
        """
        import pandas as pd

        from mlops_nb.stages import STAGES

        order = " ".join(f"WHEN '{stage}' THEN {i}" for i, stage in enumerate(STAGES))
        names = " ".join(f"WHEN {i} THEN '{stage}'" for i, stage in enumerate(STAGES))
        scope, args = _project_scope(project)
        plain = self.conn.cursor()
        plain.row_factory = None
        rows = plain.execute(
            "SELECT runs.id, runs.parent_id, coalesce(reach.n, 0), reach.furthest,"
            " requirements.metric, requirements.op, requirements.threshold,"
            " CASE WHEN requirements.metric IS NULL THEN NULL WHEN gates.passed IS NULL THEN 'pending'"
            "   WHEN gates.passed THEN 'passed' ELSE 'failed' END, gates.value, registry.aliases"
            " FROM runs JOIN projects ON projects.id = runs.project_id"
            " LEFT JOIN (SELECT run_id, count(DISTINCT stage) AS n,"
            f"   CASE max(CASE stage {order} END) {names} END AS furthest"
            "   FROM stages WHERE status = 'ok' GROUP BY run_id) AS reach ON reach.run_id = runs.id"
            " LEFT JOIN requirements ON requirements.run_id = runs.id"
            " LEFT JOIN gates ON gates.id = (SELECT max(g.id) FROM gates AS g WHERE g.run_id = runs.id)"
            " LEFT JOIN (SELECT model_versions.run_id AS run_id, group_concat(aliases.name || '@' || aliases.alias"
            "   || ' v' || aliases.version, ', ') AS aliases FROM aliases JOIN model_versions"
            "   ON model_versions.name = aliases.name AND model_versions.version = aliases.version"
            "   GROUP BY model_versions.run_id) AS registry ON registry.run_id = runs.id"
            f" {scope} ORDER BY runs.id",
            args,
        ).fetchall()
        columns = ["run_id", "parent_id", "stages", "reached", "req_metric", "req_op", "req_threshold",
                   "gate", "gate_value", "registry"]
        frame = pd.DataFrame.from_records(rows, columns=columns)
        return frame.astype({"run_id": "int64", "stages": "int64", "req_threshold": "float64",
                             "gate_value": "float64"})

    def stage_sources(self, run_ids: Iterable[int]) -> dict[int, dict[str, dict[str, Any]]]:
        """For each run, each stage's latest attempt: ``{run_id: {stage: {"source", "status",
        "attempt", "source_sha256"}}}`` (runs that recorded no stage are absent)."""
        ids = [int(r) for r in run_ids]
        found: dict[int, dict[str, dict[str, Any]]] = {}
        if not ids:
            return found
        marks = ", ".join("?" for _ in ids)
        for row in self.conn.execute(
            "SELECT run_id, stage, source, status, attempt, source_sha256 FROM stages WHERE id IN"
            f" (SELECT max(id) FROM stages WHERE run_id IN ({marks}) GROUP BY run_id, stage) ORDER BY seq",
            ids,
        ):
            found.setdefault(row["run_id"], {})[row["stage"]] = {
                "source": row["source"], "status": row["status"], "attempt": row["attempt"],
                "source_sha256": row["source_sha256"],
            }
        return found

    def data_fingerprints(self, run_ids: Iterable[int]) -> dict[int, dict[str, str | None]]:
        """For each run, the DataFrames and Series its latest successful ``data`` stage produced:
        ``{run_id: {name: fingerprint}}`` (runs without one are absent)."""
        ids = [int(r) for r in run_ids]
        found: dict[int, dict[str, str | None]] = {}
        if not ids:
            return found
        marks = ", ".join("?" for _ in ids)
        for row in self.conn.execute(
            "SELECT run_id, name, fingerprint FROM captures WHERE kind IN ('dataframe', 'series') AND stage_id IN"
            f" (SELECT max(id) FROM stages WHERE run_id IN ({marks}) AND stage = 'data' AND status = 'ok'"
            " GROUP BY run_id) ORDER BY id",
            ids,
        ):
            found.setdefault(row["run_id"], {})[row["name"]] = row["fingerprint"]
        return found

    def metric_histories(self, run_ids: Iterable[int], key: str) -> dict[int, list[tuple[int, float]]]:
        """Every ``(step, value)`` of metric ``key`` for each run, in step order (NaN for NULL)."""
        ids = [int(r) for r in run_ids]
        found: dict[int, list[tuple[int, float]]] = {}
        if not ids:
            return found
        marks = ", ".join("?" for _ in ids)
        for run_id, step, value in self.conn.execute(
            f"SELECT run_id, step, value FROM metrics WHERE run_id IN ({marks}) AND key = ?"
            " ORDER BY run_id, step, rowid",
            [*ids, key],
        ):
            found.setdefault(run_id, []).append((step, _nan(value)))
        return found

    def stage_captures(self, run_id: int) -> list[dict[str, Any]]:
        """A short description of everything the run's stages captured, without the heavy parts of
        the summaries (profiles, candidates): ``stage_id``, ``name``, ``kind``, ``fingerprint``,
        ``rows``, ``n_columns``, ``class``, ``n_candidates``, ``best_score``, ``unloadable``."""
        return self.rows(
            "SELECT stage_id, name, kind, fingerprint, json_extract(summary, '$.rows') AS rows,"
            " json_array_length(summary, '$.columns') AS n_columns, json_extract(summary, '$.class') AS class,"
            " json_extract(summary, '$.n_candidates') AS n_candidates,"
            " json_extract(summary, '$.best_score') AS best_score,"
            " json_extract(summary, '$.unloadable') AS unloadable"
            " FROM captures WHERE run_id = ? ORDER BY id",
            (run_id,),
        )

    def child_runs(self, run_id: int, kind: str | None = "retraining") -> list[dict[str, Any]]:
        """The runs whose parent is ``run_id`` (of ``kind``; None for any), oldest first, each with
        its ``tags`` and latest ``metrics`` as dicts."""
        kind_sql, args = ("AND kind = ?", [run_id, kind]) if kind else ("", [run_id])
        children = self.rows(
            "SELECT id, name, kind, status, start_time, end_time, error FROM runs"
            f" WHERE parent_id = ? {kind_sql} ORDER BY id",
            args,
        )
        for child in children:
            child["tags"] = {r["key"]: r["value"] for r in self.rows(
                "SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", (child["id"],))}
            child["metrics"] = {r["key"]: _nan(r["value"]) for r in self.rows(
                "SELECT key, value FROM metrics WHERE rowid IN (SELECT max(rowid) FROM metrics WHERE run_id = ?"
                " GROUP BY key) ORDER BY key", (child["id"],))}
        return children

    def latest_run_id(self, project: str | None = None) -> int | None:
        """The newest run that is not a retraining run (of ``project``), or None in an empty store."""
        scope, args = _project_scope(project)
        where = f"{scope} AND" if scope else "WHERE"
        row = self.conn.execute(
            "SELECT max(runs.id) FROM runs JOIN projects ON projects.id = runs.project_id"
            f" {where} runs.kind != 'retraining'",
            args,
        ).fetchone()
        return row[0]

    # -- lifecycle: stages, cells, captures, requirements, gates, warnings ----------------------

    def next_seq(self, run_id: int) -> int:
        row = self.conn.execute(
            "SELECT max(seq) FROM (SELECT max(seq) AS seq FROM stages WHERE run_id = ?"
            " UNION ALL SELECT max(seq) FROM cells WHERE run_id = ?)",
            (run_id, run_id),
        ).fetchone()
        return (row[0] or 0) + 1

    def begin_stage(
        self, run_id: int, stage: str, *, source: str, source_sha256: str, cell_id: str | None,
        execution_count: int | None, start_time: float,
    ) -> int:
        """Insert a ``running`` stage attempt (so a kernel dying mid-cell still leaves a trace)."""
        with self.transaction():
            attempt = self.conn.execute(
                "SELECT count(*) FROM stages WHERE run_id = ? AND stage = ?", (run_id, stage)
            ).fetchone()[0] + 1
            return self.insert("stages", {
                "run_id": run_id, "seq": self.next_seq(run_id), "stage": stage, "attempt": attempt,
                "cell_id": cell_id, "execution_count": execution_count, "source": source,
                "source_sha256": source_sha256, "start_time": start_time,
            })

    def finish_stage(
        self, run_id: int, stage_id: int, *, duration: float, status: str, error: str | None,
        variables: list[str], captures: list[dict[str, Any]], metrics: Mapping[str, float],
        params: Mapping[str, Any], gate: Mapping[str, Any] | None,
    ) -> None:
        """Close a stage attempt with everything it produced, in one transaction.

        ``captures``: records from :mod:`mlops_nb.capture`; each may carry ``artifact`` (the
        ``(sha256, size, path)`` of a stored model) and search ``candidates``.
        """
        now = time.time()
        with self.transaction():
            self.update("stages", stage_id, {
                "duration": duration, "status": status, "error": error, "variables": dumps(variables),
            })
            for record in captures:
                record = dict(record)
                artifact = record.pop("artifact", None)
                candidates = record.pop("candidates", None) or []
                artifact_id = None
                if artifact is not None:
                    artifact_id = self.add_artifact(
                        run_id, f"{record['name']}.skops", artifact, kind="model", stage_id=stage_id)
                capture_id = self.insert("captures", {
                    "run_id": run_id, "stage_id": stage_id, "name": record["name"], "kind": record["kind"],
                    "fingerprint": record.get("fingerprint"), "summary": dumps(record),
                    "artifact_id": artifact_id,
                })
                self.conn.executemany(
                    "INSERT INTO candidates (run_id, capture_id, rank, params, mean_score, std_score)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(run_id, capture_id, c.get("rank_test_score"), dumps(c.get("params")),
                      c.get("mean_test_score"), c.get("std_test_score")) for c in candidates],
                )
            if params:
                self.log_params(run_id, params)
            if metrics:
                steps = self.last_steps(run_id)
                self.log_metrics([(run_id, k, steps.get(k, -1) + 1, v) for k, v in metrics.items()])
            if gate is not None:
                self.insert("gates", {**gate, "run_id": run_id, "stage_id": stage_id, "time": now})

    def record_cell(
        self, run_id: int, *, kind: str, source: str | None, source_sha256: str | None,
        cell_id: str | None, execution_count: int | None, status: str | None,
    ) -> None:
        """A cell outside any stage (or a kernel restart) in the run's lineage."""
        with self.transaction():
            self.insert("cells", {
                "run_id": run_id, "seq": self.next_seq(run_id), "kind": kind, "cell_id": cell_id,
                "execution_count": execution_count, "source": source, "source_sha256": source_sha256,
                "time": time.time(), "status": status,
            })

    def events(self, run_id: int) -> list[dict[str, Any]]:
        """The run's stage attempts, outside cells and restarts in execution order (for integrity)."""
        return self.rows(
            "SELECT seq, 'stage' AS kind, stage, source_sha256, source, execution_count, cell_id, status"
            " FROM stages WHERE run_id = ?"
            " UNION ALL SELECT seq, kind, NULL, source_sha256, source, execution_count, cell_id, status"
            " FROM cells WHERE run_id = ? ORDER BY seq",
            (run_id, run_id),
        )

    def replace_warnings(self, run_id: int, warnings: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Store the run's current integrity warnings. Returns the previous ones when they changed,
        None when nothing changed (and nothing was written)."""
        previous = self.rows("SELECT kind, stage, message FROM warnings WHERE run_id = ? ORDER BY id", (run_id,))
        if previous == [{"kind": w["kind"], "stage": w["stage"], "message": w["message"]} for w in warnings]:
            return None
        with self.transaction():
            self._write("DELETE FROM warnings WHERE run_id = ?", (run_id,))
            for w in warnings:
                self.insert("warnings", {
                    "run_id": run_id, "kind": w["kind"], "stage": w["stage"], "message": w["message"],
                    "details": dumps(w.get("details") or {}),
                })
        return previous

    def set_requirement(
        self, run_id: int, *, metric: str, op: str, threshold: float, target: str | None, notes: str | None,
    ) -> None:
        self._write(
            "INSERT OR REPLACE INTO requirements (run_id, metric, op, threshold, target, notes, time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, metric, op, threshold, target, notes, time.time()),
        )

    def requirement(self, run_id: int) -> dict[str, Any] | None:
        rows = self.rows("SELECT * FROM requirements WHERE run_id = ?", (run_id,))
        return rows[0] if rows else None

    def resumable_run(self, kernel: str) -> dict[str, Any] | None:
        """The latest notebook run of ``kernel`` (a kernel id, stable across restarts) that its
        process left unfinished: a restarted kernel carries on with it."""
        rows = self.rows(
            "SELECT runs.id, runs.status, runs.end_reason, runs.name, projects.name AS project FROM runs"
            " JOIN projects ON projects.id = runs.project_id"
            " WHERE runs.kernel = ? AND runs.kind = 'notebook' ORDER BY runs.id DESC LIMIT 1",
            (kernel,),
        )
        if rows and rows[0]["end_reason"] in ("kernel exit", "process gone"):
            return rows[0]
        return None

    # -- registry and deployment (mlops_nb.tracking.registry, mlops_nb.deploy.export) -----------------------------

    def captures(self, run_id: int) -> list[dict[str, Any]]:
        """The run's capture records, oldest first, with their stage's ``stage``, ``seq`` and
        ``stage_status``; ``summary`` is parsed."""
        rows = self.rows(
            "SELECT captures.id, captures.stage_id, captures.name, captures.kind, captures.fingerprint,"
            " captures.summary, captures.artifact_id, stages.stage, stages.seq, stages.status AS stage_status"
            " FROM captures LEFT JOIN stages ON stages.id = captures.stage_id"
            " WHERE captures.run_id = ? ORDER BY captures.id",
            (run_id,),
        )
        for row in rows:
            row["summary"] = json.loads(row["summary"])
        return rows

    def artifact(self, artifact_id: int) -> dict[str, Any] | None:
        rows = self.rows("SELECT * FROM artifacts WHERE id = ?", (artifact_id,))
        return rows[0] if rows else None

    def gates(self, run_id: int) -> list[dict[str, Any]]:
        """The run's gate results, oldest first, with the ``seq`` of the stage that produced each."""
        return self.rows(
            "SELECT gates.*, stages.seq FROM gates LEFT JOIN stages ON stages.id = gates.stage_id"
            " WHERE gates.run_id = ? ORDER BY gates.id",
            (run_id,),
        )

    def add_model_version(
        self, name: str, *, run_id: int | None, artifact_id: int, capture_id: int | None, class_path: str | None,
        description: str | None,
    ) -> int:
        """Register the next version of model ``name``; return its number (1, 2, ...)."""
        with self.transaction():
            last = self.conn.execute("SELECT max(version) FROM model_versions WHERE name = ?", (name,)).fetchone()[0]
            version = (last or 0) + 1
            self.insert("model_versions", {
                "name": name, "version": version, "run_id": run_id, "artifact_id": artifact_id,
                "capture_id": capture_id, "class": class_path, "created": time.time(), "description": description,
            })
        return version

    _VERSIONS_SQL = (
        "SELECT mv.name, mv.version, mv.run_id, mv.artifact_id, mv.capture_id, mv.class, mv.created,"
        " mv.description, (SELECT group_concat(alias, ',') FROM (SELECT alias FROM aliases"
        " WHERE aliases.name = mv.name AND aliases.version = mv.version ORDER BY alias)) AS aliases"
        " FROM model_versions AS mv"
    )

    def model_versions(self, name: str | None = None) -> list[dict[str, Any]]:
        """Registered versions (of ``name``, or all), by name then version; ``aliases`` is a list."""
        where, args = ("WHERE mv.name = ?", [name]) if name is not None else ("", [])
        rows = self.rows(f"{self._VERSIONS_SQL} {where} ORDER BY mv.name, mv.version", args)
        for row in rows:
            row["aliases"] = row["aliases"].split(",") if row["aliases"] else []
        return rows

    def model_version(self, name: str, version: int) -> dict[str, Any] | None:
        rows = self.rows(f"{self._VERSIONS_SQL} WHERE mv.name = ? AND mv.version = ?", (name, version))
        if not rows:
            return None
        rows[0]["aliases"] = rows[0]["aliases"].split(",") if rows[0]["aliases"] else []
        return rows[0]

    def aliases(self, name: str) -> dict[str, int]:
        return dict(self.conn.execute("SELECT alias, version FROM aliases WHERE name = ?", (name,)).fetchall())

    def set_alias(
        self, name: str, alias: str, version: int | None, *, by: str | None, run_id: int | None, reason: str | None,
    ) -> int | None:
        """Point ``alias`` of model ``name`` at ``version`` (None removes it) and add a history row.
        Returns the version it pointed at before (None if unset); nothing is written when unchanged."""
        with self.transaction():
            row = self.conn.execute(
                "SELECT version FROM aliases WHERE name = ? AND alias = ?", (name, alias)).fetchone()
            previous = row[0] if row else None
            if previous == version:
                return previous
            if version is None:
                self._write("DELETE FROM aliases WHERE name = ? AND alias = ?", (name, alias))
            else:
                self._write("INSERT OR REPLACE INTO aliases (name, alias, version) VALUES (?, ?, ?)",
                            (name, alias, version))
            self.insert("alias_history", {
                "name": name, "alias": alias, "version": version, "previous_version": previous,
                "time": time.time(), "by": by, "run_id": run_id, "reason": reason,
            })
        return previous

    def alias_history(self, name: str) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM alias_history WHERE name = ? ORDER BY id", (name,))

    def record_deployment(
        self, run_id: int, *, source: str, start_time: float, duration: float, summary: Mapping[str, Any],
        manifest: tuple[str, int, str],
    ) -> int:
        """Record an export as an ``ok`` ``deployment`` stage attempt of ``run_id``: the stage row,
        the manifest as an artifact (``manifest`` is :meth:`put_bytes`' result) and ``summary`` as
        a ``deployment`` capture. One transaction; returns the stage id."""
        with self.transaction():
            stage_id = self.begin_stage(
                run_id, "deployment", source=source,
                source_sha256=hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest(),
                cell_id=None, execution_count=None, start_time=start_time,
            )
            self.update("stages", stage_id, {"duration": duration, "status": "ok", "variables": dumps([])})
            artifact_id = self.add_artifact(run_id, "MANIFEST.json", manifest, kind="manifest", stage_id=stage_id)
            self.insert("captures", {
                "run_id": run_id, "stage_id": stage_id, "name": str(summary.get("model", "deployment")),
                "kind": "deployment", "fingerprint": None, "summary": dumps(summary), "artifact_id": artifact_id,
            })
        return stage_id

    # -- retraining (mlops_nb.deploy.retrain) ------------------------------------------------------------

    def add_drift(self, run_id: int, columns: Iterable[Mapping[str, Any]]) -> None:
        """Record per-column drift of a retraining run in one transaction: each item has ``column``,
        ``kind``, ``statistic``, ``value``, ``verdict`` and ``details`` (``ColumnDrift.to_dict()``)."""
        rows = [(run_id, str(c["column"]), c["kind"], c["statistic"], c.get("value"), c["verdict"],
                 dumps(c.get("details") or {})) for c in columns]
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO drift (run_id, column_name, kind, statistic, value, verdict, details)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def deployments(self, name: str) -> list[dict[str, Any]]:
        """The exports of model ``name`` (newest first): ``run_id``, ``path``, ``version``, ``time``."""
        return self.rows(
            "SELECT captures.run_id, json_extract(captures.summary, '$.path') AS path,"
            " json_extract(captures.summary, '$.version') AS version, stages.start_time AS time"
            " FROM captures JOIN stages ON stages.id = captures.stage_id"
            " WHERE captures.kind = 'deployment' AND captures.name = ? ORDER BY captures.id DESC",
            (name,))

    def drift(self, run_id: int) -> list[dict[str, Any]]:
        """The run's drift rows (``column_name``, ``kind``, ``statistic``, ``value``, ``verdict``,
        ``details`` parsed), in the order they were checked."""
        rows = self.rows(
            "SELECT column_name, kind, statistic, value, verdict, details FROM drift WHERE run_id = ? ORDER BY id",
            (run_id,))
        for row in rows:
            row["details"] = json.loads(row["details"]) if row["details"] else {}
        return rows

    def close(self) -> None:
        with self._lock:
            self.conn.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception; re-entrant through savepoints."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock):
        self.conn = conn
        self.lock = lock
        self.outer = False

    def __enter__(self):
        self.lock.acquire()
        self.outer = not self.conn.in_transaction
        try:
            self.conn.execute("BEGIN IMMEDIATE" if self.outer else "SAVEPOINT mlops_nb")
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.conn.execute("COMMIT" if self.outer else "RELEASE mlops_nb")
            elif self.outer:
                self.conn.execute("ROLLBACK")
            else:
                self.conn.execute("ROLLBACK TO mlops_nb")
                self.conn.execute("RELEASE mlops_nb")
        finally:
            self.lock.release()
        return False


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _project_scope(project: str | None) -> tuple[str, list]:
    return ("WHERE projects.name = ?", [project]) if project else ("", [])


_BASE_SQL = {
    "run_id": "runs.id",
    "project": "(SELECT name FROM projects WHERE projects.id = runs.project_id)",
    "name": "runs.name",
    "kind": "runs.kind",
    "status": "runs.status",
    "start_time": "runs.start_time",
    "end_time": "runs.end_time",
    "duration": "(runs.end_time - runs.start_time)",
}
_NAMESPACE_SQL = {
    "params": "(SELECT value FROM params WHERE params.run_id = runs.id AND params.key = ?)",
    "metrics": "(SELECT value FROM metrics WHERE metrics.run_id = runs.id AND metrics.key = ?"
               " ORDER BY metrics.rowid DESC LIMIT 1)",
    "tags": "(SELECT value FROM tags WHERE tags.run_id = runs.id AND tags.key = ?)",
}


def _literal(column, value: Any) -> Any:
    """Dates written as text compare with the epoch-second time columns."""
    if column.namespace is None and column.key in ("start_time", "end_time") and isinstance(value, str):
        from datetime import datetime, timezone

        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise FilterError(f"{value!r} is not a date; write times like '2026-11-26' or "
                              f"'2026-11-26T15:00'", expression=value) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return value


def _compile(node, args: list) -> str:
    from mlops_nb import filters

    if isinstance(node, filters.And):
        return f"({_compile(node.left, args)} AND {_compile(node.right, args)})"
    if isinstance(node, filters.Or):
        return f"({_compile(node.left, args)} OR {_compile(node.right, args)})"
    if isinstance(node, filters.Not):
        return f"(NOT {_compile(node.operand, args)})"
    column = node.column
    if column.namespace is None:
        sql = _BASE_SQL[column.key]
    else:
        sql = _NAMESPACE_SQL[column.namespace]
        args.append(column.key)
    if node.op == "in":
        values = [_literal(column, v) for v in node.value]
        args.extend(values)
        return f"{sql} IN ({', '.join('?' for _ in values)})"
    args.append(_literal(column, node.value))
    op = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "like": "LIKE"}[node.op]
    return f"{sql} {op} ?"


def _store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return StoreError(f"the store {path} is read-only; make it writable or use another store")
    if "locked" in text:
        return StoreError(f"the store {path} stayed locked for {BUSY_TIMEOUT_S:.0f} s by another writer; try again")
    if "disk" in text and "full" in text:
        return StoreError(f"the disk holding {path} is full; free space and try again (nothing was written)")
    return StoreError(f"the store {path} could not be written: {text}")


_open_stores: dict[tuple[int, Path, bool], Store] = {}
_open_lock = threading.Lock()


def open_store(store: str | os.PathLike | Store | None = None, *, readonly: bool = False) -> Store:
    """Open the store at ``store``; one connection per process (and per mode).

    For writing (the default) the store is created and migrated when needed, and the runs of this
    host whose process is gone are marked ``interrupted``. ``readonly=True`` is for readers (the
    server, the CLI's reads, widgets): it never creates, migrates, converts or writes anything, and
    SQLite itself refuses writes on the connection (``PRAGMA query_only``).

    Raises :class:`StoreError` with the fix when the path cannot hold a store (or, read-only, holds none).
    """
    if isinstance(store, Store):
        return store
    path = resolve_path(store)
    key = (os.getpid(), path, readonly)
    with _open_lock:
        if key in _open_stores:
            return _open_stores[key]
        if readonly:
            conn = _connect_readonly(path)
        else:
            _check_path(path)
            try:
                conn = _connect(path)
            except sqlite3.DatabaseError as exc:
                raise _store_error(path, exc) from None
        opened = Store(path, conn, readonly=readonly)
        if not readonly:
            opened.mark_interrupted()
        _open_stores[key] = opened
        return opened


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that reads an existing, up-to-date store and can write nothing."""
    if path.is_dir():
        raise StoreError(f"the store path {path} is a folder; give a file path such as {path / DEFAULT_FILENAME}")
    if not path.is_file():
        raise StoreError(f"no store at {path}; record a run first (mnb.start('project') or %mlops start project), "
                         f"or point --store / ${ENV_VAR} at an existing store")
    if not os.access(path, os.R_OK):
        raise StoreError(f"cannot read the store {path} (permission denied); ask its owner or copy it")
    if path.stat().st_size == 0 or not _is_sqlite(path):
        raise StoreError(f"{path} is not an mlops-nb store (not a SQLite database); it was left untouched")
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA query_only = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        has_runs = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise _store_error(path, exc) from None
    if version == 0 or not has_runs:
        conn.close()
        raise StoreError(f"{path} is a SQLite database but not an mlops-nb store; it was left untouched")
    if version < SCHEMA_VERSION:
        conn.close()
        raise StoreError(f"the store {path} was written by an older mlops-nb (schema {version}, this one reads "
                         f"{SCHEMA_VERSION}); upgrade it once with `mlops-nb --store {path} upgrade`")
    return conn


def close_all() -> None:
    """Close every store this process opened (tests; long-lived servers switching stores)."""
    with _open_lock:
        for opened in _open_stores.values():
            opened.close()
        _open_stores.clear()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    _use_wal(conn)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    _migrate(conn)
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put a new store in WAL mode (persistent: later opens find it done).

    The switch needs a moment of exclusive access. When a second process switches the same new
    file at that moment, SQLite answers "database is locked" at once instead of waiting for the
    busy timeout (seen about one time in ten in tests/test_store.py), so retry until it passes.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.005)


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply pending migrations under one write lock, so two processes creating the same new
    store at the same moment both succeed: the second waits, then finds nothing pending."""
    # Fast path without importing sqlite-utils (0.3 s): the schema version is kept in SQLite's
    # user_version when migrations are applied.
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    from mlops_nb.store.migrations import migrations

    expected = {m.name for m in migrations._migrations}
    try:
        done = {r[0] for r in conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", (migrations.name,))}
    except sqlite3.OperationalError:
        done = set()
    import sqlite_utils

    db = sqlite_utils.Database(conn, execute_plugins=False)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not expected <= done:
            migrations.apply(db)
        conn.execute(f"PRAGMA user_version = {len(migrations._migrations)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
