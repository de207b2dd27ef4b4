"""The status widget's Serving section: a deployed model's traffic, latency and input drift over time
next to its retraining runs, drawn from ``run_view``'s ``monitoring``
(:func:`mlops_nb.tracking.monitoring.monitoring_summary`). Pure: stdlib only, like ``_render``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlops_nb.format import MINUTES_FORMAT, local_time, number
from mlops_nb.notebook.widgets._render import MUTED, PALETTE, badge, esc, section, table

#: The badge state of each drift verdict (colours of :data:`_render.STATE_COLOURS`).
VERDICT_STATE = {"drift": "failed", "warn": "stale", "ok": "passed", None: "pending"}


def serving_section(monitoring: dict[str, Any] | None) -> str:
    """The section's HTML; empty when the run's model was never served."""
    if not monitoring:
        return ""
    totals, latest = monitoring["totals"], monitoring["latest"]
    n = monitoring["minutes"]
    summary = (
        f'<div style="font-size:12.5px">{esc(monitoring["version_dir"] or "")} '
        f'<span style="color:{MUTED}">(model v{esc(monitoring["model_version"])})</span> · '
        f'<b>{totals["requests"]}</b> requests, {totals["rows"]} rows, '
        f'{totals["errors"] + totals["bad_requests"]} errors over {n} minute{"s" if n != 1 else ""} · '
        f'latest p50 <b>{ms(latest["latency_p50"])}</b> ms, p99 <b>{ms(latest["latency_p99"])}</b> ms</div>'
        f'<div style="font-size:12.5px;margin-top:4px">Input drift: '
        f'{badge(monitoring["headline"], VERDICT_STATE[monitoring["verdict"]])}'
        f'<span style="color:{MUTED}"> · {monitoring["drifted_minutes"]} of {n} minutes drifting</span></div>'
    )
    series = monitoring["series"]
    sparks = "".join(
        f'<div style="display:inline-block;margin:6px 18px 0 0;font-size:11px;color:{MUTED}">{esc(label)}<br>'
        f'{sparkline(values, colour)}</div>'
        for label, values, colour in (("requests / minute", series["requests"], PALETTE[0]),
                                      ("p99 latency (ms)", series["latency_p99"], PALETTE[1]),
                                      ("input columns drifting (share)", series["drift_share"], PALETTE[4])))
    rows = []
    for row in monitoring["rows"]:
        when = esc(local_time(row["start"], MINUTES_FORMAT))
        if row["kind"] == "serve":
            drift = "" if row["drift_share"] is None else f"{row['drift_share']:.0%} {', '.join(row['drifted'])}"
            verdict = badge(row["verdict"], VERDICT_STATE[row["verdict"]]) if row["verdict"] else ""
            rows.append([when, esc(row["version_dir"] or ""), str(row["requests"]), str(row["rows"]),
                         str(row["errors"]), ms(row["latency_p50"]), ms(row["latency_p99"]),
                         f"{verdict} {esc(drift.strip())}".strip()])
        else:
            drift = "" if row["dataset_drift"] is None else f" · dataset drift: {esc(row['dataset_drift'])}"
            rows.append([when, f"<b>retrain run {row['run_id']}</b>", "", "", "", "", "",
                         f"{badge(row['status'])} {esc(row['decision'])}{drift}"])
    grid = table(["from", "version", "requests", "rows", "errors", "p50 ms", "p99 ms", "input drift / retraining"],
                 rows, align=["left", "left", "right", "right", "right", "right", "right", "left"])
    packages = ", ".join(monitoring["packages"])
    return section("Serving", f'<div class="mnb-serving">{summary}{sparks}{grid}</div>',
                   note=f"per {esc(monitoring['bucket'])} · {esc(packages)}")


def ms(value: Any) -> str:
    """A latency in milliseconds with one decimal (as ``mlops-nb monitor`` and the sidebar write it)."""
    return "" if value is None else f"{value:.1f}"


def sparkline(values: Sequence[float | None], colour: str, *, width: int = 150, height: int = 26) -> str:
    """A small SVG line of ``values`` (missing values skipped), scaled from 0 to their maximum, with
    the maximum written beside it."""
    points = [(i, float(v)) for i, v in enumerate(values) if v is not None]
    if not points:
        return f'<span style="color:{MUTED}">–</span>'
    top = max(v for _, v in points) or 1.0
    step = width / max(len(values) - 1, 1)
    coords = " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in points)
    shape = (f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>' if len(points) > 1
             else f'<circle cx="{width / 2:.1f}" cy="{height - 2 - (points[0][1] / top) * (height - 4):.1f}" r="2" '
                  f'fill="{colour}"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="mnb-sparkline" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="vertical-align:middle">{shape}</svg> '
            f'<span>max {esc(number(top, 3))}</span>')
