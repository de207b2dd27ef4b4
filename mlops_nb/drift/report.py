"""The result types of a drift check: one :class:`ColumnDrift` per column, gathered in a :class:`DriftReport`.

Both round-trip through JSON (``to_dict`` / ``from_dict``): retraining writes a report into the
run's ``drift.json`` and every front end reads it back from there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np


@dataclass
class ColumnDrift:
    """The drift verdict of one column.

    ``statistic`` names the statistic that decided the verdict (``"psi"``, ``"wasserstein_norm"``,
    ``"jensen_shannon"``, ``"ks_p_value"``, ``"chi2_p_value"``, ``"missing_share"`` or ``"none"``
    when nothing could be computed) and ``value`` is its value. ``verdict`` is ``"ok"``, ``"warn"``
    or ``"drift"``. ``details`` holds every statistic computed, the thresholds' inputs, and a
    one-line human ``reason``.
    """

    column: str
    kind: str
    statistic: str
    value: float | None
    verdict: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (numpy scalars become Python numbers, non-finite floats become ``None``)."""
        # _json_safe copies as it converts, so the fields are handed over as they are: asdict's deep
        # copy of ``details`` first (a dozen lists per column) made this ~3x slower
        return _json_safe({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnDrift:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            **{k: data[k] for k in ("column", "kind", "statistic", "value", "verdict")},
            details=dict(data.get("details", {})),
        )


@dataclass
class DriftReport:
    """Drift of a whole frame: one :class:`ColumnDrift` per column compared.

    ``drifted`` lists the columns whose verdict is ``"drift"``, ``share`` is their fraction of the
    columns compared, and ``dataset_drift`` is ``share >= config["dataset_share"]`` (with at least
    one column compared). ``config`` records the thresholds used.
    """

    columns: list[ColumnDrift]
    drifted: list[str]
    share: float
    dataset_drift: bool
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; ``DriftReport.from_dict(json.loads(json.dumps(r.to_dict())))`` round-trips."""
        return {
            "columns": [c.to_dict() for c in self.columns],
            "drifted": list(self.drifted),
            "share": float(self.share),
            "dataset_drift": bool(self.dataset_drift),
            "config": _json_safe(dict(self.config)),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            columns=[ColumnDrift.from_dict(c) for c in data["columns"]],
            drifted=list(data["drifted"]),
            share=float(data["share"]),
            dataset_drift=bool(data["dataset_drift"]),
            config=dict(data.get("config", {})),
        )

    def column(self, name: str) -> ColumnDrift:
        """The result for column ``name`` (``KeyError`` when it was not compared)."""
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def summary(self, max_names: int = 10) -> str:
        """One line for logs, e.g. ``drift in 3 of 20 columns (15%): age, income, city``.

        Columns with a ``warn`` verdict follow after ``; warn:``, and ``; dataset drift`` ends the
        line when the dataset as a whole drifted. At most ``max_names`` names are listed per group.
        """
        total = len(self.columns)
        line = f"drift in {len(self.drifted)} of {total} columns ({self.share:.0%})"
        if self.drifted:
            line += ": " + _names(self.drifted, max_names)
        warned = [c.column for c in self.columns if c.verdict == "warn"]
        if warned:
            line += "; warn: " + _names(warned, max_names)
        if self.dataset_drift:
            line += "; dataset drift"
        return line


def _names(names: Sequence[str], limit: int) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json_safe(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)
