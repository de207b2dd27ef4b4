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

import bisect
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
    judge = Judge()
    judge.add_all(rows)
    return judge.staleness()


def stale_stages(events: Iterable[Mapping]) -> set[str]:
    """The stages whose latest successful attempt used state that has since changed."""
    return set(_staleness(_rows(events)))


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


def check(events: Iterable[Mapping]) -> list[Warning]:
    """Judge a run's events; return its warnings: stale, failed, restart, edited, unstaged_cells."""
    judge = Judge()
    judge.add_all(_rows(events))
    return judge.warnings()


class _EditGroup:
    """The attempts of one (stage, cell id): what :class:`Judge` needs to tell whether it was edited."""

    def __init__(self, order: int) -> None:
        self.order = order  # creation order: ties between groups of one stage keep it
        self.positions: list[int] = []
        self.seqs: list[int] = []
        self.versions: dict[str, None] = {}  # every source hash, first-seen order
        self.before: set[str] = set()  # hashes of the blocks before the latest (no cell id)
        self.block: set[str] = set()  # hashes of the latest back-to-back block (no cell id)

    def add(self, position: int, seq: int, sha: str | None) -> None:
        if self.positions and self.positions[-1] != position - 1:
            self.before |= self.block  # another stage ran in between: a new block starts
            self.block = set()
        self.positions.append(position)
        self.seqs.append(seq)
        if sha:
            self.versions.setdefault(sha)
            self.block.add(sha)

    def edited(self, cell_id: str | None) -> bool:
        if cell_id is None:
            return bool(self.before) and bool(self.block - self.before)
        return len(self.versions) > 1


class Judge:
    """The integrity rules over a run's events, fed one event at a time in ``seq`` order.

    It keeps what the rules need (each stage's first, latest and latest successful attempt, the
    restarts, the edit groups, the finished gaps of unstaged cells), so judging after one more
    event costs the same at the 1,000th stage cell of a run as at the first; :func:`check` feeds
    it a whole run. A stage attempt must be fed once it has its final status.
    """

    def __init__(self) -> None:
        self.seq = 0  # the last event fed
        self.first: dict[str, int] = {}
        self.latest: dict[str, dict] = {}
        self.latest_ok: dict[str, int] = {}
        self.restart_seqs: list[int] = []
        self.restart_warnings: list[Warning] = []
        self.last_stage: str | None = None
        self.positions = 0  # stage attempts fed: an attempt's position among them
        self.groups: dict[tuple, _EditGroup] = {}
        self.edited: set[tuple] = set()
        self.unstaged: list[Warning] = []
        self.after: str | None = None  # the stage before the pending unstaged cells
        self.cells: list[dict] = []

    def add_all(self, events: Iterable[Mapping]) -> None:
        for event in events:
            self.add(event)

    def add(self, event: Mapping) -> None:
        kind = event.get("kind")
        self.seq = event["seq"]
        if kind == "cell":
            self.cells.append({key: event.get(key) for key in _CELL_KEYS})
        elif kind == "restart":
            self.restart_seqs.append(event["seq"])
            last = self.last_stage
            message = (f"the kernel restarted after {last}; stages before the restart used state "
                       "that is gone" if last else "the kernel restarted before any stage ran")
            self.restart_warnings.append(Warning("restart", last, message, {"seq": event["seq"], "after": last}))
        elif kind == "stage":
            self.last_stage = event.get("stage")
            if self.cells and self.after is not None and event.get("stage") is not None:
                n = len(self.cells)
                message = (f"{n} cell{'s' if n != 1 else ''} outside any stage ran between {self.after} and "
                           f"{event['stage']} (move code that matters into a stage)")
                details = {"after": self.after, "before": event["stage"], "cells": self.cells}
                self.unstaged.append(Warning("unstaged_cells", event["stage"], message, details))
            self.after, self.cells = event["stage"], []
            if event.get("stage"):
                self._attempt(dict(event))

    def _attempt(self, row: dict) -> None:
        stage = row["stage"]
        self.first.setdefault(stage, row["seq"])
        self.latest[stage] = row
        if row.get("status") != "error":
            self.latest_ok[stage] = row["seq"]
        key = (stage, row.get("cell_id"))
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _EditGroup(len(self.groups))
        group.add(self.positions, row["seq"], row.get("source_sha256"))
        self.positions += 1
        if group.edited(key[1]):
            self.edited.add(key)
        else:
            self.edited.discard(key)

    def staleness(self) -> dict[str, Warning]:
        """The stale stages, in ``JUDGED`` order."""
        found: dict[str, Warning] = {}
        for stage in JUDGED:
            ran = self.latest_ok.get(stage)
            if ran is None:
                continue
            upstream = [u for u in UPSTREAM if _order(u) < _order(stage) and u in self.latest]
            newer = [u for u in upstream if self.latest[u]["seq"] > ran]
            before = bisect.bisect_left(self.restart_seqs, ran)
            restart = self.restart_seqs[before - 1] if before else None
            behind = [u for u in upstream if restart is not None and self.latest[u]["seq"] < restart]
            if newer:
                cause = newer[0]
                verb = "ran again" if self.first[cause] < ran else "first ran"
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

    def failures(self) -> list[Warning]:
        return [
            Warning("failed", stage, f"{stage}'s latest attempt failed; fix the cell and run it again",
                    {"seq": row["seq"], "execution_count": row.get("execution_count")})
            for stage, row in sorted(self.latest.items(), key=lambda item: _order(item[0]))
            if row.get("status") == "error"
        ]

    def edits(self) -> list[Warning]:
        warnings = []
        for key in sorted(self.edited, key=lambda k: (_order(k[0]), self.groups[k].order)):
            stage, cell_id = key
            group = self.groups[key]
            message = f"{stage} was edited between attempts ({len(group.versions)} versions of its source)"
            details = {"cell_id": cell_id, "sha256": list(group.versions), "seqs": list(group.seqs)}
            warnings.append(Warning("edited", stage, message, details))
        return warnings

    def warnings(self) -> list[Warning]:
        """Every warning of the events fed so far, as :func:`check` orders them."""
        return [*self.staleness().values(), *self.failures(), *self.restart_warnings, *self.edits(),
                *self.unstaged]
