"""Recording an export: what ``mlops_nb.deploy.export`` writes to the store when a package is made."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mlops_nb.store import Store, open_store
from mlops_nb.store.writer import Writer


def record_deployment(
    run_id: int, *, source: str, start_time: float, duration: float, summary: Mapping[str, Any],
    manifest: bytes, store: str | os.PathLike | Store | None = None,
) -> int:
    """Record an export of run ``run_id``'s model as an ``ok`` ``deployment`` stage attempt and
    return the stage's id.

    ``source``: the command that exported (shown as the stage's source). ``start_time``: epoch
    seconds; ``duration``: seconds. ``summary``: what the export made (``model``, ``version``,
    ``path``, ``schedule``...), kept as the stage's ``deployment`` capture, which
    ``Store.deployments`` lists. ``manifest``: the package's MANIFEST.json bytes, kept as an
    artifact. The stage row, the artifact row and the capture are one transaction.
    """
    opened = open_store(store)
    writer = Writer(opened)
    stored = writer.put_bytes(manifest)
    return writer.record_deployment(
        run_id, source=source, start_time=start_time, duration=duration, summary=summary, manifest=stored,
    )
