"""Tracking: the only writer of the store. Runs and logging, stages and cells, the registry, the
environment; and the one view of a run that every front end renders."""

from mlops_nb.tracking.run import END_STATUSES, Run, get_run, metric_history, runs, start

__all__ = ["END_STATUSES", "Run", "get_run", "metric_history", "runs", "start"]
