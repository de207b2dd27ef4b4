"""What a retraining job records: drift, the candidate model version, the ``promoting`` marker, and
the run's outcome. ``mlops_nb.deploy.retrain`` calls these; it starts its run with
``tracking.start(..., kind="retraining", parent=NOTEBOOK_RUN_ID)`` and promotes through
:func:`mlops_nb.tracking.registry.promote`.

Each function is one transaction, so a job killed at any point leaves the store consistent: the
run then shows as ``interrupted`` and the next job reads :data:`PROMOTING_TAG` to finish an alias
move the killed one had started.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from mlops_nb.store import Store, open_store
from mlops_nb.store.writer import Writer

#: The tag a job sets to the version it is about to promote, before it switches the package.
PROMOTING_TAG = "promoting"


def _writer(store: str | os.PathLike | Store | None) -> Writer:
    return Writer(open_store(store))


def record_drift(
    run_id: int, columns: Iterable[Mapping[str, Any]], report: bytes, *,
    store: str | os.PathLike | Store | None = None,
) -> None:
    """Record a retraining run's drift: one row per column (``ColumnDrift.to_dict()``: ``column``,
    ``kind``, ``statistic``, ``value``, ``verdict``, ``details``) and the whole ``report`` (JSON
    bytes) as its ``drift.json`` artifact, together."""
    writer = _writer(store)
    stored = writer.put_bytes(report)
    with writer.transaction():
        writer.add_drift(run_id, columns)
        writer.add_artifact(run_id, "drift.json", stored, kind="drift")


def register_candidate(
    run_id: int, name: str, model: bytes, *, class_path: str | None, description: str | None,
    gate_passed: bool | None = None, store: str | os.PathLike | Store | None = None,
) -> int:
    """Store the candidate ``model`` (skops bytes) as an artifact of run ``run_id`` and register it
    as the next version of model ``name`` (``gate_passed``: the requirement the job checked),
    without moving any alias, and tag the run :data:`PROMOTING_TAG` with it, all in one transaction:
    a job killed before its package exists leaves a version the next job can find and remove.
    Returns the version number."""
    writer = _writer(store)
    stored = writer.put_bytes(model)
    with writer.transaction():
        artifact_id = writer.add_artifact(run_id, f"{name}.skops", stored, kind="model")
        version = writer.add_model_version(name, run_id=run_id, artifact_id=artifact_id, capture_id=None,
                                           class_path=class_path, description=description, gate_passed=gate_passed)
        writer.set_tags(run_id, {PROMOTING_TAG: str(version)})
    return version


def remove_candidate(name: str, version: int, *, store: str | os.PathLike | Store | None = None) -> None:
    """Remove version ``version`` of model ``name``, registered by a retraining job that died before
    its package version served (no alias ever named it)."""
    _writer(store).remove_model_version(name, version)


def mark_promoting(run_id: int, version: int, *, store: str | os.PathLike | Store | None = None) -> None:
    """Say, durably, that run ``run_id`` is about to make ``version`` the champion (read after a crash)."""
    _writer(store).set_tags(run_id, {PROMOTING_TAG: str(version)})


def finish_retraining(
    run_id: int, *, ok: bool, error: str | None = None, params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None, metrics: Mapping[str, float] | None = None,
    requirement: Mapping[str, Any] | None = None, gate: Mapping[str, Any] | None = None,
    store: str | os.PathLike | Store | None = None,
) -> None:
    """Record a retraining run's outcome and end it, all in one transaction: ``params`` (None values
    skipped), ``tags``, ``metrics`` (at step 0), then the end (``finished`` when ``ok``, else
    ``failed`` with ``error``). ``requirement`` (``metric``, ``op``, ``threshold``, ``target``) is the
    one the job judged its candidate by, ``gate`` that verdict (``metric``, ``op``, ``threshold``,
    ``value``, ``passed``), so the run shows them as a notebook run does. A failure anywhere inside
    records nothing of it."""
    writer = _writer(store)
    with writer.transaction():
        writer.log_params(run_id, {k: v for k, v in (params or {}).items() if v is not None})
        writer.set_tags(run_id, dict(tags or {}))
        writer.log_metrics([(run_id, k, 0, float(v)) for k, v in (metrics or {}).items()])
        if requirement:
            writer.set_requirement(run_id, metric=requirement["metric"], op=requirement["op"],
                                   threshold=float(requirement["threshold"]), target=requirement.get("target"),
                                   notes="the requirement of the package this run retrained")
        if gate:
            writer.add_gate(run_id, gate)
        writer.end_run(run_id, "finished" if ok else "failed", None if ok else error)
