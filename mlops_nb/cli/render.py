"""How the command line shows things: tables, times, durations, sizes and JSON for runs."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import pandas

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TIME_KEYS = frozenset({"start_time", "end_time", "created", "time", "last_run"})
EMPTY = "-"


def with_duration(frame: pandas.DataFrame) -> pandas.DataFrame:
    """``frame`` with a ``duration`` column (seconds; missing while a run is running) after ``end_time``."""
    seconds = (frame["end_time"] - frame["start_time"]).dt.total_seconds()
    return frame.assign(duration=seconds)[[*frame.columns[:7], "duration", *frame.columns[7:]]]


def pick_columns(frame: pandas.DataFrame, spec: str) -> list[str]:
    """The columns named in ``spec`` (comma-separated); a bare key matches a unique ``ns.key``."""
    picked = []
    for name in (part.strip() for part in spec.split(",")):
        if not name:
            continue
        if name in frame.columns:
            match = name
        else:
            candidates = [c for c in frame.columns if c.split(".", 1)[-1] == name and "." in c]
            if len(candidates) != 1:
                hint = f"did you mean {' or '.join(candidates)}" if candidates else "the columns are: " + (
                    ", ".join(frame.columns))
                raise click.BadParameter(f"no column {name!r}; {hint}", param_hint="'--columns'")
            match = candidates[0]
        if match != "run_id" and match not in picked:
            picked.append(match)
    return picked


def emit_frame(frame: pandas.DataFrame, fmt: str) -> None:
    if fmt == "json":
        records = [{c: json_value(v) for c, v in row.items()} for row in frame.to_dict(orient="records")]
        click.echo(json.dumps(records, indent=2))
    elif fmt == "csv":
        out = frame.copy()
        for column in time_columns(out):
            out[column] = out[column].map(iso)
        click.echo(out.to_csv(index=False), nl=False)
    else:
        out = frame.copy()
        for column in time_columns(out):
            out[column] = out[column].map(local_time)
        if "duration" in out.columns:
            out["duration"] = out["duration"].map(duration)
        click.echo(out.to_string(index=False, na_rep=EMPTY))


def time_columns(frame: pandas.DataFrame) -> list[str]:
    import pandas as pd

    return [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]


def as_datetime(value: Any) -> datetime | None:
    """A UTC datetime from epoch seconds or a pandas Timestamp; None for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "to_pydatetime"):
        if value != value:  # NaT
            return None
        return value.to_pydatetime(warn=False)
    return datetime.fromtimestamp(float(value), tz=timezone.utc)


def local_time(value: Any) -> str:
    moment = as_datetime(value)
    return EMPTY if moment is None else moment.astimezone().strftime(TIME_FORMAT)


def iso(value: Any) -> str | None:
    moment = as_datetime(value)
    return None if moment is None else moment.isoformat()


def json_value(value: Any) -> Any:
    """A JSON-safe value: NaN, infinities and NaT become null, times ISO 8601, numpy scalars Python."""
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):
        return iso(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def jsonable(details: Any, key: str | None = None) -> Any:
    """``run_details`` for JSON: epoch-second fields as ISO 8601, JSON text columns parsed."""
    if isinstance(details, dict):
        return {k: jsonable(v, k) for k, v in details.items()}
    if isinstance(details, list):
        return [jsonable(v) for v in details]
    if key in TIME_KEYS and isinstance(details, (int, float)):
        return iso(details)
    if key == "variables" and isinstance(details, str):
        try:
            return json.loads(details)
        except ValueError:
            return details
    return json_value(details)


def duration(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return EMPTY
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02d} s"


def size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"  # pragma: no cover


def number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return EMPTY
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def mapping_lines(title: str, mapping: dict[str, Any], render=str) -> list[str]:
    if not mapping:
        return [f"{title}: none"]
    width = max(len(k) for k in mapping)
    return [title, *(f"  {k.ljust(width)}  {render(v)}" for k, v in mapping.items())]


def table_lines(title: str, rows: list[list[str]], header: list[str]) -> list[str]:
    if not rows:
        return [f"{title}: none"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [title, "  " + fmt.format(*header).rstrip(), *("  " + fmt.format(*r).rstrip() for r in rows)]


def stage_lines(stages: list[dict[str, Any]]) -> list[str]:
    with_errors = any(s.get("error") for s in stages)
    header = ["stage", "attempt", "status", "duration", *(["error"] if with_errors else [])]
    rows = []
    for s in stages:
        row = [s["stage"], str(s["attempt"]), s["status"], duration(s["duration"])]
        if with_errors:
            row.append((s.get("error") or "").splitlines()[-1] if s.get("error") else "")
        rows.append(row)
    return table_lines("stages", rows, header)


def render_run(d: dict[str, Any]) -> str:
    """The text of ``mlops-nb show``: a header, then one block per kind of record."""
    lines = [f"run {d['id']}  {d['name']}  ({d['kind']} run in project {d['project']})  {d['status']}"]
    took = None if d.get("end_time") is None else d["end_time"] - d["start_time"]
    timing = f"  started {local_time(d['start_time'])}"
    if took is not None:
        timing += f", took {duration(took)}"
    lines.append(timing)
    if d.get("parent_id"):
        lines.append(f"  parent run {d['parent_id']}")
    if d.get("notebook"):
        lines.append(f"  notebook {d['notebook']}")
    if d.get("git_commit"):
        lines.append(f"  git {d['git_commit'][:12]}" + (" (uncommitted changes)" if d.get("git_dirty") else ""))
    env = d.get("environment") or {}
    if env.get("python"):
        packages = env.get("packages") or {}
        libs = ", ".join(f"{k} {packages[k]}" for k in ("scikit-learn", "pandas") if k in packages)
        lines.append(f"  python {env['python']}" + (f", {libs}" if libs else ""))
    if d.get("error"):
        lines.append(f"  error: {d['error']}")

    blocks = [
        mapping_lines("params", d["params"], number),
        mapping_lines("metrics", d["metrics"], number),
        mapping_lines("tags", d["tags"], lambda v: EMPTY if v is None else v),
        table_lines("artifacts", [[a["name"], a["kind"], size(a["size"]), a["sha256"][:12]]
                                   for a in d["artifacts"]], ["name", "kind", "size", "sha256"]),
        stage_lines(d["stages"]),
    ]
    requirement = d.get("requirement")
    if requirement:
        text = f"{requirement['metric']} {requirement['op']} {number(requirement['threshold'])}"
        if requirement.get("target"):
            text += f", target {requirement['target']}"
        if requirement.get("notes"):
            text += f" ({requirement['notes']})"
        blocks.append([f"requirement: {text}"])
    else:
        blocks.append(["requirement: none"])
    blocks.append(table_lines(
        "gates",
        [[g["metric"], number(g["value"]), f"{g['op']} {number(g['threshold'])}",
          "passed" if g["passed"] else "FAILED", local_time(g["time"])] for g in d["gates"]],
        ["metric", "value", "requirement", "result", "time"],
    ))
    blocks.append(table_lines(
        "integrity warnings",
        [[w["kind"], w.get("stage") or EMPTY, w["message"]] for w in d["warnings"]],
        ["kind", "stage", "message"],
    ))
    if d.get("drift"):  # a retraining run: its drift check, column by column
        blocks.append(table_lines(
            "drift",
            [[r["column_name"], r["kind"], r["statistic"], number(r["value"]), r["verdict"]] for r in d["drift"]],
            ["column", "kind", "statistic", "value", "verdict"],
        ))
    previous: list[str] = []
    for block in blocks:
        if len(block) > 1 or len(previous) != 1:
            lines.append("")  # one-line blocks ("gates: none") stay together
        lines.extend(block)
        previous = block
    return "\n".join(lines)

