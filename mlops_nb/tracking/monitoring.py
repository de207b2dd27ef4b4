"""A run's serving at a glance: the minutes its packages' servers recorded (``run_view``'s ``serving``)
folded into a few time buckets, the latest input-drift verdict, and the run's retraining runs
interleaved in time. Pure: the status widget, ``%mlops status --text`` and the JupyterLab sidebar all
render this one dict (``run_view``'s ``monitoring``), so they show the same buckets and verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Bucket widths (seconds) tried in order: the first that fits the minutes shown in :data:`MAX_ROWS`.
BUCKETS = (60, 300, 900, 3600, 6 * 3600, 86400)
_BUCKET_NAMES = {60: "minute", 300: "5 minutes", 900: "15 minutes", 3600: "hour", 6 * 3600: "6 hours",
                 86400: "day"}
#: At most this many traffic rows (the newest buckets); retraining runs come on top.
MAX_ROWS = 12


def monitoring_summary(minutes: Sequence[dict[str, Any]],
                       retraining: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Summarise served ``minutes`` (oldest first, as :func:`mlops_nb.tracking.views.serving_view`
    merges them) beside the run's ``retraining`` runs; None when nothing was served.

    Keys: ``packages`` (roots served), ``version_dir`` and ``model_version`` (the latest minute's),
    ``first`` and ``last`` minute, ``minutes`` (how many), ``totals`` (requests, rows, errors,
    bad_requests), ``latest`` (the newest minute: requests, rows, latency_p50, latency_p99),
    ``verdict`` (the input drift of the newest minute that has a sketch: ``"drift"``, ``"warn"``,
    ``"ok"``, or None when no minute had one), ``drifted`` and ``warned`` (its columns),
    ``drift_share``, ``drifted_minutes`` (how many minutes shown had a drifting column),
    ``columns`` (how many that sketch compared), ``headline`` (the verdict in words, as every front
    end shows it), ``bucket_seconds`` and ``bucket`` (its name: ``minute``, ``5 minutes``, ``hour``...);
    ``rows``: traffic buckets and retraining runs in time order, each with ``kind`` ``"serve"``
    (``start``, ``minutes``, ``requests``, ``rows``, ``errors`` (5xx and 4xx), ``latency_p50``
    (request-weighted), ``latency_p99`` (the highest), ``drift_share`` (the highest), ``drifted``
    (every column that drifted in it), ``verdict``, ``version_dir``) or ``"retrain"`` (``start``,
    ``run_id``, ``name``, ``status``, ``decision``, ``dataset_drift``); ``series``: per
    minute ``minute``, ``requests``, ``latency_p99``, ``drift_share`` lists, for sparklines.
    """
    if not minutes:
        return None
    first, last = minutes[0]["minute"], minutes[-1]["minute"]
    width = next((w for w in BUCKETS if (last - first) // w < MAX_ROWS), BUCKETS[-1])
    buckets: dict[float, dict[str, Any]] = {}
    for m in minutes:
        start = m["minute"] - m["minute"] % width
        b = buckets.get(start)
        if b is None:
            buckets[start] = b = {"kind": "serve", "start": start, "minutes": 0, "requests": 0, "rows": 0,
                                  "errors": 0, "latency_p50": None, "latency_p99": None, "drift_share": None,
                                  "drifted": [], "verdict": None, "version_dir": None}
        _add(b, m)
    traffic = sorted(buckets.values(), key=lambda b: b["start"])[-MAX_ROWS:]
    since = traffic[0]["start"]
    retrains = [_retrain(r) for r in retraining if (r.get("start_time") or 0) >= since]
    sketched = [m for m in minutes if m.get("drift")]
    newest = sketched[-1] if sketched else None
    verdict, drifted, warned = _verdict(newest) if newest else (None, [], [])
    columns = len(newest["drift"]) if newest else 0
    latest = minutes[-1]
    return {
        "packages": sorted({m["package"] for m in minutes if m.get("package")}),
        "version_dir": latest.get("version_dir"), "model_version": latest.get("model_version"),
        "first": first, "last": last, "minutes": len(minutes),
        "totals": {k: sum(m.get(k) or 0 for m in minutes) for k in ("requests", "rows", "errors", "bad_requests")},
        "latest": {k: latest.get(k) for k in ("minute", "requests", "rows", "latency_p50", "latency_p99")},
        "verdict": verdict, "drifted": drifted, "warned": warned,
        "drift_share": None if newest is None else newest.get("drift_share"),
        "drifted_minutes": sum(1 for m in minutes if m.get("drifted")),
        "columns": columns, "headline": _headline(verdict, drifted, warned, columns),
        "bucket_seconds": width, "bucket": _BUCKET_NAMES[width],
        "rows": sorted([*traffic, *retrains], key=lambda r: r["start"]),
        "series": {
            "minute": [m["minute"] for m in minutes],
            "requests": [m.get("requests") or 0 for m in minutes],
            "latency_p99": [m.get("latency_p99") for m in minutes],
            "drift_share": [m.get("drift_share") for m in minutes],
        },
    }


def _add(bucket: dict[str, Any], minute: dict[str, Any]) -> None:
    requests = minute.get("requests") or 0
    before = bucket["requests"]
    p50 = minute.get("latency_p50")
    if p50 is not None and requests:
        mean = bucket["latency_p50"] or 0.0
        bucket["latency_p50"] = (mean * before + p50 * requests) / (before + requests)
    bucket["latency_p99"] = _highest(bucket["latency_p99"], minute.get("latency_p99"))
    bucket["drift_share"] = _highest(bucket["drift_share"], minute.get("drift_share"))
    bucket["minutes"] += 1
    bucket["requests"] += requests
    bucket["rows"] += minute.get("rows") or 0
    bucket["errors"] += (minute.get("errors") or 0) + (minute.get("bad_requests") or 0)
    for column in minute.get("drifted") or []:
        if column not in bucket["drifted"]:
            bucket["drifted"].append(column)
    if minute.get("drift"):
        verdict = _verdict(minute)[0]
        bucket["verdict"] = max(bucket["verdict"] or "ok", verdict, key=_SEVERITY.index)
    bucket["version_dir"] = minute.get("version_dir") or bucket["version_dir"]


_SEVERITY = ["ok", "warn", "drift"]


def _highest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _verdict(minute: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    """``drift`` when a column drifted, ``warn`` when one only warned, else ``ok``; and those columns."""
    sketch = minute.get("drift") or {}
    drifted = list(minute.get("drifted") or [c for c, s in sketch.items() if s.get("verdict") == "drift"])
    warned = [c for c, s in sketch.items() if s.get("verdict") == "warn" and c not in drifted]
    return ("drift" if drifted else "warn" if warned else "ok"), drifted, warned


def _headline(verdict: str | None, drifted: list[str], warned: list[str], columns: int) -> str:
    of = f"{columns} column{'s' if columns != 1 else ''}"
    if verdict is None:
        return "no drift sketch: no column sent is in the package's reference"
    if verdict == "drift":
        return f"input drift in {', '.join(drifted)} ({len(drifted)} of {of})"
    if verdict == "warn":
        return f"inputs shifting in {', '.join(warned)} (warning, {len(warned)} of {of})"
    return f"no input drift ({of} compared)"


def _retrain(run: dict[str, Any]) -> dict[str, Any]:
    tags = run.get("tags") or {}
    return {"kind": "retrain", "start": run["start_time"], "run_id": run["id"], "name": run.get("name"),
            "status": run.get("status"), "decision": run.get("decision") or "",
            "dataset_drift": tags.get("dataset_drift")}
