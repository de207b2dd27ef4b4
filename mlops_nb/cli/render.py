"""How the command line shows things: tables and the text of a run's view; values are written by
:mod:`mlops_nb.format`, as in every other front end."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click

from mlops_nb import format as formatting
from mlops_nb.tracking.views import requirement_text

if TYPE_CHECKING:
    import pandas

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


def readable_columns(frame: pandas.DataFrame, required: list[str], width: int, *, project: bool = True) -> list[str]:
    """The columns ``mlops-nb runs`` shows by default, most telling first and cut to fit ``width``
    characters: who and when (run_id, project, name, kind, status, start, duration), the metrics the
    runs' requirements name (and a retraining run's ``candidate_`` value of them; the two most filled
    metrics when no requirement is stated), then up to three params whose values differ between the
    runs shown, shortest keys first."""
    def filled(column: str) -> bool:
        return column in frame.columns and bool(frame[column].notna().any())

    head = ["run_id", *(["project"] if project else []), "name", "kind", "status", "start_time", "duration"]
    metrics = [c for m in required for c in (f"metrics.{m}", f"metrics.candidate_{m}") if filled(c)]
    if not required:
        counts = frame[[c for c in frame.columns if c.startswith("metrics.")]].notna().sum()
        metrics = [c for c in counts.sort_values(ascending=False, kind="stable").index[:2] if counts[c]]
    differing = [c for c in frame.columns if c.startswith("params.") and frame[c].dropna().astype(str).nunique() > 1]
    differing.sort(key=lambda c: (c.count("."), len(c)))
    natural = [c for c in head if c in frame.columns] + metrics + differing[:3]
    # When the terminal is narrow, what identifies a run and how good it is outrank when it ran.
    rank = ["run_id", "name", "status", *metrics, "kind", "project", "duration", "start_time", *differing[:3]]
    cells = table_cells(frame[natural])
    kept: set[str] = set()
    used = 0
    for column in (c for c in rank if c in natural):
        header = column.removeprefix("metrics.")  # shown bare where unambiguous (bare_metric_names)
        need = max(len(header), int(cells[column].str.len().max() or 0)) + 1
        if used + need > width and len(kept) >= 3:  # run_id, name and status stay whatever the width
            continue
        kept.add(column)
        used += need
    return [c for c in natural if c in kept]


def bare_metric_names(every: Iterable[str], shown: list[str]) -> dict[str, str]:
    """Headers for the default runs table: ``metrics.f1`` as ``f1`` where no other column of the runs
    ends in that key, since every column shown by default that is not a run column is a metric or a
    param (params keep their prefix)."""
    keys = [c.split(".", 1)[1] for c in every if "." in c]
    return {c: c.split(".", 1)[1] for c in shown if c.startswith("metrics.") and keys.count(c.split(".", 1)[1]) == 1}


def table_cells(frame: pandas.DataFrame) -> pandas.DataFrame:
    """``frame`` as the strings a table shows: local times, durations, numbers to six significant
    digits (a whole number without ``.0``), ``-`` for missing."""
    out = frame.astype(object).copy()
    for column in frame.columns:
        if column in time_columns(frame):
            out[column] = frame[column].map(local_time)
        elif column == "duration":
            out[column] = frame[column].map(duration)
        elif column == "run_id":  # an id, not a quantity: no thousands separator
            out[column] = frame[column].map(lambda v: EMPTY if formatting.is_missing(v) else str(int(v)))
        else:
            out[column] = frame[column].map(number)
    return out


def whole_params(frame: pandas.DataFrame) -> pandas.DataFrame:
    """``frame`` with each ``params.*`` column whose values are all whole numbers as integers: a param
    logged as 2 reads back as 2, not 2.0, although another run's missing value made its column float."""
    out = frame
    for column in frame.columns:
        values = frame[column]
        if column.startswith("params.") and values.dtype.kind == "f" and values.notna().any():
            present = values.dropna()
            if bool((present == present.round()).all()) and bool((present.abs() < 2**53).all()):
                out = out if out is not frame else frame.copy()
                out[column] = values.astype("Int64")
    return out


def emit_frame(frame: pandas.DataFrame, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(formatting.json_safe(frame.to_dict(orient="records")), indent=2, allow_nan=False))
    elif fmt == "csv":
        out = frame.copy()
        for column in time_columns(out):
            out[column] = out[column].map(formatting.iso)
        click.echo(out.to_csv(index=False), nl=False)
    else:
        click.echo(table_cells(frame).to_string(index=False))


def time_columns(frame: pandas.DataFrame) -> list[str]:
    import pandas as pd

    return [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]


def local_time(value: Any) -> str:
    """A time for a table cell: local, to the second; ``-`` for missing."""
    return formatting.local_time(value) or EMPTY


def duration(seconds: Any) -> str:
    return formatting.duration(seconds) or EMPTY


def number(value: Any) -> str:
    return formatting.number(value, digits=6) or EMPTY


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
    """Every attempt of the stages that ran, in lifecycle order, each with its stage's ``state`` (the
    latest attempt of a stale stage says ``stale``, as the widget and the sidebar do)."""
    attempts = [(s, a) for s in stages for a in s["attempts"]]
    with_errors = any(a.get("error") for _, a in attempts)
    header = ["stage", "attempt", "status", "duration", *(["error"] if with_errors else [])]
    rows = []
    for stage, a in attempts:
        latest = a is stage["attempts"][-1]
        row = [stage["stage"], str(a["attempt"]), stage["state"] if latest else a["status"], duration(a["duration"])]
        if with_errors:
            row.append((a.get("error") or "").splitlines()[-1] if a.get("error") else "")
        rows.append(row)
    return table_lines("stages", rows, header)


def render_run(d: dict[str, Any]) -> str:
    """The text of ``mlops-nb show`` for a :func:`~mlops_nb.tracking.views.run_view`: a header, then
    one block per kind of record."""
    lines = [f"run {d['id']}  {d['name']}  ({d['kind']} run in project {d['project']})  {d['status']}"]
    timing = f"  started {local_time(d['start_time'])}"
    if d["duration"] is not None:
        timing += f", took {duration(d['duration'])}"
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
        table_lines("artifacts", [[a["name"], a["kind"], formatting.size(a["size"]), a["sha256"][:12]]
                                   for a in d["artifacts"]], ["name", "kind", "size", "sha256"]),
        stage_lines(d["stages"]),
    ]
    requirement = d.get("requirement")
    if requirement:
        text = requirement_text(requirement)
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
    if d.get("retraining"):
        blocks.append(table_lines(
            "retraining",
            [[str(c["id"]), c["status"], local_time(c["start_time"]), duration(c["duration"]), c["decision"] or EMPTY]
             for c in d["retraining"]],
            ["run", "status", "started", "duration", "decision"],
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

