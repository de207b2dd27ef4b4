"""Writing a run's lifecycle: stage attempts and what they produced, cells outside any stage,
kernel restarts, the requirement, and the integrity warnings judged from all of it.

The notebook layer calls these (never the store's writer): it knows cells and namespaces, this
module knows what recording them means. Each function is one transaction.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from typing import Any

from mlops_nb.stages import Requirement
from mlops_nb.store import Store, open_store, resolve_path
from mlops_nb.store.writer import Writer
from mlops_nb.tracking import integrity
from mlops_nb.tracking.run import Run, get_run


def source_sha256(source: str) -> str:
    """The SHA-256 of a cell's source, as stages and cells record it (integrity compares these)."""
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


def begin_stage(
    run: Run, stage: str, *, source: str, cell_id: str | None, execution_count: int | None,
    start_time: float | None = None,
) -> int:
    """Record a ``running`` attempt of ``stage`` (so a kernel dying mid-cell still leaves a trace)
    and return its id for :func:`finish_stage`. ``start_time``: epoch seconds, default now."""
    return Writer(run.store).begin_stage(
        run.id, stage, source=source, source_sha256=source_sha256(source), cell_id=cell_id,
        execution_count=execution_count, start_time=time.time() if start_time is None else start_time,
    )


def finish_stage(
    run: Run, stage_id: int, *, duration: float, status: str, error: str | None = None,
    variables: list[str] = (), captures: list[dict[str, Any]] = (), metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None, gate: Mapping[str, Any] | None = None,
    execution_count: int | None = None,
) -> None:
    """Close a stage attempt with everything it produced, in one transaction.

    ``status``: ``ok`` or ``error`` (with ``error``, the exception's text). ``variables``: the names
    the cell changed. ``captures``: records from :mod:`mlops_nb.capture`; a record's ``artifact``
    may hold a serialised model (bytes, from ``capture.dump_model``), stored content-addressed and
    linked to the capture, and a search's ``candidates`` become rows of their own. ``params`` and
    ``metrics`` are logged to the run (metrics at each key's next step). ``gate``: the requirement's
    verdict (``metric``, ``op``, ``threshold``, ``value``, ``passed``). ``execution_count``: the
    cell's final count when it differs from the one known at :func:`begin_stage`.
    """
    writer = Writer(run.store)
    records = []
    for record in captures:
        if isinstance(record.get("artifact"), (bytes, bytearray)):
            # The file first, outside the transaction: an orphan file is harmless, a row without one is not.
            record = {**record, "artifact": writer.put_bytes(bytes(record["artifact"]))}
        records.append(record)
    writer.finish_stage(
        run.id, stage_id, duration=duration, status=status, error=error, variables=list(variables),
        captures=records, metrics=dict(metrics or {}), params=dict(params or {}), gate=gate,
        execution_count=execution_count,
    )


def record_cell(
    run: Run, *, source: str, cell_id: str | None, execution_count: int | None, status: str,
) -> None:
    """Record a cell that ran outside any stage (``status`` ``ok`` or ``error``) in the run's lineage:
    integrity uses it to tell when a stage's inputs may have changed behind its back."""
    Writer(run.store).record_cell(
        run.id, kind="cell", source=source, source_sha256=source_sha256(source), cell_id=cell_id,
        execution_count=execution_count, status=status,
    )


def resume_after_restart(kernel: str, *, store: str | os.PathLike | Store | None = None) -> Run | None:
    """The run a restarted kernel left unfinished (ended by ``kernel exit`` or found gone), running
    again in this process with the restart in its lineage; None when there is none to resume.

    ``kernel``: the kernel's stable key (its connection file name survives a restart).
    """
    if not isinstance(store, Store) and not resolve_path(store).exists():
        return None  # no store yet, so no run to resume (and none is created just to look)
    opened = open_store(store)
    left = opened.resumable_run(kernel)
    if left is None:
        return None
    writer = Writer(opened)
    with writer.transaction():
        writer.resume_run(left["id"])
        writer.record_cell(left["id"], kind="restart", source=None, source_sha256=None, cell_id=None,
                           execution_count=None, status=None)
    return get_run(left["id"], store=opened)


def set_requirement(run: Run, requirement: Requirement, *, target: str | None = None,
                    notes: str | None = None) -> None:
    """State (or replace) what the run's validation stage must meet, e.g. ``f1 >= 0.85``.
    ``target``: the column the model predicts (export and retraining use it); ``notes``: free text."""
    Writer(run.store).set_requirement(
        run.id, metric=requirement.metric, op=requirement.op, threshold=requirement.threshold,
        target=target, notes=notes,
    )


#: One incremental judge per run this process judges, fed only the events it has not seen yet, so a
#: ``%%stage`` cell costs the same at the 1,000th stage of a run as at the first. Bounded: a kernel
#: judges its current run; an evicted run is judged from all its events again.
_judges: dict[tuple, integrity.Judge] = {}
_MAX_JUDGES = 8


def judge(run: Run) -> list[str]:
    """Recompute the run's integrity warnings from its events and store them when they changed.
    Returns the stages that have just gone stale (empty when nothing changed)."""
    key = (os.getpid(), str(run.store.path), run.id)
    cached = _judges.get(key)
    new = run.store.events(run.id, after=cached.seq if cached else 0)
    if any(e["kind"] == "stage" and e["status"] == "running" for e in new):
        # An attempt still open (its kernel died mid-cell, or another is running): its status will
        # change, so it cannot be fed yet; judge everything from scratch this time.
        _judges.pop(key, None)
        found = integrity.check(run.store.events(run.id))
    else:
        if cached is None:
            if len(_judges) >= _MAX_JUDGES:
                _judges.clear()
            cached = _judges[key] = integrity.Judge()
        cached.add_all(new)
        found = cached.warnings()
    warnings = [w.to_dict() for w in found]
    previous = Writer(run.store).replace_warnings(run.id, warnings)
    if previous is None:
        return []
    before = {w["stage"] for w in previous if w["kind"] == "stale"}
    return [w["stage"] for w in warnings if w["kind"] == "stale" and w["stage"] not in before]
