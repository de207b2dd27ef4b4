"""``%mlops check``: the judgement ``mlops-nb check`` makes, for the current run, as a widget; the
run is not executed again. It renders :func:`mlops_nb.tracking.judgement.judge`'s result: the
outcome, each problem, the stages, the gate, the comparison's metrics, changed data and sources,
integrity warnings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from mlops_nb.format import duration, number
from mlops_nb.notebook.widgets._render import FONT, MUTED, badge, esc, section, table, unified_diff_html


def check_html(judgement: Mapping[str, Any]) -> str:
    """The judgement as HTML."""
    j = judgement
    run = j["run"] or {}
    outcome = badge(f"{j['outcome']} (exit {j['exit']})", "passed" if j["outcome"] == "passed" else "failed")
    parts = [f'<div style="font-size:14px;font-weight:600">Check of run {esc(run.get("id"))} '
             f'{esc(run.get("name"))} {outcome}</div>']
    if j["problems"]:
        parts.append("<ul style='margin:4px 0'>" + "".join(
            f"<li><b>{esc(p['kind'])}</b>: {esc(p['message'])}</li>" for p in j["problems"]) + "</ul>")
    stages = [[esc(s["stage"]), badge(s["status"], s["status"] if s["status"] != "timed out" else "error"),
               esc(s["attempts"]), esc(duration(s["duration"]))] for s in j["stages"]]
    parts.append(section("Stages", table(["stage", "status", "attempts", "duration"], stages)))
    gate = j["gate"]
    if gate is None:
        gate_text = "no requirement stated"
    else:
        word = "not measured" if gate["passed"] is None else "passed" if gate["passed"] else "failed"
        gate_text = f"{esc(gate['requirement'])}: {badge(word, word if word != 'not measured' else 'failed')}"
        if gate["value"] is not None:
            gate_text += f" with {esc(number(gate['value']))}"
    parts.append(section("Gate", f"<div>{gate_text}</div>"))
    comparison = j["comparison"] or {}
    other = comparison.get("label") or "comparison"
    rows = [[esc(m["key"]), esc(number(m["run"])), esc(number(m["other"])),
             esc("" if m["difference"] is None else f"{m['difference']:+.4g}"),
             esc({"run": "this run", "other": other, "same": "same"}.get(m["better"] or "", ""))] for m in j["metrics"]]
    body = f"<div>{esc(comparison.get('verdict') or '')}</div>"
    if rows:
        body += table(["metric", "this run", esc(other), "difference", "better"], rows)
    parts.append(section(f"Against {esc(other)}", body))
    if j["params"]:
        parts.append(section("Params that differ", table(
            ["param", "this run", esc(other)], [[esc(p["key"]), esc(p["run"]), esc(p["other"])] for p in j["params"]])))
    if j["data"]:
        parts.append(section("Data that changed", table(
            ["frame", "change", "rows", "columns added", "columns removed"],
            [[esc(f["frame"]), esc(f["change"]), esc(f"{number(f['other_rows'])} → {number(f['rows'])}"),
              esc(", ".join(f["columns_added"])), esc(", ".join(f["columns_removed"]))] for f in j["data"]])))
    for source in j["sources"]:
        parts.append(section(f"Source of {esc(source['stage'])} changed", unified_diff_html(source["diff"])))
    warnings = "".join(f"<li>{'❌' if w['blocking'] else '⚠️'} {esc(w['message'])}</li>" for w in j["warnings"])
    parts.append(section("Integrity", f"<ul style='margin:4px 0'>{warnings}</ul>" if warnings
                         else f"<div style='color:{MUTED}'>no warnings</div>"))
    return f'<div style="{FONT}">{"".join(parts)}</div>'


class CheckWidget(widgets.HTML):
    """The judgement of one run; ``judgement`` holds the data it shows."""

    def __init__(self, judgement: Mapping[str, Any]) -> None:
        super().__init__(value=check_html(judgement))
        self.judgement = dict(judgement)
