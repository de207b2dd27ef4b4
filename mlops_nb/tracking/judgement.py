"""The judgement of a notebook run for continuous integration: did every stage run, did the
requirement gate pass, is the run's integrity sound, is it not worse than what it is compared with.
Pure: it takes check views (:func:`mlops_nb.tracking.comparison.check_view`: the one view of a run
plus its events and data frames) and returns plain JSON-safe data that ``mlops-nb check``'s reports
and the ``%mlops check`` widget render.

The outcome is the first problem found, in the order of :data:`OUTCOMES`; every problem is listed.
"Worse" uses the margin of retraining settings as a tolerance: the run is worse when its primary
metric (the requirement's) trails the comparison's by more than the margin, in the metric's
direction; retraining computes the gain the same way (``candidate - champion``, or the reverse
for a metric where lower is better).
"""

from __future__ import annotations

import ast
import difflib
import json
import math
from collections.abc import Mapping
from typing import Any

from mlops_nb.stages import STAGE_INDEX, STAGES, lower_is_better
from mlops_nb.tracking.integrity import unstaged_cells

#: Outcome -> exit status of ``mlops-nb check``, in the order problems are reported (the first wins).
OUTCOMES: dict[str, int] = {
    "timed out": 45,
    "cell failed": 40,
    "no requirement": 44,
    "gate failed": 41,
    "integrity": 43,
    "worse": 42,
    "passed": 0,
}

#: Lines kept of one stage's unified diff in a report.
DIFF_LINES = 30
#: The stages whose frames are compared (their data fingerprints).
FRAME_STAGES = ("data", "features", "selection")


def judge(
    current: Mapping[str, Any] | None,
    against: Mapping[str, Any] | None = None,
    *,
    margin: float,
    execution: Mapping[str, Any] | None = None,
    against_label: str | None = None,
    no_comparison: str | None = None,
) -> dict[str, Any]:
    """Judge check view ``current`` against check view ``against`` (or nothing).

    ``execution`` says what running the notebook did, when it was run: ``notebook_stages`` (the
    stage cells in notebook order), ``failed_cell`` (``index``, ``stage``, ``error``: the error's last
    line), ``timed_out`` and ``timeout``. ``against_label`` names the comparison in reports
    (``champion churn v2 (run 4)``); ``no_comparison`` says why there is none.
    """
    execution = dict(execution or {})
    problems: list[dict[str, str]] = []
    stages = _stages(current, execution)
    failed = execution.get("failed_cell")
    if execution.get("timed_out"):
        where = _cell_words(failed)
        problems.append({"kind": "timed out", "message": f"the notebook timed out after {execution.get('timeout')} s"
                                                         f"{where}"})
    elif failed:
        problems.append({"kind": "cell failed", "message": f"cell {failed['index'] + 1}{_stage_words(failed)} failed: "
                                                           f"{failed['error']}"})
    elif current is not None:
        for stage in stages:
            if stage["status"] == "error":
                problems.append({"kind": "cell failed",
                                 "message": f"the {stage['stage']} stage failed: {stage['error']}"})
    if current is None:
        if not problems:
            problems.append({"kind": "cell failed", "message": "the notebook recorded no run"})
        return _result(current, problems, stages, None, None, [], [], [], [], [], margin, execution)
    gate = _gate(current)
    if gate is None:
        problems.append({"kind": "no requirement", "message": "the run states no requirement; add "
                         "`%mlops require METRIC >= VALUE --target COLUMN` before the validation stage"})
    elif gate["passed"] is None:
        problems.append({"kind": "gate failed", "message": f"no validation stage measured {gate['metric']}"})
    elif not gate["passed"]:
        problems.append({"kind": "gate failed", "message": f"requirement {gate['requirement']}: got "
                                                           f"{_text(gate['value'])}"})
    warnings = _warnings(current)
    for warning in warnings:
        if warning["blocking"]:
            problems.append({"kind": "integrity", "message": warning["message"]})
    comparison = _comparison(current, against, gate, margin, against_label, no_comparison)
    if comparison.get("worse"):
        problems.append({"kind": "worse", "message": comparison["verdict"]})
    return _result(current, problems, stages, gate, comparison, _metrics(current, against, gate),
                   _params(current, against), _frames(current, against), _sources(current, against), warnings,
                   margin, execution)


def _result(current: Mapping[str, Any] | None, problems: list[dict[str, str]], stages: list[dict[str, Any]],
            gate: dict | None, comparison: dict | None, metrics: list, params: list, data: list, sources: list,
            warnings: list, margin: float, execution: dict[str, Any]) -> dict[str, Any]:
    order = list(OUTCOMES)
    problems.sort(key=lambda p: order.index(p["kind"]))
    outcome = problems[0]["kind"] if problems else "passed"
    run = None if current is None else {
        key: current.get(key) for key in ("id", "name", "project", "status", "notebook")}
    return {
        "outcome": outcome, "exit": OUTCOMES[outcome], "problems": problems, "run": run,
        "store": None if current is None else current.get("store"), "stages": stages, "gate": gate,
        "comparison": comparison, "metrics": metrics, "params": params, "data": data, "sources": sources,
        "warnings": warnings, "margin": margin, "execution": execution,
        "notebook": None if current is None else current.get("notebook"),
    }


def _cell_words(failed: Mapping[str, Any] | None) -> str:
    return "" if not failed else f" in cell {failed['index'] + 1}{_stage_words(failed)}"


def _stage_words(failed: Mapping[str, Any]) -> str:
    return f" (stage {failed['stage']})" if failed.get("stage") else " (outside any stage)"


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "nothing" if value is None else str(value)


# -- stages and gate ------------------------------------------------------------------------------


def _stages(current: Mapping[str, Any] | None, execution: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every stage the run attempted or the notebook has, in lifecycle order, with its status."""
    by_name = {s["stage"]: s for s in (current or {}).get("stages", []) if s["attempt_count"]}
    names = set(by_name) | set(execution.get("notebook_stages") or [])
    failed = execution.get("failed_cell") or {}
    out = []
    for name in sorted(names, key=lambda n: (STAGE_INDEX.get(n, len(STAGES)), n)):
        stage = by_name.get(name)
        status = "not run" if stage is None else stage["state"]
        if execution.get("timed_out") and failed.get("stage") == name:
            status = "timed out"
        out.append({
            "stage": name, "status": status, "passed": status == "ok",
            "attempts": 0 if stage is None else stage["attempt_count"],
            "duration": None if stage is None else stage["duration"],
            "error": None if stage is None else stage["error"],
        })
    return out


def _gate(current: Mapping[str, Any]) -> dict[str, Any] | None:
    requirement = current.get("requirement")
    if requirement is None:
        return None
    text = f"{requirement['metric']} {requirement['op']} {_text(float(requirement['threshold']))}"
    gate = current.get("gate")
    return {"requirement": text, "metric": requirement["metric"], "op": requirement["op"],
            "threshold": requirement["threshold"], "value": None if gate is None else gate["value"],
            "passed": None if gate is None else bool(gate["passed"])}


# -- integrity ------------------------------------------------------------------------------------


def _warnings(current: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The run's integrity warnings; stale stages and outside cells that rebound a name a later
    stage read are ``blocking``. A failed stage is the cell failure's to report."""
    touched = _touching_cells(current.get("events") or [])
    out = []
    for warning in current.get("warnings") or []:
        kind, blocking, message = warning["kind"], False, warning["message"]
        if kind == "stale":
            blocking = True
        elif kind == "unstaged_cells":
            names = touched.get(warning["stage"], [])
            blocking = bool(names)
            if names:
                message += f"; they changed {', '.join(names)}, which later stages used"
        out.append({"kind": kind, "stage": warning["stage"], "message": message, "blocking": blocking})
    return out


def _touching_cells(events: list[Mapping[str, Any]]) -> dict[str, list[str]]:
    """For each stage after a gap of outside cells: the names those cells bound that a stage run
    after them reads. A cell that cannot be parsed counts as changing everything it could."""
    stage_events = [e for e in events if e.get("kind") == "stage"]
    found: dict[str, set[str]] = {}
    for cell in unstaged_cells(events):
        if cell["after_stage"] is None or cell["before_stage"] is None:
            continue
        bound = _bound_names(cell.get("source") or "")
        later = [e for e in stage_events if e["seq"] > cell["seq"]]
        read: set[str] = set()
        for event in later:
            read |= _read_names(_body(event.get("source") or ""))
        hit = {"(unparsed cell)"} if bound is None else bound & read
        if hit:
            found.setdefault(cell["before_stage"], set()).update(hit)
    return {stage: sorted(names) for stage, names in found.items()}


def _body(source: str) -> str:
    """Python of a cell: without its ``%%stage`` header, magics and shell lines."""
    lines = source.splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


def _tree(source: str) -> ast.Module | None:
    try:
        return ast.parse(_body(source))
    except SyntaxError:
        return None


def _bound_names(source: str) -> set[str] | None:
    """Names a cell binds or mutates in place (``X = ...``, ``X[c] = ...``, ``X.a = ...``, ``del X``)."""
    tree = _tree(source)
    if tree is None:
        return None
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            base = node.value
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):
                names.add(base.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _read_names(source: str) -> set[str]:
    tree = _tree(source)
    if tree is None:
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


# -- against the comparison ---------------------------------------------------------------------


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _other_metric(against: Mapping[str, Any], metric: str) -> Any:
    """The comparison's value of ``metric``; a retraining run's own is ``candidate_<metric>``."""
    metrics = against.get("metrics") or {}
    return metrics.get(metric, metrics.get(f"candidate_{metric}"))


def _comparison(current: Mapping[str, Any], against: Mapping[str, Any] | None, gate: dict | None, margin: float,
                label: str | None, no_comparison: str | None) -> dict[str, Any]:
    if against is None:
        return {"label": None, "run_id": None, "verdict": no_comparison or "no comparison", "worse": False}
    out: dict[str, Any] = {"label": label or f"run {against['id']}", "run_id": against["id"], "worse": False}
    if gate is None:
        out["verdict"] = "not compared: the run states no requirement, so no primary metric"
        return out
    metric, higher = gate["metric"], not lower_is_better(gate["metric"], gate["op"])
    value, other = (current.get("metrics") or {}).get(metric), _other_metric(against, metric)
    out.update(metric=metric, higher_is_better=higher, margin=margin, value=value, other=other)
    if not (_finite(value) and _finite(other)):
        out["verdict"] = f"not compared: {metric} is missing from {'this run' if not _finite(value) else out['label']}"
        return out
    gain = (value - other) if higher else (other - value)
    out["gain"] = gain
    out["worse"] = gain < -margin
    how = "worse than" if out["worse"] else "not worse than"
    out["verdict"] = (f"{metric} {_text(float(value))} is {how} {out['label']}'s {_text(float(other))}: "
                      f"a gain of {gain:+.4f} against a margin of {margin:g}")
    return out


def _metrics(current: Mapping[str, Any], against: Mapping[str, Any] | None, gate: dict | None) -> list[dict]:
    mine = current.get("metrics") or {}
    theirs = (against or {}).get("metrics") or {}
    out = []
    for key in sorted(set(mine) | set(theirs)):
        value, other = mine.get(key), theirs.get(key)
        op = gate["op"] if gate is not None and gate["metric"] == key else None
        row = {"key": key, "run": value, "other": other, "difference": None, "better": None,
               "lower_is_better": lower_is_better(key, op)}
        if _finite(value) and _finite(other):
            row["difference"] = value - other
            if value != other:
                row["better"] = "run" if (value < other) == row["lower_is_better"] else "other"
            else:
                row["better"] = "same"
        out.append(row)
    return out


def _params(current: Mapping[str, Any], against: Mapping[str, Any] | None) -> list[dict]:
    if against is None:
        return []
    mine, theirs = current.get("params") or {}, against.get("params") or {}
    return [{"key": key, "run": mine.get(key), "other": theirs.get(key)}
            for key in sorted(set(mine) | set(theirs))
            if json.dumps(mine.get(key), sort_keys=True) != json.dumps(theirs.get(key), sort_keys=True)]


def _frames(current: Mapping[str, Any], against: Mapping[str, Any] | None) -> list[dict]:
    if against is None:
        return []

    def keyed(view: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        return {f"{f['stage']}: {f['name']}": f for f in view.get("frames") or []}

    mine, theirs = keyed(current), keyed(against)
    out = []
    for key in sorted(set(mine) | set(theirs), key=lambda k: (STAGE_INDEX.get(k.split(":")[0], 99), k)):
        new, old = mine.get(key), theirs.get(key)
        if new is not None and old is not None and new["fingerprint"] == old["fingerprint"]:
            continue
        new_columns = [str(c) for c in (new or {}).get("columns") or []]
        old_columns = [str(c) for c in (old or {}).get("columns") or []]
        out.append({
            "frame": key, "change": "added" if old is None else "removed" if new is None else "changed",
            "rows": None if new is None else new["rows"], "other_rows": None if old is None else old["rows"],
            "fingerprint": None if new is None else new["fingerprint"],
            "other_fingerprint": None if old is None else old["fingerprint"],
            "columns_added": [c for c in new_columns if c not in old_columns] if old is not None else [],
            "columns_removed": [c for c in old_columns if c not in new_columns] if new is not None else [],
        })
    return out


def _latest_sources(view: Mapping[str, Any]) -> dict[str, str]:
    return {e["stage"]: e.get("source") or "" for e in view.get("events") or [] if e.get("kind") == "stage"}


def _sources(current: Mapping[str, Any], against: Mapping[str, Any] | None) -> list[dict]:
    if against is None:
        return []
    mine, theirs = _latest_sources(current), _latest_sources(against)
    label = f"run {against['id']}"
    out = []
    for stage in sorted(set(mine) | set(theirs), key=lambda s: (STAGE_INDEX.get(s, len(STAGES)), s)):
        new, old = mine.get(stage), theirs.get(stage)
        if new == old:
            continue
        lines = list(difflib.unified_diff((old or "").splitlines(), (new or "").splitlines(),
                                          fromfile=f"{label} ({stage})" if old is not None else f"{label} (not run)",
                                          tofile=f"this run ({stage})" if new is not None else "this run (not run)",
                                          n=1, lineterm=""))
        cut = len(lines) - DIFF_LINES
        if cut > 0:
            lines = [*lines[:DIFF_LINES], f"... {cut} more line{'s' if cut != 1 else ''}"]
        out.append({"stage": stage, "diff": "\n".join(lines)})
    return out
