"""The status widget's view of a run as plain text: ``%mlops status --text`` and the widget's
``text/plain`` (what a terminal or a notebook without widgets shows). Pure: no ipywidgets."""

from __future__ import annotations

from typing import Any

from mlops_nb.format import MINUTES_FORMAT, duration, local_time, number

#: Eight heights of a text sparkline.
_BLOCKS = "▁▂▃▄▅▆▇█"


def status_text(view: dict[str, Any]) -> str:
    """A compact summary of a :func:`~mlops_nb.tracking.views.run_view`: one line per stage that ran
    (state, attempts, duration of the latest), then the requirement's gate and the integrity warnings,
    then, once its model is served, the Serving section of the widget (:func:`serving_lines`)."""
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
    lines.extend(serving_lines(view.get("monitoring")))
    return "\n".join(lines)


def serving_lines(monitoring: dict[str, Any] | None) -> list[str]:
    """The widget's Serving section as text: totals and latest latency, the input-drift verdict, a
    sparkline of requests per minute, then one line per bucket and per retraining run in time order."""
    if not monitoring:
        return []
    totals, latest, n = monitoring["totals"], monitoring["latest"], monitoring["minutes"]
    lines = [
        f"  serving {monitoring['version_dir'] or ''} (model v{monitoring['model_version']}): "
        f"{totals['requests']} requests, {totals['rows']} rows, {totals['errors'] + totals['bad_requests']} errors "
        f"over {n} minute{'s' if n != 1 else ''}; latest p50 {_ms(latest['latency_p50'])} ms, "
        f"p99 {_ms(latest['latency_p99'])} ms",
        f"  input drift: {monitoring['headline']}; {monitoring['drifted_minutes']} of {n} minutes drifting",
        f"  requests / minute {sparkline(monitoring['series']['requests'])}",
        f"  per {monitoring['bucket']}:",
    ]
    for row in monitoring["rows"]:
        when = local_time(row["start"], MINUTES_FORMAT)
        if row["kind"] == "serve":
            drift = "" if row["drift_share"] is None else (
                f"  {row['verdict']}: {row['drift_share']:.0%} {', '.join(row['drifted'])}".rstrip())
            lines.append(f"    {when}  {row['version_dir'] or '':<6} {row['requests']:>6} req {row['rows']:>7} rows "
                         f"{row['errors']:>4} err  p50 {_ms(row['latency_p50']):>6} ms  p99 "
                         f"{_ms(row['latency_p99']):>6} ms{drift}")
        else:
            drift = "" if row["dataset_drift"] is None else f", dataset drift: {row['dataset_drift']}"
            lines.append(f"    {when}  retrain run {row['run_id']} {row['status']}: {row['decision']}{drift}")
    return lines


def sparkline(values: list[float | None]) -> str:
    """``values`` as block characters from 0 to their maximum (a space for a missing value)."""
    top = max((v for v in values if v is not None), default=0) or 1
    return "".join(" " if v is None else _BLOCKS[min(7, int(v / top * 7.999))] for v in values)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
