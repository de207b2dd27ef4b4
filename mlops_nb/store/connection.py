"""Opening the SQLite file: path checks, the writing and the read-only connection, WAL, migrations,
transactions, and whether the process that started a run is still alive.

Nothing here knows a table but ``runs``' liveness columns; the rest of the package builds on the
connection this module hands out. Importing it costs the standard library only: sqlite-utils
(0.3 s to import) is loaded by :func:`migrate` when a migration is actually pending.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_nb.errors import StoreError

DEFAULT_FILENAME = "mlops.db"
#: How many migrations ``mlops_nb/store/migrations.py`` has; a store whose ``PRAGMA user_version``
#: says so needs none (checked by a test, so the two cannot drift apart).
SCHEMA_VERSION = 10
ENV_VAR = "MLOPS_NB_STORE"
#: Set by ``mlops-nb check --store`` for the notebook's kernel: it wins over a ``%mlops start --store``.
CHECK_ENV_VAR = "MLOPS_NB_CHECK_STORE"
ARTIFACTS_DIR = "mlops-artifacts"
BUSY_TIMEOUT_S = 30.0
HOST = socket.gethostname()


def resolve_path(store: str | os.PathLike | None = None) -> Path:
    """The store file to use: ``store`` if given, else ``$MLOPS_NB_STORE``, else ``./mlops.db``."""
    chosen = store if store not in (None, "") else os.environ.get(ENV_VAR) or DEFAULT_FILENAME
    return Path(chosen).expanduser().absolute()


# -- process liveness ---------------------------------------------------------------------------------


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


def process_alive(pid: int, token: str | None) -> bool:
    """Whether process ``pid`` exists and is the incarnation that recorded ``token``."""
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
    next writing open of the store records it (``mlops_nb.store.writer.Writer.mark_interrupted``)."""
    if run.get("status") != "running" or run.get("host") != HOST or not run.get("pid"):
        return False
    return not process_alive(run["pid"], run.get("pid_start"))


# -- checks before opening --------------------------------------------------------------------------


def check_writable_path(path: Path, *, create: bool = False) -> None:
    """Refuse, with the fix, a path that cannot hold a store; never touch an existing file.

    An existing path must be a regular, non-empty SQLite file holding an mlops-nb store: an empty
    file, a folder, a FIFO, a device such as /dev/null or another application's database is refused
    and keeps its bytes (SQLite would otherwise turn it into a store or create a journal beside it).
    A missing file is refused unless ``create`` (the commands that create a store on purpose)."""
    check_existing_file(path, missing_ok=create)
    folder = path.parent
    if path.exists():
        if not os.access(path, os.W_OK):
            raise StoreError(
                f"the store {path} is read-only; make it writable (chmod u+w) "
                f"or use another store with --store PATH or ${ENV_VAR}"
            )
    else:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder {folder} for the store ({exc.strerror}); "
                f"choose a writable location with --store PATH or ${ENV_VAR}"
            ) from None
    if not os.access(folder, os.W_OK):
        raise StoreError(
            f"cannot write in {folder}, where the store {path.name} and its journal live; "
            f"choose a writable location with --store PATH or ${ENV_VAR}"
        )


def check_existing_file(path: Path, *, missing_ok: bool = False) -> None:
    """Refuse, naming the problem and the fix, a path that does not hold an mlops-nb store. Reads
    only through :func:`sqlite_kind`'s immutable probe: nothing is created, locked or written."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        if missing_ok:
            return  # the folder checks that follow say what is wrong with a path under a file
        raise StoreError(f"no store at {path}; record a run first (mnb.start('project') or %mlops start project), "
                         f"or point --store / ${ENV_VAR} at an existing store") from None
    except PermissionError:
        raise StoreError(f"cannot reach the store {path} (permission denied on its folder); "
                         f"ask its owner, or point --store / ${ENV_VAR} elsewhere") from None
    except OSError as exc:
        raise StoreError(f"cannot use the store path {path} ({exc.strerror}); "
                         f"point --store / ${ENV_VAR} at a store file") from None
    if stat.S_ISDIR(info.st_mode):
        raise StoreError(f"the store path {path} is a folder; give a file path such as {path / DEFAULT_FILENAME}")
    if not stat.S_ISREG(info.st_mode):
        raise StoreError(f"{path} is not a regular file (a device, FIFO or socket), so it cannot be a store; "
                         f"it was left untouched. Point --store or ${ENV_VAR} at a store file")
    if not os.access(path, os.R_OK):
        raise StoreError(f"cannot read the store {path} (permission denied); ask its owner or copy it")
    if info.st_size == 0:
        raise StoreError(f"{path} is an empty file, not an mlops-nb store; it was left untouched. "
                         f"Delete it to start a store there, or point --store or ${ENV_VAR} at another file")
    kind = sqlite_kind(path)
    if kind == "foreign":
        raise StoreError(f"{path} is not an mlops-nb store (not a SQLite database); it was left untouched. "
                         f"Point --store or ${ENV_VAR} at another file")
    if kind == "other-database":
        raise StoreError(f"{path} is a SQLite database but not an mlops-nb store; it was left untouched. "
                         f"Point --store or ${ENV_VAR} at another file")


def sqlite_kind(path: Path) -> str:
    """What the file at ``path`` holds: ``"store"`` (it has mlops-nb's tables), ``"foreign"`` (not
    SQLite), ``"other-database"`` (a SQLite database without them), or ``"unknown"`` (unreadable now,
    say locked: the real open decides). Asked through SQLite itself (``immutable``: no lock taken, no
    -wal or -shm file created, nothing written).

    Reading its header with ``open()`` would be simpler, but closing that file descriptor drops every
    POSIX lock this process holds on the file, those of its live SQLite connections included ("How
    To Corrupt An SQLite Database File", 2.2.1): a store opened in a kernel that has its own sqlite3
    connection to the file would then let another process checkpoint the WAL under that connection.
    SQLite's own open and close keep the process's locks."""
    probe = sqlite3.connect(f"{path.absolute().as_uri()}?immutable=1", uri=True, timeout=BUSY_TIMEOUT_S)
    try:
        names = {row[0] for row in probe.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.OperationalError:
        return "unknown"
    except sqlite3.DatabaseError as exc:
        return "foreign" if "not a database" in str(exc) else "unknown"
    finally:
        probe.close()
    return "store" if names & {"runs", "_sqlite_migrations"} else "other-database"


def store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """The :class:`StoreError` a user can act on for a SQLite failure on the store at ``path``."""
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return StoreError(f"the store {path} is read-only; make it writable or use another store")
    if "locked" in text:
        return StoreError(f"the store {path} stayed locked for {BUSY_TIMEOUT_S:.0f} s by another writer; try again")
    if "disk" in text and "full" in text:
        return StoreError(f"the disk holding {path} is full; free space and try again (nothing was written)")
    return StoreError(f"the store {path} could not be written: {text}")


# -- connections ------------------------------------------------------------------------------------


def connect(path: Path) -> sqlite3.Connection:
    """The writing connection: WAL, ``synchronous=NORMAL``, foreign keys, migrated to the current schema.
    Autocommit (``isolation_level=None``): a lone write is durable at once; :class:`Transaction` groups."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    _use_wal(conn)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    migrate(conn)
    return conn


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that reads an existing, up-to-date store and can write nothing (``query_only``)."""
    check_existing_file(path)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA query_only = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        has_runs = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise store_error(path, exc) from None
    if version == 0 or not has_runs:
        conn.close()
        raise StoreError(f"{path} is a SQLite database but not an mlops-nb store; it was left untouched")
    if version < SCHEMA_VERSION:
        conn.close()
        raise StoreError(f"the store {path} was written by an older mlops-nb (schema {version}, this one reads "
                         f"{SCHEMA_VERSION}); upgrade it once with `mlops-nb --store {path} upgrade`")
    return conn


def create_store_file(path: Path) -> None:
    """Create a new, migrated store at the missing ``path`` atomically: it is built under a temporary
    name beside it and linked into place, so nobody ever sees a half-made (empty) file at ``path``,
    and two processes creating the same store at once both end up opening the one that won."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.creating")
    try:
        conn = connect(temporary)
        conn.close()
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
        except OSError:  # a filesystem without hard links: rename, unless someone else won meanwhile
            if not path.exists():
                os.replace(temporary, path)
    except sqlite3.DatabaseError as exc:
        raise store_error(path, exc) from None
    finally:
        for leftover in (temporary, *(temporary.with_name(temporary.name + s) for s in ("-wal", "-shm", "-journal"))):
            leftover.unlink(missing_ok=True)


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


def migrate(conn: sqlite3.Connection) -> None:
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


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception; re-entrant through savepoints.

    ``lock`` is the store's: one connection is shared by the threads of a process (a kernel's
    comm thread and its cells), and SQLite transactions are per connection, not per thread."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock):
        self.conn = conn
        self.lock = lock
        self.outer = False

    def __enter__(self) -> Transaction:
        self.lock.acquire()
        self.outer = not self.conn.in_transaction
        try:
            self.conn.execute("BEGIN IMMEDIATE" if self.outer else "SAVEPOINT mlops_nb")
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
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
