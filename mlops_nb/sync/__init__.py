"""Mirror the local store to an MLflow tracking server, incrementally (``mlops-nb sync mlflow``,
``%mlops sync``, and the store's ``mlflow_uri`` setting after every run's end and retraining run).

A layer of its own between tracking and deploy: it reads the store, writes its bookkeeping through
:mod:`mlops_nb.tracking.sync_state`, and talks to MLflow only through :mod:`mlops_nb.sync.client`,
which imports ``mlflow`` on first use (``pip install 'mlops-nb[mlflow]'``). ``plan`` decides what is
new from the store alone, so a sync with nothing to push never imports mlflow nor calls the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_nb.sync.push import Summary, sync_mlflow

__all__ = ["Summary", "sync_mlflow"]


def __getattr__(name: str) -> Any:
    # Imported on first use: a retraining job imports sync.auto at its end to learn that the store
    # has no mlflow_uri, and should not load the push, the run view and the MLflow client for that.
    if name in __all__:
        from mlops_nb.sync import push

        return getattr(push, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
