"""Runs and logging: the single write path used by the magics, the Python API and retraining.

A :class:`Run` reads through ``run.store`` (a :class:`~mlops_nb.store.Store`) and writes through
the store's writer, which no code outside :mod:`mlops_nb.tracking` may import."""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_nb.errors import InvalidValue, RunEnded
from mlops_nb.store import RUN_COLUMNS, Store, open_store, resolve_path
from mlops_nb.store.writer import Writer
from mlops_nb.tracking import context

if TYPE_CHECKING:
    import pandas

END_STATUSES = ("finished", "failed", "interrupted")


class Run:
    """One pass through the lifecycle. Get one from :func:`start`; use it as a context manager.

    >>> with mnb.start("churn") as run:          # doctest: +SKIP
    ...     run.log_param("C", 1.0)
    ...     run.log_metric("f1", 0.91)

    Leaving the ``with`` block ends the run ``finished``; an exception inside ends it ``failed``
    with the error text, then propagates.
    """

    def __init__(self, store: Store, run_id: int, project: str, name: str):
        #: The open store: read anything about the run through it (``run.store.run_details(run.id)``).
        self.store = store
        self._writer = Writer(store) if not store.readonly else _Refused(store)
        self.id = run_id
        self.project = project
        self.name = name
        self.status = "running"
        self._steps: dict[str, int] | None = None

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.name!r} of {self.project!r}: {self.status}>"

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.status == "running":
            if exc is None:
                self.end("finished")
            else:
                self.end("failed", error=f"{exc_type.__name__}: {exc}")
        return False

    def _check_open(self, what: str) -> None:
        if self.status != "running":
            raise RunEnded(
                f"run {self.id} ({self.name}) has ended ({self.status}); cannot {what}. "
                f"Start a new run with mnb.start({self.project!r}) or %mlops start {self.project}"
            )

    def log_param(self, key: str, value: Any) -> None:
        """Record a parameter. Logging a key again replaces its value; the old one goes to history.

        ``value``: a string, number, bool, None, or a list/dict of those (stored as JSON).
        """
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several parameters in one transaction (see :meth:`log_param`)."""
        self._check_open("log params")
        self._writer.log_params(self.id, {_name("param", key): value for key, value in params.items()})

    def _next_step(self, key: str) -> int:
        if self._steps is None:
            self._steps = self.store.last_steps(self.id)
        step = self._steps.get(key, -1) + 1
        return step

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Record one value of metric ``key`` as one durable write.

        ``step``: the x-axis of the metric's history; by default one more than the key's last step
        (0 for the first value). Every value is kept; the latest is what ``runs()`` shows.
        NaN and infinities are stored faithfully; a non-number raises :class:`InvalidValue`.
        """
        self._check_open("log metrics")
        _name("metric", key)
        step = self._next_step(key) if step is None else _whole_step(key, step)
        self._writer.log_metric(self.id, key, step, value)
        if self._steps is not None and step > self._steps.get(key, -1):
            self._steps[key] = step

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record several metrics in one transaction; ``step`` applies to all of them."""
        self._check_open("log metrics")
        rows = []
        for key, value in metrics.items():
            _name("metric", key)
            key_step = self._next_step(key) if step is None else _whole_step(key, step)
            rows.append((self.id, key, key_step, value))
        self._writer.log_metrics(rows)
        if self._steps is not None:
            for _, key, key_step, _ in rows:
                self._steps[key] = max(key_step, self._steps.get(key, -1))

    def set_tag(self, key: str, value: Any) -> None:
        """Set a free-form tag (stored as text); setting it again replaces it."""
        self._check_open("set tags")
        self._writer.set_tags(self.id, {_name("tag", key): value})

    def log_artifact(self, path: str | os.PathLike, name: str | None = None) -> str:
        """Copy the file at ``path`` into the store's artifact folder and record it.

        ``name``: what to call it in the run (default: the file name). Returns the SHA-256. The copy
        is content-addressed, so logging the same bytes twice stores them once.
        """
        self._check_open("log artifacts")
        source = Path(path)
        if not source.is_file():
            raise InvalidValue(f"cannot log artifact {str(path)!r}: no such file; give the path of a file")
        stored = self._writer.put_file(source)
        self._writer.add_artifact(self.id, name or source.name, stored)
        return stored[0]

    def end(self, status: str = "finished", *, error: str | None = None, reason: str = "explicit") -> None:
        """End the run with ``status`` (``finished``, ``failed`` or ``interrupted``).

        ``reason`` is kept in ``runs.end_reason``: ``explicit`` here; the notebook session passes
        ``kernel exit`` when its kernel shuts down, so that a restarted kernel resumes the run.
        """
        if status not in END_STATUSES:
            raise InvalidValue(f"cannot end a run as {status!r}; use one of: {', '.join(END_STATUSES)}")
        self._check_open("end it again")
        self._writer.end_run(self.id, status, error, reason=reason)
        self.status = status
        context.run_ended(self)


class _Refused:
    """The writer of a run read through a read-only store: every write says how to write instead."""

    def __init__(self, store: Store):
        self.store = store

    def __getattr__(self, name: str) -> Any:
        Writer(self.store)  # raises the StoreError that names the fix
        raise AssertionError("unreachable")  # pragma: no cover


def _name(kind: str, key: Any) -> str:
    """``key`` if it can name a param, metric or tag (a non-empty string), else InvalidValue."""
    if isinstance(key, str) and key.strip():
        return key
    raise InvalidValue(f"a {kind} name must be a non-empty string, got {key!r}; name it like 'f1' or 'val/loss'")


def _whole_step(key: str, step: Any) -> int:
    """``step`` as an int; numpy integers are welcome, floats, text and bools are not."""
    if isinstance(step, numbers.Integral) and not isinstance(step, bool):
        return int(step)
    raise InvalidValue(f"step for metric {key!r} must be a whole number, got {step!r}")


def start(
    project: str,
    *,
    name: str | None = None,
    store: str | os.PathLike | Store | None = None,
    parent: int | Run | None = None,
    kind: str = "script",
    notebook: str | None = None,
    kernel: str | None = None,
) -> Run:
    """Start a run in ``project`` and return it.

    ``name``: a label for the run (default ``run-<id>``). ``store``: the store file (default
    ``$MLOPS_NB_STORE`` or ``./mlops.db``). ``parent``: the run (or its id) this one descends from.
    ``kind``: ``script`` for the API, ``notebook`` for the magics, ``retraining`` for the cron job.
    """
    from mlops_nb.tracking.environment import environment

    if not isinstance(project, str) or not project.strip():
        raise InvalidValue(f"project must be a non-empty name, got {project!r}")
    opened = open_store(store, create=True)  # starting a run is how a store comes to be
    parent_id = parent.id if isinstance(parent, Run) else parent
    run_id = Writer(opened).create_run(
        project.strip(), name=name, kind=kind, parent_id=parent_id, notebook=notebook,
        kernel=kernel, environment=environment(),
    )
    return Run(opened, run_id, project.strip(), name or f"run-{run_id}")


def get_run(run_id: int, *, store: str | os.PathLike | Store | None = None) -> Run:
    """A handle on an existing run; logging to it works only while it is ``running``."""
    opened = open_store(store)
    row = opened.run(run_id)
    run = Run(opened, row["id"], row["project"], row["name"])
    run.status = row["status"]
    return run


def runs(
    project: str | None = None, *, where: str | None = None, store: str | os.PathLike | Store | None = None
) -> pandas.DataFrame:
    """One row per run: ``run_id``, ``project``, ``name``, ``kind``, ``status``, ``start_time``,
    ``end_time``, then ``params.<k>``, ``metrics.<k>`` (latest value) and ``tags.<k>``.

    ``where`` filters with the small language of :mod:`mlops_nb.filters`, for example
    ``"metrics.f1 > 0.8 and params.model = 'rf'"``.
    """
    if not isinstance(store, Store) and not resolve_path(store).exists():
        import pandas as pd

        return pd.DataFrame(columns=list(RUN_COLUMNS))  # no store yet: no runs, and reading creates none
    return open_store(store).runs_frame(project, where)


def metric_history(
    run_id: int, key: str, *, store: str | os.PathLike | Store | None = None
) -> pandas.DataFrame:
    """Every value logged for metric ``key`` of run ``run_id``: columns ``step``, ``value``, ``time``."""
    return open_store(store).metric_history(run_id, key)
