"""The automatic push: when the store has the setting ``mlflow_uri``, a run that ends (a notebook's,
a script's) and every retraining run push themselves to that MLflow server.

It never fails the run or the job: the run is already recorded locally (the truth), so a server that
is down or refuses costs one line on stderr and the next sync catches up. MLflow's timeout and retries
are kept short here (:data:`~mlops_nb.sync.client.AUTO_TIMEOUTS`) so a down server cannot stall the
end of a run for minutes. Nothing of mlflow is imported unless the setting is there."""

from __future__ import annotations

import sys
from typing import Any

from mlops_nb.tracking import context


def install() -> None:
    """Push after every run's end in this process (the notebook extension and ``mnb.start`` call this)."""
    context.on_run_end(after_run_end)


def after_run_end(run: Any) -> None:
    """The listener :func:`install` registers with tracking."""
    push_after(run.store, run.id, run.project)


def push_after(store: Any, run_id: int, project: str | None = None) -> Any:
    """Push run ``run_id`` (and later runs of its project, and their model versions) to the store's
    ``mlflow_uri``, if it has one. Returns the summary, or None when not set or not pushed."""
    try:
        uri = store.setting("mlflow_uri")
    except Exception:
        return None
    if not uri:
        return None
    from mlops_nb.sync.client import AUTO_TIMEOUTS
    from mlops_nb.sync.push import sync_mlflow

    try:
        summary = sync_mlflow(uri, store=store, projects=[project] if project else None, since=run_id,
                              progress=False, http_timeouts=AUTO_TIMEOUTS)
    except Exception as exc:  # the local record stands; the next sync catches up
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"mlops: run {run_id} is recorded locally but was not pushed to MLflow: {text}", file=sys.stderr)
        return None
    if not summary.nothing:
        print(f"mlops: run {run_id} pushed to MLflow at {uri}")
    return summary
