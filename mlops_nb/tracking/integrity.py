"""Run integrity: judge a run's execution history. Pure: stdlib only, no I/O.

Every function takes the run's events as mappings (dicts or ``sqlite3.Row``) with the keys
``seq``, ``kind`` (``"stage"``, ``"cell"`` for a cell outside any stage, ``"restart"``), ``stage``,
``source_sha256``, ``source``, ``execution_count``, ``cell_id`` and ``status`` (``"ok"``/``"error"``).
They are put in ``seq`` order first.

The rules, one warning kind each:

``stale``
    A judged stage (``JUDGED``) is stale when its latest successful attempt ran before the latest
    attempt (ok or not) of an earlier ``UPSTREAM`` stage: re-run, or run for the first time.
    It is also stale when it ran after a kernel restart while an upstream stage that ran in this
    run has not run since that restart (the state it used came from nowhere recorded). Only
    direct comparisons count: ``features`` going stale does not by itself make ``model`` stale.
    ``requirements`` is a gate kept in the store and ``eda`` is exploratory, so neither makes
    anything stale and neither is judged; ``deployment`` and ``retraining`` are not judged.
``failed``
    A stage whose latest attempt ended in error.
``restart``
    Each kernel restart: stages before it used state that no longer exists.
``edited``
    Attempts are grouped by (stage, cell id). With a cell id (JupyterLab sends one) a group with
    more than one source hash was edited. Without one (nbclient sends none), two cells of one stage
    look exactly like one edited cell, so the heuristic is: attempts that ran back to back (no other
    stage between them) are taken to be different cells run in a row; the stage was edited when its
    latest such block ran a source that no earlier block ran. An edit followed at once by a re-run,
    with no other stage in between, is therefore missed; nothing staged used the old version.
``unstaged_cells``
    Cells outside any stage that ran between two stage cells, one warning per gap. Cells before
    the first stage or after the last are not warned about; ``unstaged_cells()`` returns them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_nb.stages import STAGE_INDEX

#: Stages whose new attempt makes the judged stages after them stale.
UPSTREAM = ("data", "features", "selection", "model", "tuning")
#: Stages that can be stale.
JUDGED = ("features", "selection", "model", "tuning", "validation")

_CELL_KEYS = ("seq", "execution_count", "cell_id", "source", "source_sha256", "status")


@dataclass(frozen=True)
class Warning:
    """One integrity finding: its ``kind``, the ``stage`` it is about, a short ``message``."""

    kind: str
    stage: str | None
    message: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "stage": self.stage, "message": self.message,
                "details": dict(self.details)}


def _rows(events: Iterable[Mapping]) -> list[dict[str, Any]]:
    return sorted((dict(event) for event in events), key=lambda event: event["seq"])


def _stage_rows(rows: list[dict]) -> list[dict]:
    return [row for row in rows if row.get("kind") == "stage" and row.get("stage")]


def _order(stage: str) -> int:
    return STAGE_INDEX.get(stage, len(STAGE_INDEX))


def latest_attempts(events: Iterable[Mapping]) -> dict[str, Mapping]:
    """The latest attempt (ok or error) of each stage that ran, in lifecycle order."""
    latest = {row["stage"]: row for row in _stage_rows(_rows(events))}
    return {stage: latest[stage] for stage in sorted(latest, key=_order)}


def _staleness(rows: list[dict]) -> dict[str, Warning]:
    first: dict[str, int] = {}
    latest: dict[str, int] = {}
    latest_ok: dict[str, int] = {}
    for row in _stage_rows(rows):
        first.setdefault(row["stage"], row["seq"])
        latest[row["stage"]] = row["seq"]
        if row.get("status") != "error":
            latest_ok[row["stage"]] = row["seq"]
    restarts = [row["seq"] for row in rows if row.get("kind") == "restart"]
    found = {}
    for stage in JUDGED:
        ran = latest_ok.get(stage)
        if ran is None:
            continue
        upstream = [u for u in UPSTREAM if _order(u) < _order(stage) and u in latest]
        newer = [u for u in upstream if latest[u] > ran]
        restart = max((seq for seq in restarts if seq < ran), default=None)
        behind = [u for u in upstream if restart is not None and latest[u] < restart]
        if newer:
            cause = newer[0]
            verb = "ran again" if first[cause] < ran else "first ran"
            message = f"{stage} is stale: {cause} {verb} after it (re-run {stage} and the stages after it)"
            details = {"reason": "order", "causes": newer, "seq": ran}
        elif behind:
            cause = behind[0]
            message = (f"{stage} is stale: it ran after a kernel restart but {cause} did not run "
                       f"again since (re-run {cause} and the stages after it)")
            details = {"reason": "restart", "causes": behind, "seq": ran, "restart_seq": restart}
        elif stale_upstream := [u for u in upstream if u in found]:
            # Staleness flows downstream: a model fitted on stale features is stale too.
            cause = stale_upstream[-1]
            message = f"{stage} is stale: it used {cause}, which is stale (re-run {cause} and the stages after it)"
            details = {"reason": "upstream", "causes": stale_upstream, "seq": ran}
        else:
            continue
        found[stage] = Warning("stale", stage, message, details)
    return found


def stale_stages(events: Iterable[Mapping]) -> set[str]:
    """The stages whose latest successful attempt used state that has since changed."""
    return set(_staleness(_rows(events)))


def _failures(rows: list[dict]) -> list[Warning]:
    return [
        Warning("failed", stage, f"{stage}'s latest attempt failed; fix the cell and run it again",
                {"seq": row["seq"], "execution_count": row.get("execution_count")})
        for stage, row in latest_attempts(rows).items() if row.get("status") == "error"
    ]


def _restarts(rows: list[dict]) -> list[Warning]:
    warnings, last = [], None
    for row in rows:
        if row.get("kind") == "stage":
            last = row.get("stage")
        elif row.get("kind") == "restart":
            message = (f"the kernel restarted after {last}; stages before the restart used state "
                       "that is gone" if last else "the kernel restarted before any stage ran")
            warnings.append(Warning("restart", last, message, {"seq": row["seq"], "after": last}))
    return warnings


def _edits(stages: list[dict]) -> list[Warning]:
    groups: dict[tuple, list[int]] = {}
    for i, row in enumerate(stages):
        groups.setdefault((row["stage"], row.get("cell_id")), []).append(i)
    warnings = []
    for (stage, cell_id), positions in groups.items():
        hashes = [stages[i].get("source_sha256") for i in positions]
        versions = {h for h in hashes if h}
        if cell_id is None:  # the latest block of back-to-back attempts against the ones before
            k = len(positions) - 1
            while k > 0 and positions[k - 1] == positions[k] - 1:
                k -= 1
            before = {h for h in hashes[:k] if h}
            edited = bool(before) and bool({h for h in hashes[k:] if h} - before)
        else:
            edited = len(versions) > 1
        if edited:
            message = f"{stage} was edited between attempts ({len(versions)} versions of its source)"
            details = {"cell_id": cell_id, "sha256": list(dict.fromkeys(h for h in hashes if h)),
                       "seqs": [stages[i]["seq"] for i in positions]}
            warnings.append(Warning("edited", stage, message, details))
    return sorted(warnings, key=lambda w: _order(w.stage))


def _gaps(rows: list[dict]) -> list[tuple[str | None, str | None, list[dict]]]:
    """Runs of unstaged cells as (stage before them, stage after them, cells)."""
    gaps, previous, cells = [], None, []
    for row in rows:
        if row.get("kind") == "cell":
            cells.append({key: row.get(key) for key in _CELL_KEYS})
        elif row.get("kind") == "stage":
            if cells:
                gaps.append((previous, row["stage"], cells))
            previous, cells = row["stage"], []
    if cells:
        gaps.append((previous, None, cells))
    return gaps


def unstaged_cells(events: Iterable[Mapping]) -> list[dict]:
    """Every cell that ran outside a stage, in order, with ``after_stage`` and ``before_stage``
    (the stages around it; None before the first stage or after the last)."""
    return [
        {**cell, "after_stage": after, "before_stage": before}
        for after, before, cells in _gaps(_rows(events))
        for cell in cells
    ]


def _unstaged(rows: list[dict]) -> list[Warning]:
    warnings = []
    for after, before, cells in _gaps(rows):
        if after is None or before is None:
            continue
        n = len(cells)
        message = (f"{n} cell{'s' if n != 1 else ''} outside any stage ran between {after} and "
                   f"{before} (move code that matters into a stage)")
        details = {"after": after, "before": before, "cells": cells}
        warnings.append(Warning("unstaged_cells", before, message, details))
    return warnings


def check(events: Iterable[Mapping]) -> list[Warning]:
    """Judge a run's events; return its warnings: stale, failed, restart, edited, unstaged_cells."""
    rows = _rows(events)
    return [
        *_staleness(rows).values(),
        *_failures(rows),
        *_restarts(rows),
        *_edits(_stage_rows(rows)),
        *_unstaged(rows),
    ]
