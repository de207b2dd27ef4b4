"""The store's settings and the bookkeeping of a sync to an MLflow server: the writes that
:mod:`mlops_nb.sync` needs, here because only tracking may use the store's writer.

Each call is one durable write (autocommit), so what the store says was pushed is never more than
what the server acknowledged: a sync killed between the two re-checks the server on resume."""

from __future__ import annotations

import os
from typing import Any

from mlops_nb.errors import InvalidValue
from mlops_nb.store import Store, open_store
from mlops_nb.store.writer import Writer

#: The settings a user may set (``mlops-nb sync mlflow --auto``, ``%mlops sync --auto``).
USER_SETTINGS = ("mlflow_uri",)


def set_setting(key: str, value: str | None, *, store: str | os.PathLike | Store | None = None) -> None:
    """Set (or, with None, remove) the store setting ``key``; ``mlflow_uri`` makes every run's end and
    every retraining run push to that MLflow server."""
    if key not in USER_SETTINGS:
        raise InvalidValue(f"unknown store setting {key!r}; the settings are: {', '.join(USER_SETTINGS)}")
    Writer(_open(store)).set_setting(key, value)


def record_run(store: Store, target: str, run_id: int, **changes: Any) -> None:
    """Record what was pushed of run ``run_id`` to ``target``: ``remote_id``, ``metric_rowid``,
    ``inflight_rowid``, ``params`` (JSON of the pushed params), ``state`` (digest of the rest)."""
    Writer(store).sync_run(target, run_id, **changes)


def record_item(store: Store, target: str, kind: str, key: str, remote: str | None) -> None:
    """Record (or forget, with None) an experiment, artifact, model version or alias pushed to ``target``."""
    Writer(store).sync_item(target, kind, key, remote)


def _open(store: str | os.PathLike | Store | None) -> Store:
    return store if isinstance(store, Store) else open_store(store)
