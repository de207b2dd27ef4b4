"""The :class:`Store`: an open store and every read of it.

Reads are grouped by owner in mixins (:mod:`~mlops_nb.store.runs`, :mod:`~mlops_nb.store.lifecycle`,
:mod:`~mlops_nb.store.registry`, :mod:`~mlops_nb.store.serving`) rather than in free functions, so that
every caller keeps the one vocabulary it already speaks (``store.run(7)``, ``store.runs_frame()``) on one
object, while each file stays small and owns one kind of data. The writes are not here: they live in
:mod:`mlops_nb.store.writer`, which only :mod:`mlops_nb.tracking` uses, so a reader can hold a
``Store`` without being able to change the record.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from mlops_nb.store.connection import ARTIFACTS_DIR
from mlops_nb.store.lifecycle import LifecycleReads
from mlops_nb.store.registry import RegistryReads
from mlops_nb.store.runs import RunReads
from mlops_nb.store.serving import ServingReads
from mlops_nb.store.sync import SyncReads


class Store(RunReads, LifecycleReads, RegistryReads, ServingReads, SyncReads):
    """An open store. Get one with :func:`mlops_nb.store.open_store`; its methods are the store's
    whole read vocabulary, and none of them writes (a read-only open proves it: SQLite refuses)."""

    def __init__(self, path: Path, conn: sqlite3.Connection, *, readonly: bool = False):
        self.path = path
        self.conn = conn
        #: Opened with ``open_store(..., readonly=True)``: SQLite refuses every write (``query_only``).
        self.readonly = readonly
        self.artifacts_dir = path.parent / ARTIFACTS_DIR
        #: Held by the writer's transactions: threads of one process share this one connection.
        self.lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<Store {self.path}{' (read-only)' if self.readonly else ''}>"

    def artifact_path(self, relative: str) -> Path:
        """The file of an artifact row's ``path`` (relative to the store's folder)."""
        return self.path.parent / relative

    def close(self) -> None:
        """Close the connection (:func:`mlops_nb.store.close_all` closes every open store)."""
        with self.lock:
            self.conn.close()
