"""HTML and SVG the widgets show: state colours, badges, tables and two small charts. Pure: stdlib only
(values are written by :mod:`mlops_nb.format`, as in every front end).

Everything here returns text. Styles are inline (the widgets ship no CSS and no JavaScript); colours
are chosen to read on JupyterLab's light and dark themes alike (each badge has its own background).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from mlops_nb.format import is_missing, number

FONT = "font-family:var(--jp-ui-font-family,system-ui,-apple-system,'Segoe UI',sans-serif);line-height:1.45;"
MONO = "font-family:var(--jp-code-font-family,ui-monospace,SFMono-Regular,Menlo,monospace);"
MUTED = "#6e7781"
BORDER = "#d0d7de"

#: Foreground and background of each state a stage, a run or a gate can be in.
STATE_COLOURS: dict[str, tuple[str, str]] = {
    "ok": ("#1a7f37", "#dafbe1"),
    "passed": ("#1a7f37", "#dafbe1"),
    "finished": ("#1a7f37", "#dafbe1"),
    "error": ("#cf222e", "#ffebe9"),
    "failed": ("#cf222e", "#ffebe9"),
    "stale": ("#9a6700", "#fff8c5"),
    "interrupted": ("#9a6700", "#fff8c5"),
    "running": ("#0969da", "#ddf4ff"),
    "pending": ("#6e7781", "#f6f8fa"),
    "not run": ("#6e7781", "#f6f8fa"),
}
#: Line and point colours of chart series (colour-blind friendly, Okabe-Ito order).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")

#: How to record a first run, for the widgets' empty states.
HOW_TO_START = (
    "Record one with <code>%load_ext mlops_nb</code>, then <code>%mlops start PROJECT</code> or a cell "
    "whose first line is <code>%%stage data</code>."
)


def esc(value: Any) -> str:
    """``value`` as HTML text (None as an empty string)."""
    return "" if value is None else escape(str(value), quote=True)


def badge(text: str, state: str | None = None, *, title: str | None = None) -> str:
    """A small rounded label coloured by ``state`` (a key of :data:`STATE_COLOURS`)."""
    fg, bg = STATE_COLOURS.get(state or text, (MUTED, "#f6f8fa"))
    tip = f' title="{esc(title)}"' if title else ""
    return (f'<span{tip} style="display:inline-block;padding:0 7px;border-radius:10px;font-size:11px;'
            f'line-height:18px;font-weight:600;color:{fg};background:{bg};border:1px solid {fg}33;'
            f'white-space:nowrap">{esc(text)}</span>')


def table(header: Sequence[str], rows: Iterable[Sequence[str]], *, row_styles: Sequence[str] | None = None,
          align: Sequence[str] | None = None) -> str:
    """An HTML table; cells are HTML already (escape text with :func:`esc`)."""
    align = align or ["left"] * len(header)
    head = "".join(
        f'<th style="text-align:{a};padding:4px 10px;border-bottom:2px solid {BORDER};font-weight:600;'
        f'white-space:nowrap">{h}</th>' for h, a in zip(header, align, strict=False))
    body = []
    for i, row in enumerate(rows):
        style = row_styles[i] if row_styles else ""
        cells = "".join(
            f'<td style="text-align:{a};padding:3px 10px;border-bottom:1px solid #eaeef2;vertical-align:top;'
            f'line-height:20px">'
            f"{c}</td>" for c, a in zip(row, align, strict=False))
        body.append(f'<tr style="{style}">{cells}</tr>')
    return (f'<table style="border-collapse:collapse;font-size:12px;margin:4px 0">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def section(title: str, body: str, *, note: str = "") -> str:
    extra = f' <span style="color:{MUTED};font-weight:400">{note}</span>' if note else ""
    return (f'<div style="margin:12px 0 4px 0;font-size:13px;font-weight:600">{title}{extra}</div>'
            f"{body}")


def unified_diff_html(text: str) -> str:
    """A unified diff (``difflib.unified_diff`` lines) coloured line by line."""
    lines = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            style = f"color:{MUTED}"
        elif line.startswith("@@"):
            style = "color:#8250df"
        elif line.startswith("+"):
            style = "background:#dafbe1;color:#116329"
        elif line.startswith("-"):
            style = "background:#ffebe9;color:#82071e"
        else:
            style = "color:#24292f"
        lines.append(f'<div style="{style};white-space:pre">{esc(line) or " "}</div>')
    return (f'<div style="{MONO}font-size:11.5px;line-height:1.45;border:1px solid {BORDER};border-radius:6px;'
            f'padding:6px 8px;overflow-x:auto;background:#ffffff;max-height:320px;overflow-y:auto">'
            f"{''.join(lines)}</div>")


# -- charts --------------------------------------------------------------------------------------


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks = []
    value = start
    while value < hi + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    return ticks if len(ticks) >= 2 else [start, start + step]


def _padded(values: list[float], share: float = 0.04) -> tuple[float, float]:
    """The range of ``values`` widened a little, so that no point sits on an axis."""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * share
    return lo - pad, hi + pad


class _Frame:
    """The plotting area of a chart: maps data to pixels and draws the axes."""

    def __init__(self, width: int, height: int, xs: list[float], ys: list[float], *,
                 x_labels: Sequence[str] | None = None, pad_x: bool = True):
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = 56, 14, 28, 42
        self.x_labels = x_labels
        if x_labels is not None:
            self.xticks = list(range(len(x_labels)))
            self.x0, self.x1 = -0.5, len(x_labels) - 0.5
        else:
            self.xticks = nice_ticks(*(_padded(xs) if pad_x else (min(xs), max(xs))))
            self.x0, self.x1 = self.xticks[0], self.xticks[-1]
        self.yticks = nice_ticks(*_padded(ys))
        self.y0, self.y1 = self.yticks[0], self.yticks[-1]

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (value - self.x0) / span * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - self.bottom - (value - self.y0) / span * (self.height - self.top - self.bottom)

    def axes(self, title: str, x_title: str, y_title: str) -> list[str]:
        parts = [f'<text x="{self.left}" y="16" font-size="12" font-weight="600" fill="#24292f">{esc(title)}</text>']
        for tick in self.yticks:
            y = self.y(tick)
            parts.append(f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="#eaeef2"/>')
            parts.append(f'<text x="{self.left - 6}" y="{y + 3.5:.1f}" font-size="10" text-anchor="end" '
                         f'fill="{MUTED}">{esc(number(tick, 3))}</text>')
        every = max(1, math.ceil(len(self.xticks) / 12))
        for i, tick in enumerate(self.xticks):
            if i % every:
                continue
            x = self.x(tick)
            label = number(tick, 3) if self.x_labels is None else self.x_labels[int(tick)]
            label = label if len(label) <= 10 else label[:9] + "…"
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.height - self.bottom}" '
                         f'y2="{self.height - self.bottom + 4}" stroke="{MUTED}"/>')
            parts.append(f'<text x="{x:.1f}" y="{self.height - self.bottom + 15}" font-size="10" '
                         f'text-anchor="middle" fill="{MUTED}">{esc(label)}</text>')
        base = self.height - self.bottom
        parts.append(f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{base}" y2="{base}" '
                     f'stroke="{MUTED}"/>')
        parts.append(f'<line x1="{self.left}" x2="{self.left}" y1="{self.top}" y2="{base}" stroke="{MUTED}"/>')
        parts.append(f'<text x="{(self.left + self.width - self.right) / 2:.0f}" y="{self.height - 6}" '
                     f'font-size="11" text-anchor="middle" fill="#24292f">{esc(x_title)}</text>')
        parts.append(f'<text transform="translate(13,{(self.top + base) / 2:.0f}) rotate(-90)" font-size="11" '
                     f'text-anchor="middle" fill="#24292f">{esc(y_title)}</text>')
        return parts


def _svg(width: int, height: int, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="{FONT}background:#ffffff;border:1px solid #eaeef2;'
            f'border-radius:6px">{"".join(parts)}</svg>')


def placeholder(text: str, width: int = 460, height: int = 260) -> str:
    """An empty chart area that says why it is empty."""
    return _svg(width, height, [
        f'<text x="{width / 2}" y="{height / 2}" font-size="12" text-anchor="middle" fill="{MUTED}">'
        f"{esc(text)}</text>"])


def line_chart(series: Mapping[str, Sequence[tuple[float, float]]], *, title: str, x_title: str = "step",
               y_title: str = "", width: int = 460, height: int = 260) -> str:
    """One line per series of ``(x, y)`` points (NaN breaks a line), with a legend below the title."""
    points = [(x, y) for values in series.values() for x, y in values if math.isfinite(y)]
    if not points:
        return placeholder("no values to draw", width, height)
    frame = _Frame(width, height, [p[0] for p in points], [p[1] for p in points], pad_x=False)
    parts = frame.axes(title, x_title, y_title)
    legend_x = frame.left + 7 * len(title) + 16  # on the title's line, after it
    for i, (label, values) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        segment: list[str] = []
        segments = [segment]
        for x, y in values:
            if math.isfinite(y):
                segment.append(f"{frame.x(x):.1f},{frame.y(y):.1f}")
            elif segment:
                segment = []
                segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                parts.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" '
                             f'stroke-width="2" stroke-linejoin="round"/>')
        if len(values) <= 60:
            for x, y in values:
                if math.isfinite(y):
                    parts.append(f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="2.6" fill="{colour}">'
                                 f"<title>{esc(label)}: step {esc(number(x))}, {esc(number(y))}</title></circle>")
        name = label if len(label) <= 18 else label[:17] + "…"
        parts.append(f'<rect x="{legend_x}" y="10" width="10" height="3" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 14}" y="15" font-size="10" fill="#24292f">{esc(name)}</text>')
        legend_x += 22 + 6 * len(name)
    return _svg(width, height, parts)


def scatter_chart(points: Sequence[tuple[Any, float, str, int | None]], *, title: str, x_title: str, y_title: str,
                  width: int = 460, height: int = 260, note: str = "") -> str:
    """``(x, y, label, highlight)`` points; ``highlight`` is None or an index into :data:`PALETTE`
    (the colour the same run has in :func:`line_chart`). Numeric x on a linear axis; otherwise each
    distinct x is a category (sorted), points spread a little within it so equal values stay visible."""
    points = [p for p in points if not is_missing(p[0]) and isinstance(p[1], (int, float)) and math.isfinite(p[1])]
    if not points:
        return placeholder("no runs have both values", width, height)
    numeric = all(isinstance(p[0], (int, float)) and not isinstance(p[0], bool) and math.isfinite(p[0])
                  for p in points)
    if numeric:
        frame = _Frame(width, height, [float(p[0]) for p in points], [p[1] for p in points])

        def place(value: Any, label: str) -> float:
            return frame.x(float(value))
    else:
        categories = sorted({str(p[0]) for p in points})
        index = {c: i for i, c in enumerate(categories)}
        frame = _Frame(width, height, [0.0], [p[1] for p in points], x_labels=categories)
        band = (frame.x(1) - frame.x(0)) * 0.5

        def place(value: Any, label: str) -> float:
            jitter = (zlib.crc32(label.encode()) % 1000 / 1000 - 0.5) * band
            return frame.x(index[str(value)]) + jitter
    parts = frame.axes(title, x_title, y_title)
    ordered = sorted(points, key=lambda p: p[3] is not None)  # highlighted ones on top
    for x, y, label, highlight in ordered:
        cx, cy = place(x, label), frame.y(y)
        tip = f"<title>{esc(label)}: {esc(number(x))}, {esc(number(y))}</title>"
        if highlight is not None:
            colour = PALETTE[highlight % len(PALETTE)]
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5.5" fill="{colour}" stroke="#24292f" '
                         f'stroke-width="1">{tip}</circle>')
        else:
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.2" fill="#8c959f" fill-opacity="0.6">'
                         f"{tip}</circle>")
    if note:
        parts.append(f'<text x="{width - frame.right}" y="16" font-size="10" text-anchor="end" fill="{MUTED}">'
                     f"{esc(note)}</text>")
    return _svg(width, height, parts)
