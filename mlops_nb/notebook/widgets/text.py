"""The status widget's view of a run as plain text: ``%mlops status --text`` and the widget's
``text/plain`` (what a terminal or a notebook without widgets shows). Pure: no ipywidgets."""

from __future__ import annotations

from typing import Any

from mlops_nb.format import duration, number


def status_text(view: dict[str, Any]) -> str:
    """A compact summary of a :func:`~mlops_nb.tracking.views.run_view`: one line per stage that ran
    (state, attempts, duration of the latest), then the requirement's gate and the integrity warnings."""
    lines = [f"run {view['id']} ({view['name']}) of '{view['project']}': {view['status']}"]
    for stage in view["stages"]:
        if stage["state"] == "not run":
            continue
        took = duration(stage["duration"])
        tries = stage["attempt_count"]
        lines.append(f"  {stage['stage']:<12} {stage['state']:<7} attempt {tries}" + (f"  {took}" if took else ""))
    requirement = view["requirement"]
    if requirement:
        gate = view["gate"]
        verdict = "not evaluated yet" if gate is None else (
            f"{'passed' if gate['passed'] else 'FAILED'} ({number(gate['value'])})")
        rule = f"{requirement['metric']} {requirement['op']} {requirement['threshold']:g}"
        lines.append(f"  requirement {rule}: {verdict}")
    lines.extend(f"  warning: {w['message']}" for w in view["warnings"])
    return "\n".join(lines)
