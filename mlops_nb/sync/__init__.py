"""Mirror the local store to an MLflow tracking server, incrementally (``mlops-nb sync mlflow``,
``%mlops sync``, and the store's ``mlflow_uri`` setting after every run's end and retraining run).

A layer of its own between tracking and deploy: it reads the store, writes its bookkeeping through
:mod:`mlops_nb.tracking.sync_state`, and talks to MLflow only through :mod:`mlops_nb.sync.client`,
which imports ``mlflow`` on first use (``pip install 'mlops-nb[mlflow]'``). ``plan`` decides what is
new from the store alone, so a sync with nothing to push never imports mlflow nor calls the server.
"""

from __future__ import annotations

from mlops_nb.sync.push import Summary, sync_mlflow

__all__ = ["Summary", "sync_mlflow"]
