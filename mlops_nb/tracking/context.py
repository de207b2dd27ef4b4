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
