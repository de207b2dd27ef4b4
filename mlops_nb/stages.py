"""The lifecycle vocabulary and requirement gates. Pure: no I/O, no heavy imports."""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

from mlops_nb.errors import RequirementError, StageError

STAGES: tuple[str, ...] = (
    "requirements",
    "data",
    "eda",
    "features",
    "selection",
    "model",
    "tuning",
    "validation",
    "deployment",
    "retraining",
)
"""Every stage, in lifecycle order."""

STAGE_INDEX = {name: i for i, name in enumerate(STAGES)}

#: Each stage's bit in ``run_reach.stages`` (m010), the set of stages a run ended ok at least once.
#: Stored in every store: a new stage takes the next free bit; a bit is never renumbered.
STAGE_BITS: dict[str, int] = {name: 1 << i for i, name in enumerate(STAGES)}

#: Stages whose recorded cells retraining replays, in order.
REPLAYED = ("data", "features", "selection")


#: ``%%stage NAME`` on a cell's first line (after blank lines).
STAGE_HEADER = re.compile(r"\A\s*%%stage[ \t]+([A-Za-z_]\w*)[ \t]*(?:\n|\Z)")

#: Metric names where smaller is better, when no requirement says which way.
_LOWER_IS_BETTER = re.compile(r"(loss|error|err|mse|mae|rmse|mape|logloss|latency|time|duration)", re.I)


def stage_of(raw_cell: str) -> str | None:
    """The stage named by a cell's ``%%stage NAME`` header, if it names a known stage."""
    match = STAGE_HEADER.match(raw_cell)
    if match and match.group(1) in STAGE_INDEX:
        return match.group(1)
    return None


def lower_is_better(metric: str, requirement_op: str | None = None) -> bool:
    """Whether a smaller ``metric`` is better: the requirement's direction when there is one
    (``rmse <= 3``), else the name (loss, error, mse, mae, rmse, time...)."""
    if requirement_op in ("<", "<="):
        return True
    if requirement_op in (">", ">=", "=", "=="):
        return False
    return bool(_LOWER_IS_BETTER.search(metric))


def check_stage(name: str) -> str:
    """Return ``name`` if it is a lifecycle stage, else raise :class:`StageError` listing them."""
    if name not in STAGE_INDEX:
        raise StageError(f"unknown stage {name!r}; use one of: {', '.join(STAGES)}")
    return name


OPERATORS = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "=": operator.eq,
}

_REQUIREMENT = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>>=|<=|==|=|>|<)\s*"
    r"(?P<value>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$"
)

REQUIREMENT_SYNTAX = "write it as METRIC OP VALUE, for example 'f1 >= 0.85' (OP is one of >= > <= < ==)"


@dataclass(frozen=True)
class Requirement:
    """A gate on one metric: ``metric op threshold``, e.g. ``f1 >= 0.85``."""

    metric: str
    op: str
    threshold: float

    def passes(self, value: float) -> bool:
        """True when ``value`` meets the requirement. NaN never passes."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return bool(OPERATORS[self.op](float(value), self.threshold))

    @property
    def higher_is_better(self) -> bool:
        return self.op in (">", ">=", "==", "=")

    def describe(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"

    def verdict_line(self, value: float) -> str:
        """The one line a validation cell prints, e.g. ``requirement f1 >= 0.85: passed (0.912)``."""
        word = "passed" if self.passes(value) else "FAILED"
        return f"requirement {self.describe()}: {word} ({value:.3f})"


def parse_requirement(text: str) -> Requirement:
    """Parse ``'f1 >= 0.85'`` into a :class:`Requirement`; raise :class:`RequirementError` with the syntax."""
    match = _REQUIREMENT.match(text or "")
    if not match:
        raise RequirementError(f"cannot read the requirement {text!r}: {REQUIREMENT_SYNTAX}")
    return Requirement(match["metric"], match["op"], float(match["value"]))
