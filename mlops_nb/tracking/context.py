"""The current run, as the layer above tracking knows it.

Tracking never looks up who is calling it: a front end that has a notion of "the current run"
(the notebook layer, when ``%load_ext mlops_nb`` runs) registers a provider here, and registry and
export ask it. Under cron or the CLI no provider is registered and :func:`current` returns None,
so code that needs a notebook namespace says so instead of reaching into IPython.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Current:
    """What a provider knows: the current run (a :class:`~mlops_nb.tracking.Run` or None), the store
    it was asked to use (a path or None for the default), the user's namespace and working folder."""

    run: Any = None
    store: Any = None
    namespace: dict[str, Any] = field(default_factory=dict)
    workdir: str | None = None


_provider: Callable[[], Current | None] | None = None


def set_provider(provider: Callable[[], Current | None] | None) -> None:
    """Register (or, with None, remove) the function that says what the current run is."""
    global _provider
    _provider = provider


def current() -> Current | None:
    """What the registered provider says, or None when there is no provider or it knows no session."""
    return _provider() if _provider is not None else None


# -- after a run ends ---------------------------------------------------------------------------------
# A layer above may want to act when a run ends (the sync pushes it to the MLflow server of the
# store's ``mlflow_uri`` setting). It registers a listener here rather than tracking importing it.

_end_listeners: list[Callable[[Any], None]] = []


def on_run_end(listener: Callable[[Any], None]) -> None:
    """Call ``listener(run)`` after every :meth:`~mlops_nb.tracking.Run.end` of this process (once,
    however often it is registered)."""
    if listener not in _end_listeners:
        _end_listeners.append(listener)


def run_ended(run: Any) -> None:
    """Tell the listeners that ``run`` has ended. The run is already recorded as ended: a listener
    that fails costs one line on stderr, never the run."""
    import sys

    for listener in list(_end_listeners):
        try:
            listener(run)
        except Exception as exc:  # the local record stands whatever a listener does
            print(f"mlops: after run {getattr(run, 'id', '?')} ended: {type(exc).__name__}: {exc}", file=sys.stderr)
