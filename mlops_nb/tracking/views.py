"""The one view of a run that every front end renders: the status widget, ``%mlops status --text``,
``mlops-nb show`` (text and JSON), the server's ``runs/<id>`` route and so the JupyterLab sidebar.

Deriving a stage's state here, once, is what keeps them agreeing: a stage whose inputs changed after
it ran is ``stale`` in each of them, a run whose process is gone is ``interrupted`` in each of them.
Views only read: they take a :class:`~mlops_nb.store.Store` (callers that only read open it
read-only) and never write, not even to record an interrupted run.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_nb.format import json_safe, number, short_class
from mlops_nb.stages import STAGES
from mlops_nb.store import Store, process_gone
from mlops_nb.tracking.monitoring import monitoring_summary

#: The states a stage can be in, as every front end shows them.
STATES = ("not run", "running", "ok", "error", "stale")

#: Why a reader shows a ``running`` run as ``interrupted`` (the writer records the same words).
GONE = "the process that ran it ended without ending the run"

_RUN_KEYS = ("id", "name", "project", "kind", "status", "start_time", "end_time", "duration", "error",
             "parent_id", "notebook", "git_commit", "git_dirty", "environment")
_ATTEMPT_KEYS = ("id", "attempt", "seq", "status", "start_time", "duration", "error", "execution_count", "cell_id")
_GATE_KEYS = ("stage_id", "metric", "op", "threshold", "value", "passed", "time")
_ARTIFACT_KEYS = ("name", "kind", "sha256", "size", "created")


def run_view(store: Store, run_id: int) -> dict[str, Any]:
    """Everything a front end shows about run ``run_id``, as plain JSON-safe data (times are epoch seconds).

    Keys: the run's own (``id``, ``name``, ``project``, ``kind``, ``status``, ``start_time``,
    ``end_time``, ``duration``, ``error``, ``parent_id``, ``notebook``, ``git_commit``, ``git_dirty``,
    ``environment``); ``params``, ``metrics`` (latest values), ``tags``; ``requirement``, ``gate`` (the
    latest result) and ``gates``; ``warnings`` (integrity); ``stages``: one entry per lifecycle stage in
    order (then any unknown stage name), each with ``state`` (one of :data:`STATES`), the latest
    attempt's ``status``, ``duration``, ``start_time``, ``error``, ``execution_count``, ``captured``
    (short lines such as ``X 200×3``) and every attempt (with ``variables`` and compact ``captures``);
    ``retraining`` (child runs with their ``decision`` and metrics); ``artifacts``; ``drift``;
    ``serving``: the minutes its exported packages' servers recorded (:func:`serving_view`);
    ``monitoring``: those minutes in buckets with the latest input-drift verdict, beside the
    retraining runs (:func:`mlops_nb.tracking.monitoring.monitoring_summary`; None when never served).
    Raises :class:`~mlops_nb.errors.RunNotFound` for an unknown id.
    """
    details = store.run_details(run_id)
    run = {key: details.get(key) for key in _RUN_KEYS if key != "duration"}
    if process_gone(details):
        run["status"] = "interrupted"  # shown, not written: the next writer records it
        run["error"] = run["error"] or GONE
    end = details["end_time"]
    run["duration"] = None if end is None else end - details["start_time"]
    run["git_dirty"] = None if details.get("git_dirty") is None else bool(details["git_dirty"])
    requirement = details["requirement"]
    gates = [{key: gate.get(key) for key in _GATE_KEYS} for gate in details["gates"]]
    for gate in gates:
        gate["passed"] = bool(gate["passed"])
    retraining = [_child(child) for child in store.child_runs(run_id, "retraining")]
    serving = serving_view(store, run_id=run_id, limit=SERVING_MINUTES)["minutes"]
    view = {
        **run,
        "params": details["params"],
        "metrics": details["metrics"],
        "tags": details["tags"],
        "requirement": None if requirement is None else {
            key: requirement.get(key) for key in ("metric", "op", "threshold", "target", "notes")},
        "gate": gates[-1] if gates else None,
        "gates": gates,
        "warnings": [{"kind": w["kind"], "stage": w["stage"], "message": w["message"]} for w in details["warnings"]],
        "stages": _stages(store, details, run_id),
        "retraining": retraining,
        "artifacts": [{key: a[key] for key in _ARTIFACT_KEYS} for a in details["artifacts"]],
        "drift": [{key: row[key] for key in ("column_name", "kind", "statistic", "value", "verdict")}
                  for row in details.get("drift") or []],
        "serving": serving,
        "monitoring": monitoring_summary(serving, retraining),
    }
    return json_safe(view)


def stage_states(view: dict[str, Any]) -> dict[str, str]:
    """``{stage: state}`` for every lifecycle stage of a :func:`run_view`."""
    return {s["stage"]: s["state"] for s in view["stages"]}


def requirement_text(requirement: dict[str, Any]) -> str:
    """``f1 >= 0.85, target churned``."""
    target = f", target {requirement['target']}" if requirement.get("target") else ""
    return f"{requirement['metric']} {requirement['op']} {number(requirement['threshold'])}{target}"


def _stages(store: Store, details: dict[str, Any], run_id: int) -> list[dict[str, Any]]:
    captures: dict[int, list[dict[str, Any]]] = {}
    for capture in store.stage_captures(run_id):
        captures.setdefault(capture["stage_id"], []).append(capture)
    stale = {w["stage"] for w in details["warnings"] if w["kind"] == "stale"}
    attempts: dict[str, list[dict[str, Any]]] = {}
    for row in details["stages"]:
        attempt = {key: row[key] for key in _ATTEMPT_KEYS}
        attempt["variables"] = _names(row["variables"])
        attempt["captures"] = [_capture_item(c) for c in captures.get(row["id"], [])]
        attempt["captured"] = _captured_lines(captures.get(row["id"], []))
        attempts.setdefault(row["stage"], []).append(attempt)
    order = [*STAGES, *(name for name in attempts if name not in STAGES)]
    return [_stage(name, attempts.get(name, []), name in stale, details) for name in order]


def _stage(name: str, attempts: list[dict[str, Any]], stale: bool, details: dict[str, Any]) -> dict[str, Any]:
    latest = attempts[-1] if attempts else None
    if latest is None:
        state = "not run"
    elif latest["status"] in ("running", "error"):
        state = latest["status"]
    else:
        state = "stale" if stale else "ok"
    captured = list(latest["captured"]) if latest else []
    if name == "validation" and latest:
        metrics = details["metrics"]
        captured.extend(f"{k} = {number(metrics[k])}" for k in latest["variables"] if k in metrics)
    if name == "requirements" and details["requirement"]:
        captured.insert(0, requirement_text(details["requirement"]))
    return {
        "stage": name, "state": state, "status": None if latest is None else latest["status"],
        "attempt_count": len(attempts),
        "duration": None if latest is None else latest["duration"],
        "start_time": None if latest is None else latest["start_time"],
        "error": None if latest is None else latest["error"],
        "execution_count": None if latest is None else latest["execution_count"],
        "captured": captured, "attempts": attempts,
    }


def _names(text: str | None) -> list[str]:
    try:
        names = json.loads(text or "[]")
    except ValueError:
        return []
    return names if isinstance(names, list) else []


def _capture_item(capture: dict[str, Any]) -> dict[str, Any]:
    """One captured object in a line: ``name``, ``kind``, ``summary``, ``fingerprint`` (and ``warning``
    when it could not be reloaded); profiles, params and candidates stay in the store."""
    kind = capture["kind"]
    if kind in ("dataframe", "series"):
        columns = capture["n_columns"] or 0
        text = f"{number(capture['rows'] or 0)} rows" + (
            f" × {columns} column{'s' if columns != 1 else ''}" if kind == "dataframe" else "")
    elif kind in ("estimator", "search"):
        text = short_class(capture["class"])
        if kind == "search" and capture["best_score"] is not None:
            text += f", best score {number(capture['best_score'])} of {capture['n_candidates'] or 0} candidates"
    else:
        text = kind
    item = {"name": capture["name"], "kind": kind, "summary": text, "fingerprint": capture["fingerprint"]}
    if capture.get("unloadable"):
        item["warning"] = capture["unloadable"]
    return item


def _captured_lines(captures: list[dict[str, Any]]) -> list[str]:
    """The short lines the widget's stage table and ``%mlops status --text`` show."""
    out = []
    for c in captures:
        if c["kind"] == "dataframe":
            out.append(f"{c['name']} {number(c['rows'])}×{number(c['n_columns'])}")
        elif c["kind"] == "series":
            out.append(f"{c['name']} ({number(c['rows'])})")
        elif c["kind"] == "estimator":
            out.append(f"{c['name']}: {short_class(c['class'])}")
        elif c["kind"] == "search":
            best = "" if c["best_score"] is None else f", best {number(c['best_score'])}"
            out.append(f"{c['name']}: {short_class(c['class'])}, {c['n_candidates']} candidates{best}")
        if c.get("unloadable"):
            out.append(f"⚠ {c['name']} {c['unloadable']}")
    return out


def _child(child: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": child["id"], "name": child["name"], "status": child["status"], "start_time": child["start_time"],
        "end_time": child["end_time"],
        "duration": None if child["end_time"] is None else child["end_time"] - child["start_time"],
        "decision": child["tags"].get("decision") or child["error"] or "", "error": child["error"],
        "metrics": child["metrics"], "tags": child["tags"],
    }


#: Minutes of serving a run's view carries (the status widget and the sidebar chart them).
SERVING_MINUTES = 120


def serving_view(store: Store, *, package: str | None = None, run_id: int | None = None,
                 limit: int = 1440) -> dict[str, Any]:
    """What the scoring servers of a package (or of a notebook run's packages) saw, minute by minute,
    beside the run's retraining history, as plain JSON-safe data.

    ``minutes``: one entry per minute, the rows of every server process (``--workers``) merged:
    ``minute`` (epoch seconds), ``version_dir``, ``model_version``, ``requests``, ``rows``, ``errors``,
    ``bad_requests``, ``latency_p50`` (request-weighted mean of the processes' medians), ``latency_p99``
    and ``latency_max`` (their maximum, ms), ``drift_share`` and ``drifted`` (of the process that saw
    the most rows), ``predictions`` (label counts summed, else that process's quantiles), ``logged_rows``.
    ``retraining``: the retraining runs of the notebook run (as in :func:`run_view`). ``totals``:
    requests, rows, errors over the minutes shown.
    """
    rows = store.serving_minutes(package=package, run_id=run_id, limit=limit)
    merged: dict[tuple[str, float], dict[str, Any]] = {}
    for row in rows:
        key = (row["package"], row["minute"])
        m = merged.get(key)
        if m is None:
            merged[key] = m = {k: row[k] for k in (
                "package", "minute", "seconds", "version_dir", "model_name", "model_version", "run_id", "requests",
                "rows", "errors", "bad_requests", "latency_p50", "latency_p90", "latency_p99", "latency_max",
                "drift", "drift_share", "drifted", "predictions", "logged_rows")}
            m["processes"] = 1
            m["_most"] = row["rows"]
            continue
        total = m["requests"] + row["requests"]
        for k in ("latency_p50", "latency_p90"):
            m[k] = (m[k] * m["requests"] + row[k] * row["requests"]) / total if total else m[k]
        for k in ("latency_p99", "latency_max"):
            m[k] = max(m[k], row[k])
        for k in ("requests", "rows", "errors", "bad_requests", "logged_rows"):
            m[k] += row[k] or 0
        m["processes"] += 1
        m["version_dir"], m["model_version"] = row["version_dir"], row["model_version"]
        if row["rows"] > m["_most"]:
            m.update(_most=row["rows"], drift=row["drift"], drift_share=row["drift_share"], drifted=row["drifted"])
        mine, theirs = m.get("predictions") or {}, row.get("predictions") or {}
        if mine.get("kind") == theirs.get("kind") == "labels":
            counts = dict(mine["counts"])
            for label, n in theirs["counts"].items():
                counts[label] = counts.get(label, 0) + n
            m["predictions"] = {**mine, "counts": counts}
    minutes = sorted(merged.values(), key=lambda m: m["minute"])
    for m in minutes:
        m.pop("_most", None)
    run_ids = {m["run_id"] for m in minutes if m["run_id"] is not None}
    if run_id is not None:
        run_ids.add(run_id)
    retraining = [_child(c) for rid in sorted(run_ids) for c in store.child_runs(rid, "retraining")]
    totals = {k: sum(m[k] or 0 for m in minutes) for k in ("requests", "rows", "errors", "bad_requests")}
    return json_safe({"package": package, "run_id": run_id, "minutes": minutes, "retraining": retraining,
                      "totals": totals})
