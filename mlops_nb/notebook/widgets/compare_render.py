"""What the compare widget shows, as HTML and SVG text: the title, the header labels, the rows of a
page, the pager, the filter's error, the empty-table messages, the diff of the selected runs, the two
charts and the CSV download link.

Pure functions from the table model's state (:class:`~mlops_nb.notebook.widgets.runs_table.RunsTable`
and its ``diff`` and chart data) to text, built on :mod:`._render` and :mod:`mlops_nb.format`. The
widget (:mod:`mlops_nb.notebook.widgets.compare`) puts the text in its panels.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from typing import Any

from mlops_nb.format import MINUTES_FORMAT, duration, is_missing, local_time, number, short_time
from mlops_nb.notebook.widgets._render import (
    BORDER,
    FONT,
    HOW_TO_START,
    MONO,
    MUTED,
    STATE_COLOURS,
    badge,
    esc,
    line_chart,
    placeholder,
    scatter_chart,
    section,
    table,
    unified_diff_html,
)
from mlops_nb.notebook.widgets.runs_table import LABELS, MAX_SCATTER_POINTS, namespace
from mlops_nb.stages import STAGES

WIDTHS = {"name": 150, "project": 100, "kind": 84, "status": 90, "start_time": 104, "duration": 72, "stages": 140,
          "gate": 92, "registry": 150}
NAMESPACE_WIDTHS = {"metrics": 86, "params": 92, "tags": 104}
#: Header colours: run columns, metrics, params, tags.
HEADER_COLOURS = {None: "#eaeef2", "metrics": "#ddf4ff", "params": "#fff8c5", "tags": "#fbefff"}
#: The background of a ticked row.
SELECTED_BACKGROUND = "#ddf4ff"
#: More points than this in the scatter are thinned (every n-th run, plus the ticked ones).
CHECK_WIDTH = 30
HINT = (f'<div style="{FONT}font-size:11px;color:{MUTED};margin:2px 0 0 2px">Click a header to sort (again to '
        "reverse). Tick two or more runs to compare them. ★ marks the registry's champion.</div>")
CHOOSER_HINT = (f'<span style="{FONT}font-size:12px;color:{MUTED}">Ctrl/Shift-click to pick several; '
                "metrics, params and tags follow the run columns.</span>")
CHARTS_HEADING = f'<div style="{FONT}margin:14px 0 4px 0;font-size:13px;font-weight:600">Charts</div>'


# -- columns ---------------------------------------------------------------------------------------


def column_label(column: str, known: Mapping[str, Sequence[str]], *, full: bool = False) -> str:
    """A column's header: ``run``, ``start``, a metric's key alone (``f1``) unless another namespace
    has the same key (then ``metrics.f1``). ``full``: the chooser's ``metric: f1``."""
    space = namespace(column)
    if space is None:
        return LABELS.get(column, column.replace("_", " "))
    key = column.split(".", 1)[1]
    if full:
        return f"{space[:-1]}: {key}"
    clash = sum(1 for ns in ("params", "metrics", "tags") if key in known.get(ns, ())) > 1
    return column if clash else key


def header_labels(columns: Sequence[str], known: Mapping[str, Sequence[str]], sort_column: str,
                  ascending: bool) -> list[str]:
    """The header of each shown column; the sorted one ends with ▲ (ascending) or ▼."""
    arrow = " ▲" if ascending else " ▼"
    return [column_label(c, known) + (arrow if c == sort_column else "") for c in columns]


def column_width(column: str) -> int:
    """A column's width in pixels (the header buttons and the row cells line up on it)."""
    return WIDTHS.get(column) or NAMESPACE_WIDTHS.get(namespace(column) or "", 96)


# -- rows ------------------------------------------------------------------------------------------


def row_html(record: Mapping[str, Any], columns: Sequence[str], *, selected: bool, index: int) -> str:
    """One row of the table: the cells of ``columns`` for a frame ``record`` (striped by ``index``,
    highlighted when ``selected``)."""
    background = SELECTED_BACKGROUND if selected else ("#ffffff" if index % 2 == 0 else "#f6f8fa")
    cells = []
    for column in columns:
        align = "right" if column in ("duration",) or namespace(column) == "metrics" else "left"
        content, title = cell(column, record)
        value = record.get(column)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            align = "right" if column not in ("name", "stages", "gate") else align
        tip = f' title="{esc(title)}"' if title else ""
        cells.append(f'<div{tip} style="width:{column_width(column)}px;flex:none;box-sizing:border-box;'
                     f'padding:0 8px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;'
                     f'text-align:{align}">{content}</div>')
    return (f'<div class="mnb-cells" data-run="{record["run_id"]}" style="{FONT}display:flex;'
            f'align-items:center;height:30px;font-size:12px;color:#24292f;background:{background};'
            f'border-top:1px solid #eaeef2">{"".join(cells)}</div>')


def cell(column: str, record: Mapping[str, Any]) -> tuple[str, str]:
    """A cell's HTML and its tooltip text ('' for none)."""
    value = record.get(column)
    if column == "name":
        registry = record.get("registry")
        star = ""
        if isinstance(registry, str) and "@champion" in registry:
            star = f'<span title="{esc(registry)}" style="color:#bf8700;margin-right:3px">★</span>'
        return f"{star}<b>{esc(value)}</b>", f"run {record['run_id']}: {value}"
    if column == "status":
        return badge(str(value)), ""
    if column == "start_time":
        return esc(short_time(value)), local_time(value, MINUTES_FORMAT)
    if column == "duration":
        return esc(duration(value)), ""
    if column == "stages":
        reached = record.get("reached")
        if is_missing(reached):
            return f'<span style="color:{MUTED}">-</span>', "no stage recorded"
        n = int(value or 0)
        bar = "".join(
            f'<span style="display:inline-block;width:4px;height:10px;margin-right:1px;border-radius:1px;'
            f'background:{"#1a7f37" if k < n else "#d0d7de"}"></span>' for k in range(len(STAGES)))
        return (f'{bar}<span style="margin-left:6px">{esc(reached)}</span>',
                f"{n} of {len(STAGES)} stages ran ok; furthest: {reached}")
    if column == "gate":
        if value is None or is_missing(value):
            return "", ""
        requirement = f"{record.get('req_metric')} {record.get('req_op')} {number(record.get('req_threshold'))}"
        if value == "pending":
            return badge("pending", "pending"), f"{requirement}: not evaluated yet"
        mark = "✓" if value == "passed" else "✗"
        return badge(f"{mark} {number(record.get('gate_value'), 3)}", value), f"{requirement}: {value}"
    text = number(value)
    return esc(text), text if len(text) > 12 else ""


def pager_text(current_page: int, pages: int, page_size: int, total: int, loaded: int) -> str:
    """``page 1 of 2 · runs 1-25 of 30``, with ``(filtered from N)`` when a filter hides runs."""
    first = (current_page - 1) * page_size + 1 if total else 0
    last = min(total, current_page * page_size)
    filtered = f" (filtered from {loaded:,})" if total != loaded else ""
    return f"page {current_page} of {pages} · runs {first:,}-{last:,} of {total:,}{filtered}"


def pager_html(text: str) -> str:
    return f'<span style="{FONT}font-size:12px">{esc(text)}</span>'


# -- title, messages -------------------------------------------------------------------------------


def title_html(project: str | None, loaded: int, store_path: Any) -> str:
    what = f"Runs of <b>{esc(project)}</b>" if project else "Runs"
    return (f'<div style="{FONT}font-size:15px;font-weight:600">{what} '
            f'<span style="font-size:12px;font-weight:400;color:{MUTED}">{loaded:,} run{"s" if loaded != 1 else ""}'
            f" · store {esc(store_path)}</span></div>")


def no_store_runs_html(project: str | None, store_path: Any) -> str:
    """In place of the table when the store (or the project) has no run: how to record one."""
    where = f"in project <b>{esc(project)}</b>" if project else "in this store"
    return (f'<div style="{FONT}border:1px dashed {BORDER};border-radius:8px;padding:18px 20px;max-width:760px">'
            f'<div style="font-size:14px;font-weight:600">No runs {where} yet</div>'
            f'<div style="font-size:12.5px;margin-top:6px">{HOW_TO_START} Then run '
            f"<code>%mlops compare</code> again.</div>"
            f'<div style="font-size:11px;color:{MUTED};margin-top:6px">store {esc(store_path)}</div></div>')


def no_match_html(where: str) -> str:
    """Under the header when the filter keeps no run."""
    return (f'<div style="{FONT}padding:14px 12px;font-size:12.5px;color:{MUTED}">No runs match '
            f"<code>{esc(where)}</code>. Change the filter or press Clear.</div>")


def error_html(error: str, where: str) -> str:
    """Under the filter box: why the filter was refused, and what the table still shows."""
    if not error:
        return ""
    kept = f"<code>{esc(where)}</code>" if where else "every run"
    return (f'<div style="{FONT}border-left:3px solid {STATE_COLOURS["error"][0]};background:#ffebe9;'
            f'padding:6px 10px;margin:4px 0;font-size:12px;max-width:1000px">'
            f'<pre style="{MONO}margin:0;white-space:pre-wrap;color:#82071e;font-size:11.5px">{esc(error)}</pre>'
            f'<div style="color:{MUTED};margin-top:4px">Still showing the last good result: {kept}.</div></div>')


def download_html(filename: str, text: str, rows: int) -> str:
    """A link that saves ``text`` as ``filename`` (a data: URL: no server round trip)."""
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return (f'<a download="{esc(filename)}" href="data:text/csv;charset=utf-8;base64,{data}" '
            f'style="{FONT}font-size:12px;color:#0969da;font-weight:600">⬇ {esc(filename)}</a>'
            f'<span style="{FONT}font-size:11px;color:{MUTED}"> {rows:,} rows, {len(text) / 1024:,.0f} KB</span>')


# -- the diff --------------------------------------------------------------------------------------


def diff_html(diff: dict[str, Any] | None, ticked: int) -> str:
    """The diff panel for :attr:`RunsTable.diff` (``ticked``: how many runs are ticked, for the hint
    shown while fewer than two are)."""
    if diff is None:
        more = "" if ticked == 0 else f" ({ticked} ticked: tick one more)"
        return (f'<div style="{FONT}margin:14px 0 4px 0;font-size:13px;font-weight:600">Diff</div>'
                f'<div style="{FONT}font-size:12px;color:{MUTED}">Tick two or more runs to compare their params, '
                f"metrics, stage sources and data{more}.</div>")
    ids, names = diff["runs"], diff["names"]
    heads = ["", *(f"{esc(names[r])} <span style='color:{MUTED};font-weight:400'>#{r}</span>" for r in ids)]
    parts = [_params(diff, heads), _metrics(diff, heads), _data(diff, heads), _sources(diff)]
    return (f'<div style="{FONT}color:#24292f;background:#ffffff;max-width:1100px;border:1px solid {BORDER};'
            f'border-radius:8px;padding:2px 14px 10px 14px;margin-top:10px">'
            f'<div style="margin:14px 0 4px 0;font-size:14px;font-weight:600">Diff of {len(ids)} runs</div>'
            f"{''.join(parts)}</div>")


_MISSING = f'<span style="color:{MUTED}">–</span>'


def _params(diff: dict[str, Any], heads: list[str]) -> str:
    ids = diff["runs"]
    differing = [p for p in diff["params"] if p["differs"]]
    same = [p for p in diff["params"] if not p["differs"]]
    if differing:
        rows = [[f"<b>{esc(p['key'])}</b>", *(esc(number(p["values"][r])) or _MISSING for r in ids)]
                for p in differing]
        body = table(heads, rows, row_styles=["background:#fff8c5"] * len(rows))
    else:
        body = f'<div style="font-size:12px;color:{MUTED}">No param differs.</div>'
    if same:
        listed = ", ".join(f"{p['key']}={number(p['values'][ids[0]])}" for p in same[:12])
        listed += ", …" if len(same) > 12 else ""
        body += (f'<div style="font-size:11.5px;color:{MUTED};margin:2px 0 0 2px">{len(same)} identical: '
                 f"{esc(listed)}</div>")
    return section("Params", body, note=f"{len(differing)} differ")


def _metrics(diff: dict[str, Any], heads: list[str]) -> str:
    ids = diff["runs"]
    if not diff["metrics"]:
        return section("Metrics", f'<div style="font-size:12px;color:{MUTED}">No metrics logged.</div>')
    rows = []
    for m in diff["metrics"]:
        cells = [f"<b>{esc(m['key'])}</b> <span style='color:{MUTED}'>{'↓' if m['lower_is_better'] else '↑'}</span>"]
        for r in ids:
            text = esc(number(m["values"][r])) or _MISSING
            if r in m["best"]:
                text = f'<span style="color:#1a7f37;font-weight:700">★ {text}</span>'
            cells.append(text)
        rows.append(cells)
    return section("Metrics", table(heads, rows, align=["left", *["right"] * len(ids)]),
                   note="★ best (↑ higher is better, ↓ lower)")


def _data(diff: dict[str, Any], heads: list[str]) -> str:
    ids, data = diff["runs"], diff["data"]
    if data["match"] is None:
        return section("Data", f'<div><span style="color:{MUTED}">no data stage recorded in these runs</span></div>')
    verdict = (badge("✓ data fingerprints match", "passed") if data["match"]
               else badge("✗ data differs: " + ", ".join(data["differ"]), "failed"))
    rows = [[f"<b>{esc(name)}</b>",
             *(f'<span style="{MONO}font-size:11px">{esc((fps.get(r) or "-")[:12])}</span>' for r in ids)]
            for name, fps in data["frames"].items()]
    return section("Data", f"<div>{verdict}</div>{table(heads, rows)}")


def _sources(diff: dict[str, Any]) -> str:
    ids, names = diff["runs"], diff["names"]
    blocks = []
    for source in diff["sources"]:
        if source["same"]:
            blocks.append(f'<div style="font-size:12px;margin:3px 0"><b>{esc(source["stage"])}</b> '
                          f'<span style="color:#1a7f37">identical</span></div>')
            continue
        for other, text in source["diffs"].items():
            if text:
                blocks.append(f'<div style="font-size:12px;margin:8px 0 3px 0"><b>{esc(source["stage"])}</b> '
                              f'<span style="color:{MUTED}">{esc(names[ids[0]])} → {esc(names[other])}</span></div>'
                              + unified_diff_html(text))
    body = "".join(blocks) or f'<div style="font-size:12px;color:{MUTED}">No stage recorded in these runs.</div>'
    return section("Stage sources", body, note=f"latest attempt of each stage, against {esc(names[ids[0]])}")


# -- charts ----------------------------------------------------------------------------------------


def history_svg(metric: str | None, selected: Sequence[int], series: Mapping[int, list[tuple[int, float]]],
                names: Mapping[int, str]) -> str:
    """``metric`` over steps, one line per ticked run (in ticking order: the colours of the scatter)."""
    if not metric:
        return placeholder("no metrics logged")
    if not selected:
        return placeholder(f"tick runs to draw {metric} over steps")
    if not series:
        return placeholder(f"the ticked runs have no {metric}")
    labels = [names[r] for r in selected]
    named = {(n if labels.count(n) == 1 else f"{n} #{r}"): series.get(r, [])
             for n, r in zip(labels, selected, strict=True)}
    return line_chart(named, title=f"{metric} over steps", y_title=metric)


def scatter_svg(points: Mapping[str, Any], selected: Sequence[int], names: Mapping[int, str]) -> str:
    """A param against a metric, one point per filtered run (:meth:`RunsTable.scatter_points`); the
    ticked runs in their history colours. Above :data:`MAX_SCATTER_POINTS`, every n-th run is drawn."""
    param, metric = points["param"], points["metric"]
    if not param or not metric:
        return placeholder("log params and metrics to draw one against the other")
    chosen = points["points"]
    total, step = points.get("total", len(chosen)), points.get("step", 1)
    note = ""
    if step == 1 and len(chosen) > MAX_SCATTER_POINTS:  # points not thinned by the table yet
        step = math.ceil(len(chosen) / MAX_SCATTER_POINTS)
        ticked = set(selected)
        chosen = [p for i, p in enumerate(chosen) if i % step == 0 or p[0] in ticked]
    if step > 1:
        note = f"every {step}th of {total:,} runs"
    colour = {r: i for i, r in enumerate(selected)}
    drawn = [(x, y, names.get(r, str(r)), colour.get(r)) for r, x, y in chosen]
    return scatter_chart(drawn, title=f"{metric} against {param}", x_title=param, y_title=metric, note=note)
