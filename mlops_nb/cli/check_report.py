"""The reports of ``mlops-nb check``, each rendered from one judgement
(:func:`mlops_nb.tracking.judgement.judge`): Markdown for a pull-request comment, JUnit XML for CI
systems, JSON for scripts. Deterministic: the same judgement gives the same bytes; only durations
(times) change from one execution to the next.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from mlops_nb.format import duration, json_safe, number


def _value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value, sort_keys=True)
    return number(value)


def _signed(value: Any) -> str:
    return "" if value is None else f"{value:+.4g}"


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def headline(judgement: Mapping[str, Any]) -> str:
    """``passed`` or ``gate failed: requirement f1 >= 0.9: got 0.81``, the one line a terminal shows."""
    problems = judgement["problems"]
    return "passed" if not problems else f"{problems[0]['kind']}: {problems[0]['message']}"


def markdown(judgement: Mapping[str, Any]) -> str:
    """The report as Markdown, every section present (empty ones say so)."""
    j = judgement
    run = j["run"]
    comparison = j["comparison"] or {}
    other = comparison.get("label") or "comparison"
    compared = comparison.get("run_id") is not None
    mark = "✅" if j["outcome"] == "passed" else "❌"
    where = "no run was recorded" if run is None else f"run {run['id']} `{run['name']}` of project `{run['project']}`"
    elapsed = (j.get("execution") or {}).get("elapsed")
    ran = "" if elapsed is None else f", ran in {duration(elapsed)}"
    lines = [f"## mlops-nb check: {mark} {j['outcome']} (exit {j['exit']})", "",
             f"Notebook `{j.get('notebook') or (run or {}).get('notebook')}`: {where}{ran}.", "", "### Problems", ""]
    lines += [f"- **{p['kind']}**: {p['message']}" for p in j["problems"]] or ["None."]
    lines += ["", "### Stages", "", *_stages_table(j["stages"]), "", "### Gate", "", _gate_line(j["gate"]),
              "", f"### Against {other}", "", comparison.get("verdict") or "Not compared.", "",
              *_metrics_table(j["metrics"], other), "", "### Params that differ", ""]
    lines += _params_table(j["params"], other) if j["params"] else ["None." if compared else "Not compared."]
    lines += ["", "### Data that changed", ""]
    lines += _data_table(j["data"]) if j["data"] else ["None." if compared else "Not compared."]
    lines += ["", "### Stage sources that changed", ""]
    for source in j["sources"]:
        lines += [f"<details><summary>{source['stage']}</summary>", "", "```diff", source["diff"], "```", "",
                  "</details>", ""]
    if j["sources"]:
        lines.pop()
    else:
        lines.append("None." if compared else "Not compared.")
    lines += ["", "### Integrity", ""]
    lines += [f"- {'❌' if w['blocking'] else '⚠️'} {w['kind']}: {w['message']}" for w in j["warnings"]]
    if not j["warnings"]:
        lines.append("No warnings.")
    lines += ["", "---", "", f"Store `{j['store'] or '–'}`, run {run['id'] if run else '–'}.", ""]
    return "\n".join(lines)


def _stages_table(stages: list[Mapping[str, Any]]) -> list[str]:
    lines = ["| stage | status | attempts | duration |", "|---|---|---|---|"]
    for stage in stages:
        status = stage["status"] + ("" if stage["passed"] else " ❌")
        error = f": {stage['error']}" if stage["error"] and not stage["passed"] else ""
        lines.append(f"| {stage['stage']} | {_cell(status + error)} | {stage['attempts']} | "
                     f"{duration(stage['duration']) or '–'} |")
    return lines


def _gate_line(gate: Mapping[str, Any] | None) -> str:
    if gate is None:
        return "No requirement stated (`%mlops require METRIC >= VALUE`)."
    if gate["passed"] is None:
        return f"Requirement `{gate['requirement']}`: **not measured** (no validation stage produced it)."
    word = "passed" if gate["passed"] else "failed"
    return f"Requirement `{gate['requirement']}`: **{word}** with {number(gate['value'])}."


def _params_table(params: list[Mapping[str, Any]], other: str) -> list[str]:
    lines = [f"| param | this run | {_cell(other)} |", "|---|---|---|"]
    return lines + [f"| {_cell(p['key'])} | {_cell(_value(p['run']))} | {_cell(_value(p['other']))} |" for p in params]


def _data_table(frames: list[Mapping[str, Any]]) -> list[str]:
    lines = ["| frame | change | rows | columns added | columns removed | fingerprint |", "|---|---|---|---|---|---|"]
    for f in frames:
        rows = f"{_value(f['other_rows'])} → {_value(f['rows'])}"
        prints = f"{(f['other_fingerprint'] or '–')[:12]} → {(f['fingerprint'] or '–')[:12]}"
        lines.append(f"| {_cell(f['frame'])} | {f['change']} | {rows} | {_cell(', '.join(f['columns_added']))} | "
                     f"{_cell(', '.join(f['columns_removed']))} | {prints} |")
    return lines


def _metrics_table(metrics: list[Mapping[str, Any]], other: str) -> list[str]:
    if not metrics:
        return ["No metrics."]
    lines = [f"| metric | this run | {_cell(other)} | difference | better |", "|---|---|---|---|---|"]
    for m in metrics:
        arrow = "↓" if m["lower_is_better"] else "↑"
        better = {"run": "this run", "other": "comparison", "same": "same"}.get(m["better"] or "", "–")
        lines.append(f"| {_cell(m['key'])} {arrow} | {_value(m['run'])} | {_value(m['other'])} | "
                     f"{_signed(m['difference']) or '–'} | {better} |")
    return lines


def junit(judgement: Mapping[str, Any]) -> bytes:
    """The report as JUnit XML: one test case per stage, one for the gate, one for integrity and one
    for the comparison; a failing one carries the problem as its failure message."""
    j = judgement
    cases = []
    for stage in j["stages"]:
        failure = None if stage["passed"] else f"{stage['stage']} {stage['status']}" + (
            f": {stage['error']}" if stage["error"] else "")
        cases.append(("stage", stage["stage"], stage["duration"], failure))
    gate = j["gate"]
    if gate is None:
        cases.append(("gate", "requirement", None, "no requirement stated"))
    else:
        failure = None if gate["passed"] else (
            f"requirement {gate['requirement']}: got {'nothing' if gate['value'] is None else number(gate['value'])}")
        cases.append(("gate", gate["requirement"], None, failure))
    blocking = [w["message"] for w in j["warnings"] if w["blocking"]]
    cases.append(("integrity", "integrity", None, "; ".join(blocking) or None))
    comparison = j["comparison"] or {}
    cases.append(("comparison", comparison.get("label") or "comparison", None,
                  comparison["verdict"] if comparison.get("worse") else None))
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name=f"mlops-nb check {j.get('notebook') or ''}".strip(),
                          tests=str(len(cases)), failures=str(sum(1 for c in cases if c[3])), errors="0")
    for classname, name, seconds, failure in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=name,
                             time=f"{seconds or 0:.3f}")
        if failure:
            ET.SubElement(case, "failure", message=failure.splitlines()[0][:500]).text = failure
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def json_text(judgement: Mapping[str, Any]) -> str:
    """The judgement itself as JSON (keys sorted), for scripts."""
    return json.dumps(json_safe(dict(judgement)), indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"
