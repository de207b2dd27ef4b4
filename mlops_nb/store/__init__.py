"""The store: the only SQL in mlops-nb. One SQLite file (``./mlops.db`` unless ``$MLOPS_NB_STORE``
or an explicit path says otherwise) in WAL mode with a busy timeout, so notebooks, scripts and cron
jobs write to it at once; artifacts are content-addressed files in ``mlops-artifacts/`` beside it.

Modules, one owner each:

``connection``  path checks, the writing and the read-only connection, WAL, migrations,
                transactions, process liveness
``values``      params, metrics and JSON as the store holds them
``artifacts``   content-addressed files
``where``       the ``where`` tree to SQL
``runs``, ``lifecycle``, ``registry``   the reads, by owner, mixed into ``reader.Store``
``writer``      every write; only :mod:`mlops_nb.tracking` imports it
``migrations``  the schema, one named step at a time

This module opens stores: :func:`open_store` (one connection per process, path and mode) and
:func:`close_all`. It sits above ``reader`` and ``writer`` because the writing open records the
runs whose process is gone, a write. Importing it stays cheap (standard library only):
sqlite-utils is loaded when a migration runs, pandas by the reads that return frames.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from mlops_nb.store.connection import (
    ARTIFACTS_DIR,
    BUSY_TIMEOUT_S,
    CHECK_ENV_VAR,
    DEFAULT_FILENAME,
    ENV_VAR,
    HOST,
    SCHEMA_VERSION,
    check_writable_path,
    connect,
    connect_readonly,
    create_store_file,
    process_gone,
    process_start_token,
    resolve_path,
    store_error,
)
from mlops_nb.store.reader import Store
from mlops_nb.store.runs import RUN_COLUMNS
from mlops_nb.store.values import dumps

_HOST = HOST  # the name tests and older callers know

__all__ = [
    "ARTIFACTS_DIR", "BUSY_TIMEOUT_S", "CHECK_ENV_VAR", "DEFAULT_FILENAME", "ENV_VAR", "RUN_COLUMNS",
    "SCHEMA_VERSION", "Store",
    "close_all", "dumps", "open_store", "process_gone", "process_start_token", "resolve_path",
]

_open_stores: dict[tuple[int, object, bool], Store] = {}
_open_lock = threading.Lock()


def open_store(store: str | os.PathLike | Store | None = None, *, readonly: bool = False,
               create: bool = False) -> Store:
    """Open the store at ``store``; one connection per process (and per mode).

    For writing (the default) the store is migrated when needed, and the runs of this
    host whose process is gone are marked ``interrupted`` (the only write an open makes). Writes
    themselves go through :mod:`mlops_nb.tracking`. ``readonly=True`` is for readers (the server,
    the CLI's reads, widgets): it never creates, migrates, converts or writes anything, and SQLite
    itself refuses writes on the connection (``PRAGMA query_only``).

    Opening never creates or converts a file that is not already an mlops-nb store: an empty file, a
    folder, a FIFO, a device or another application's SQLite file is refused and keeps its bytes. A
    missing file is created (atomically, migrated) only with ``create=True``, which the commands
    that start a store on purpose pass (:func:`mlops_nb.tracking.start`, so ``%mlops start``, and
    the demo).

    Raises :class:`~mlops_nb.errors.StoreError` with the fix when the path cannot hold a store
    (or holds none).
    """
    if isinstance(store, Store):
        return store
    path = resolve_path(store)
    key = (os.getpid(), path, readonly)
    with _open_lock:
        if key in _open_stores:
            return _open_stores[key]
        if readonly:
            conn = connect_readonly(path)
        else:
            check_writable_path(path, create=create)
            if create and not path.exists():
                create_store_file(path)
                check_writable_path(path)
            try:
                conn = connect(path)
            except sqlite3.DatabaseError as exc:
                raise store_error(path, exc) from None
        opened = Store(path, conn, readonly=readonly)
        if not readonly:
            from mlops_nb.store.writer import Writer

            Writer(opened).mark_interrupted()
        _open_stores[key] = opened
        return opened


def close_all() -> None:
    """Close every store this process opened (tests; long-lived servers switching stores)."""
    with _open_lock:
        for opened in _open_stores.values():
            opened.close()
        _open_stores.clear()
