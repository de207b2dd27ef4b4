"""The compare widget: a sortable, filterable, paginated runs table; a diff of the selected runs;
charts; the table as a DataFrame or a CSV download.

The data (load, sort, filter, pages, selection, diff, chart data) is the table model
:class:`~mlops_nb.notebook.widgets.runs_table.RunsTable`; this module renders it, only the current
page, and wires the controls to it. The widget's state is its traits (mirroring the model's); the
controls and the seams (:meth:`~CompareWidget.sort_by`, :meth:`~CompareWidget.filter`,
:meth:`~CompareWidget.page`, :meth:`~CompareWidget.select`) drive the same state.
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections.abc import Iterable
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

from mlops_nb.format import MINUTES_FORMAT, duration, is_missing, local_time, number, short_time
from mlops_nb.notebook.session import current_session
from mlops_nb.notebook.widgets._render import (
    BORDER,
    FONT,
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
from mlops_nb.notebook.widgets.runs_table import LABELS, PAGE_SIZE, RunsTable, namespace
from mlops_nb.notebook.widgets.status import HOW_TO_START
from mlops_nb.stages import STAGES
from mlops_nb.store import Store, open_store

if TYPE_CHECKING:
    import pandas

WIDTHS = {"name": 150, "project": 100, "kind": 84, "status": 90, "start_time": 104, "duration": 72, "stages": 140,
          "gate": 92, "registry": 150}
NAMESPACE_WIDTHS = {"metrics": 86, "params": 92, "tags": 104}
#: Header colours: run columns, metrics, params, tags.
HEADER_COLOURS = {None: "#eaeef2", "metrics": "#ddf4ff", "params": "#fff8c5", "tags": "#fbefff"}
MAX_SCATTER_POINTS = 2000
CHECK_WIDTH = 30
#: The table model's state the widget mirrors as traits.
MIRRORED = ("project", "where", "error", "sort_column", "ascending", "current_page", "page_size", "columns", "selected",
            "history_metric", "scatter_param", "scatter_metric")


class CompareWidget(widgets.VBox):
    """Compare runs: see :func:`compare`. State is in the traits below; derived views are
    :attr:`rows`, :attr:`diff`, :attr:`chart_data` and :meth:`to_dataframe`."""

    project = traitlets.Unicode(None, allow_none=True, help="the project compared (None: every run)")
    where = traitlets.Unicode("", help="the filter in effect (the last one that parsed)")
    error = traitlets.Unicode("", help="why the last filter was refused ('' when it was not)")
    sort_column = traitlets.Unicode("start_time", help="the column the table is sorted by")
    ascending = traitlets.Bool(False)
    current_page = traitlets.Int(1, help="the page shown, from 1")
    page_size = traitlets.Int(PAGE_SIZE)
    columns = traitlets.List(traitlets.Unicode(), help="the columns shown, in order")
    selected = traitlets.List(traitlets.Int(), help="the run ids ticked for the diff and the charts")
    history_metric = traitlets.Unicode(None, allow_none=True, help="the metric drawn over steps")
    scatter_param = traitlets.Unicode(None, allow_none=True, help="x of the param-against-metric chart")
    scatter_metric = traitlets.Unicode(None, allow_none=True, help="y of the param-against-metric chart")

    def __init__(self, project: str | None = None, *, where: str | None = None,
                 store: Store | str | os.PathLike | None = None, page_size: int = PAGE_SIZE):
        self._busy = False
        self._row_ids: list[int] = []
        self.table = RunsTable(open_store(store), project, page_size=page_size)
        super().__init__()
        self.add_class("mnb-compare")
        self._sync()
        self._build()
        self._start_over()
        if where:
            self.filter(where)

    def _sync(self) -> None:
        """The table model's state into the traits, without their observers redrawing."""
        with self._quiet():
            for name in MIRRORED:
                setattr(self, name, getattr(self.table, name))

    def _start_over(self) -> None:
        """Default columns, charts and order for the loaded runs; no filter, no selection."""
        self.table.start_over()
        self._sync()
        with self._quiet():
            self._filter_box.value = ""
        self._build_chooser_options()
        self._render_all()

    def __repr__(self) -> str:
        scope = f"project {self.project!r}" if self.project else "every project"
        where = f", where {self.where!r}" if self.where else ""
        return (f"<CompareWidget {scope}: {self.total} of {len(self.table.frame)} runs{where}, sorted by "
                f"{self.sort_column} {'ascending' if self.ascending else 'descending'}, page {self.current_page}"
                f" of {self.pages}, selected {self.selected}>")

    # -- derived views, from the table model -----------------------------------------------------

    @property
    def available_columns(self) -> list[str]:
        """Every column the table can show: the run columns, then ``metrics.*``, ``params.*``, ``tags.*``."""
        return self.table.available_columns

    @property
    def total(self) -> int:
        """How many runs pass the filter."""
        return self.table.total

    @property
    def pages(self) -> int:
        return self.table.pages

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The current page as shown: ``run_id``, then each shown column's value (plain Python values)."""
        return self.table.rows

    @property
    def diff(self) -> dict[str, Any] | None:
        """The comparison of the selected runs (see :attr:`RunsTable.diff`); None with fewer than two."""
        return self.table.diff

    @property
    def chart_data(self) -> dict[str, Any]:
        """What the charts draw (see :attr:`RunsTable.chart_data`)."""
        return self.table.chart_data

    def to_dataframe(self) -> pandas.DataFrame:
        """What the table shows, every page: the filtered runs in the table's order, ``run_id`` and
        the shown columns (``stages`` comes with ``reached``, ``gate`` with ``gate_value``)."""
        return self.table.to_dataframe()

    def to_csv(self) -> str:
        """:meth:`to_dataframe` as CSV text (times in ISO 8601, UTC)."""
        return self.table.to_csv()

    # -- seams: the controls call these, and so can users and tests ------------------------------

    def sort_by(self, column: str, ascending: bool = True) -> None:
        """Sort the table by ``column`` (a column id such as ``metrics.f1``, or a key such as ``f1``
        when only one namespace has it); missing values go last either way."""
        self.table.sort_by(column, ascending)
        self._sync()
        self._render_table()

    def filter(self, expression: str | None) -> bool:
        """Keep the runs that ``expression`` (the ``where`` language of ``mnb.runs``) selects; empty
        or None shows every run. A bad expression sets :attr:`error` (shown under the filter box) and
        keeps the last good result. Returns whether the filter was applied."""
        applied = self.table.filter(expression)
        self._sync()
        with self._quiet():
            self._filter_box.value = (expression or "").strip()
        self._render_error()
        if applied:
            self._render_table()
            self._render_scatter()
        return applied

    def page(self, number: int) -> None:
        """Show page ``number`` (from 1; clamped to the pages there are)."""
        self.table.page(number)
        self._sync()
        self._render_table()

    def select(self, run_ids: Iterable[int]) -> None:
        """Tick exactly ``run_ids`` (two or more show the diff). Ids must be runs of this comparison."""
        self.table.select(run_ids)
        self._sync()
        self._on_selection()

    def choose_columns(self, columns: Iterable[str]) -> None:
        """Show ``columns`` (ids or unambiguous keys), in the table's canonical order."""
        self.table.choose_columns(columns)
        self._sync()
        self._render_columns()

    def refresh(self) -> None:
        """Query the store again (new runs, new metrics), keeping the filter, sort and selection."""
        if self.table.refresh():
            self._start_over()
            return
        self._sync()
        with self._quiet():
            self._filter_box.value = self.where
        self._build_chooser_options()
        self._render_all()

    @contextmanager
    def _quiet(self):
        """Set traits without their observers redrawing (the caller redraws once)."""
        busy, self._busy = self._busy, True
        try:
            yield
        finally:
            self._busy = busy

    @traitlets.validate("sort_column")
    def _check_sort_column(self, proposal: Any) -> str:
        if not hasattr(self, "table"):
            return proposal["value"]
        return self.table.resolve(proposal["value"])

    @traitlets.observe("project")
    def _project_changed(self, change: Any) -> None:
        if not self._busy and hasattr(self, "table"):
            self.table.project = change["new"]
            self.table.load()
            self._start_over()

    @traitlets.observe("sort_column", "ascending")
    def _sort_changed(self, change: Any) -> None:
        if not self._busy:
            self.sort_by(self.sort_column, self.ascending)

    @traitlets.observe("current_page", "page_size")
    def _page_changed(self, change: Any) -> None:
        if self._busy:
            return
        if change["name"] == "page_size":
            self.table.page_size = max(1, int(change["new"]))
            self._make_rows()
        self.page(self.current_page)

    @traitlets.observe("columns")
    def _columns_changed(self, change: Any) -> None:
        if not self._busy:
            self.choose_columns(self.columns)

    @traitlets.observe("selected")
    def _selected_changed(self, change: Any) -> None:
        if not self._busy:
            self.select(self.selected)

    @traitlets.observe("where")
    def _where_changed(self, change: Any) -> None:
        if not self._busy:
            self.filter(self.where)

    @traitlets.observe("history_metric", "scatter_param", "scatter_metric")
    def _charts_changed(self, change: Any) -> None:
        if self._busy or not hasattr(self, "_history_pick"):
            return
        setattr(self.table, change["name"], change["new"])
        with self._quiet():
            self._history_pick.value = self.history_metric
            self._param_pick.value = self.scatter_param
            self._metric_pick.value = self.scatter_metric
        if change["name"] == "history_metric":
            self._render_history()
        else:
            self._render_scatter()


    # -- widgets ---------------------------------------------------------------------------------

    def _build(self) -> None:
        W, L = widgets, widgets.Layout
        self._title = W.HTML(layout=L(margin="0 0 4px 0"))
        self._filter_box = W.Text(
            placeholder="filter: metrics.f1 > 0.8 and params.model = 'rf'   (Enter to apply)",
            continuous_update=False, layout=L(width="560px"))
        self._filter_box.add_class("mnb-filter")
        self._filter_box.observe(self._on_filter_text, "value")
        apply = W.Button(description="Filter", icon="filter", layout=L(width="86px"))
        apply.on_click(lambda _: self.filter(self._filter_box.value))
        clear = W.Button(description="Clear", layout=L(width="70px"))
        clear.on_click(lambda _: self.filter(""))
        reload = W.Button(description="Reload", icon="refresh", tooltip="read the store again",
                          layout=L(width="90px"))
        reload.on_click(lambda _: self.refresh())
        self._reload = reload
        self._error_html = W.HTML()
        self._error_html.add_class("mnb-filter-error")

        self._chooser = W.SelectMultiple(rows=10, layout=L(width="360px"))
        self._chooser.observe(self._on_chooser, "value")
        self._chooser_box = W.VBox([
            W.HTML(f'<span style="{FONT}font-size:12px;color:{MUTED}">Ctrl/Shift-click to pick several; '
                   "metrics, params and tags follow the run columns.</span>"),
            self._chooser], layout=L(display="none", margin="4px 0"))
        toggle = W.ToggleButton(description="Columns", icon="columns", layout=L(width="104px"))
        toggle.observe(lambda c: setattr(self._chooser_box.layout, "display", "flex" if c["new"] else "none"),
                       "value")
        csv_button = W.Button(description="Export CSV", icon="download", layout=L(width="116px"),
                              tooltip="prepare a CSV of every filtered run, in the table's order")
        csv_button.on_click(lambda _: self._render_download())
        self._csv_button = csv_button
        self._download = W.HTML(layout=L(margin="0 0 0 6px"))
        self._download.add_class("mnb-download")

        def pager_button(icon: str, tip: str, target) -> widgets.Button:
            button = W.Button(icon=icon, tooltip=tip, layout=L(width="36px"))
            button.on_click(lambda _: self.page(target()))
            return button

        self._pager_label = W.HTML(layout=L(margin="0 6px"))
        self._pager_label.add_class("mnb-pager-label")
        pager = W.HBox([
            pager_button("angle-double-left", "first page", lambda: 1),
            pager_button("angle-left", "previous page", lambda: self.current_page - 1),
            self._pager_label,
            pager_button("angle-right", "next page", lambda: self.current_page + 1),
            pager_button("angle-double-right", "last page", lambda: self.pages),
        ], layout=L(align_items="center", margin="0 0 0 auto"))

        self._sort_buttons: dict[str, widgets.Button] = {}
        self._header = W.HBox(layout=L(flex="0 0 auto", width="max-content"))
        self._header.add_class("mnb-header")
        self._no_rows = W.HTML()
        self._table = W.VBox(layout=L(overflow="auto hidden", width="100%", border=f"1px solid {BORDER}",
                                      padding="0 0 2px 0"))
        self._table.add_class("mnb-table")
        self._row_boxes: list[widgets.HBox] = []
        self._make_rows()

        self._diff_html = W.HTML()
        self._diff_html.add_class("mnb-diff")
        pick = dict(layout=L(width="250px"), style={"description_width": "52px"})
        self._history_pick = W.Dropdown(description="metric", **pick)
        self._history_pick.observe(lambda c: self._pick("history_metric", c), "value")
        self._param_pick = W.Dropdown(description="param", **pick)
        self._param_pick.observe(lambda c: self._pick("scatter_param", c), "value")
        self._metric_pick = W.Dropdown(description="metric", **pick)
        self._metric_pick.observe(lambda c: self._pick("scatter_metric", c), "value")
        self._history_html = W.HTML()
        self._history_html.add_class("mnb-history-chart")
        self._scatter_html = W.HTML()
        self._scatter_html.add_class("mnb-scatter-chart")
        charts = W.HBox([
            W.VBox([self._history_pick, self._history_html], layout=L(margin="0 16px 0 0")),
            W.VBox([W.HBox([self._param_pick, self._metric_pick]), self._scatter_html]),
        ], layout=L(flex_flow="row wrap"))
        self._empty = W.HTML()
        self._controls = [
            W.HBox([self._filter_box, apply, clear, reload], layout=L(align_items="center")),
            self._error_html,
            W.HBox([toggle, csv_button, self._download, pager], layout=L(align_items="center", width="100%")),
            self._chooser_box,
            self._table,
            W.HTML(f'<div style="{FONT}font-size:11px;color:{MUTED};margin:2px 0 0 2px">Click a header to sort '
                   "(again to reverse). Tick two or more runs to compare them. ★ marks the registry's champion."
                   "</div>"),
            self._diff_html,
            W.HTML(f'<div style="{FONT}margin:14px 0 4px 0;font-size:13px;font-weight:600">Charts</div>'),
            charts,
        ]
        self._build_chooser_options()

    def _make_rows(self) -> None:
        """A pool of ``page_size`` rows (a tick box and the cells), reused by every page."""
        W, L = widgets, widgets.Layout
        for box in self._row_boxes:
            box.close_all()
        self._row_boxes, self._checks, self._cells = [], [], []
        # Shared layouts and styles: a page of rows is three widgets per row, not eight.
        check_layout = L(width=f"{CHECK_WIDTH}px", margin="0", flex="0 0 auto")
        cell_layout = L(margin="0", flex="0 0 auto")
        row_layout = L(align_items="center", flex="0 0 auto", width="max-content")
        check_style, cell_style = W.Checkbox().style, W.HTML().style
        for i in range(self.page_size):
            check = W.Checkbox(value=False, indent=False, layout=check_layout, style=check_style)
            check.add_class("mnb-row-select")
            check.observe(lambda change, i=i: self._on_check(i, change), "value")
            cells = W.HTML(layout=cell_layout, style=cell_style)
            box = W.HBox([check, cells], layout=row_layout)
            box.add_class("mnb-row")
            self._row_boxes.append(box)
            self._checks.append(check)
            self._cells.append(cells)
        self._shown_rows = -1

    def _build_chooser_options(self) -> None:
        with self._quiet():
            self._chooser.options = [(self._label(c, full=True), c) for c in self.available_columns]
            self._chooser.value = tuple(c for c in self.columns if c in self.available_columns)
            metrics = self.table.known["metrics"]
            params = self.table.known["params"]
            self._history_pick.options = metrics
            self._metric_pick.options = metrics
            self._param_pick.options = params
            self._history_pick.value = self.history_metric if self.history_metric in metrics else None
            self._metric_pick.value = self.scatter_metric if self.scatter_metric in metrics else None
            self._param_pick.value = self.scatter_param if self.scatter_param in params else None

    def _label(self, column: str, *, full: bool = False) -> str:
        space = namespace(column)
        if space is None:
            return LABELS.get(column, column.replace("_", " "))
        key = column.split(".", 1)[1]
        if full:
            return f"{space[:-1]}: {key}"
        clash = sum(1 for ns in ("params", "metrics", "tags") if key in self.table.known[ns]) > 1
        return column if clash else key

    def _width(self, column: str) -> int:
        return WIDTHS.get(column) or NAMESPACE_WIDTHS.get(namespace(column) or "", 96)

    # -- events from the controls ----------------------------------------------------------------

    def _on_filter_text(self, change: Any) -> None:
        if not self._busy:
            self.filter(change["new"])

    def _on_chooser(self, change: Any) -> None:
        if not self._busy:
            self.choose_columns(change["new"])

    def _on_header(self, column: str) -> None:
        ascending = not self.ascending if column == self.sort_column else column not in ("start_time", "duration")
        self.sort_by(column, ascending)

    def _on_check(self, i: int, change: Any) -> None:
        if self._busy or i >= len(self._row_ids):
            return
        run_id = self._row_ids[i]
        chosen = [r for r in self.selected if r != run_id]
        if change["new"]:
            chosen.append(run_id)
        self.select(chosen)

    def _pick(self, trait: str, change: Any) -> None:
        if not self._busy and change["new"] != getattr(self, trait):
            setattr(self, trait, change["new"])

    def _on_selection(self) -> None:
        self._render_rows()
        self._render_diff()
        self._render_history()
        self._render_scatter()

    # -- rendering -------------------------------------------------------------------------------

    def _render_all(self) -> None:
        if self.table.frame.empty:
            where = f"in project <b>{esc(self.project)}</b>" if self.project else "in this store"
            self._empty.value = (
                f'<div style="{FONT}border:1px dashed {BORDER};border-radius:8px;padding:18px 20px;max-width:760px">'
                f'<div style="font-size:14px;font-weight:600">No runs {where} yet</div>'
                f'<div style="font-size:12.5px;margin-top:6px">{HOW_TO_START} Then run '
                f"<code>%mlops compare</code> again.</div>"
                f'<div style="font-size:11px;color:{MUTED};margin-top:6px">'
                f"store {esc(self.table.store.path)}</div></div>")
            self._render_title()
            self.children = [self._title, self._empty, self._reload]
            return
        self.children = [self._title, *self._controls]
        self._render_title()
        self._render_error()
        self._render_columns()
        self._render_diff()
        self._render_history()
        self._render_scatter()

    def _render_title(self) -> None:
        what = f"Runs of <b>{esc(self.project)}</b>" if self.project else "Runs"
        n = len(self.table.frame)
        self._title.value = (
            f'<div style="{FONT}font-size:15px;font-weight:600">{what} '
            f'<span style="font-size:12px;font-weight:400;color:{MUTED}">{n:,} run{"s" if n != 1 else ""} · '
            f"store {esc(self.table.store.path)}</span></div>")

    def _render_error(self) -> None:
        if not self.error:
            self._error_html.value = ""
            return
        kept = f"<code>{esc(self.where)}</code>" if self.where else "every run"
        self._error_html.value = (
            f'<div style="{FONT}border-left:3px solid {STATE_COLOURS["error"][0]};background:#ffebe9;'
            f'padding:6px 10px;margin:4px 0;font-size:12px;max-width:1000px">'
            f'<pre style="{MONO}margin:0;white-space:pre-wrap;color:#82071e;font-size:11.5px">{esc(self.error)}</pre>'
            f'<div style="color:{MUTED};margin-top:4px">Still showing the last good result: {kept}.</div></div>')

    def _render_columns(self) -> None:
        """Header buttons for the shown columns, then the rows."""
        buttons = [widgets.HTML(layout=widgets.Layout(width=f"{CHECK_WIDTH}px", margin="0", flex="0 0 auto"))]
        self._sort_buttons = {}
        for column in self.columns:
            button = widgets.Button(
                tooltip=f"sort by {column}",
                layout=widgets.Layout(width=f"{self._width(column)}px", height="30px", margin="0",
                                      padding="0 4px", flex="0 0 auto", border="0"))
            button.style.button_color = HEADER_COLOURS[namespace(column)]
            button.style.text_color = "#24292f"  # the header colours are light on either theme
            button.add_class("mnb-sort")
            button.add_class("mnb-sort-" + re.sub(r"[^A-Za-z0-9_-]", "-", column))
            button.on_click(lambda _, c=column: self._on_header(c))
            self._sort_buttons[column] = button
            buttons.append(button)
        old = self._header.children
        self._header.children = buttons
        for widget in old:
            widget.close()
        with self._quiet():
            self._chooser.value = tuple(self.columns)
        self._render_table()

    def _render_table(self) -> None:
        for column, button in self._sort_buttons.items():
            arrow = (" ▲" if self.ascending else " ▼") if column == self.sort_column else ""
            button.description = self._label(column) + arrow
            button.style.font_weight = "bold" if column == self.sort_column else ""
        self._render_rows()
        self._render_pager()
        self._download.value = ""

    def _render_rows(self) -> None:
        positions = self.table.page_positions()
        records = self.table.frame.iloc[positions].to_dict("records")
        selected = set(self.selected)
        self._row_ids = [int(record["run_id"]) for record in records]
        with self._quiet():
            for i, record in enumerate(records):
                run_id = self._row_ids[i]
                self._checks[i].value = run_id in selected
                html = self._row_html(record, run_id in selected, i)
                if self._cells[i].value != html:
                    self._cells[i].value = html
        if self._shown_rows != len(records):
            self._shown_rows = len(records)
            self._table.children = [self._header, *self._row_boxes[:len(records)], self._no_rows]
        if records:
            self._no_rows.value = ""
        else:
            self._no_rows.value = (f'<div style="{FONT}padding:14px 12px;font-size:12.5px;color:{MUTED}">'
                                   f"No runs match <code>{esc(self.where)}</code>. Change the filter or press "
                                   "Clear.</div>")

    def _row_html(self, record: dict, selected: bool, i: int) -> str:
        background = "#ddf4ff" if selected else ("#ffffff" if i % 2 == 0 else "#f6f8fa")
        cells = []
        for column in self.columns:
            align = "right" if column in ("duration",) or namespace(column) == "metrics" else "left"
            content, title = self._cell(column, record)
            if isinstance(record.get(column), (int, float)) and not isinstance(record.get(column), bool):
                align = "right" if column not in ("name", "stages", "gate") else align
            tip = f' title="{esc(title)}"' if title else ""
            cells.append(f'<div{tip} style="width:{self._width(column)}px;flex:none;box-sizing:border-box;'
                         f'padding:0 8px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;'
                         f'text-align:{align}">{content}</div>')
        return (f'<div class="mnb-cells" data-run="{record["run_id"]}" style="{FONT}display:flex;'
                f'align-items:center;height:30px;font-size:12px;color:#24292f;background:{background};'
                f'border-top:1px solid #eaeef2">{"".join(cells)}</div>')

    def _cell(self, column: str, record: dict) -> tuple[str, str]:
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

    def _render_pager(self) -> None:
        total, n = self.total, len(self.table.frame)
        first = (self.current_page - 1) * self.page_size + 1 if total else 0
        last = min(total, self.current_page * self.page_size)
        filtered = f" (filtered from {n:,})" if total != n else ""
        self._pager_label.value = (
            f'<span style="{FONT}font-size:12px">page <b>{self.current_page}</b> of {self.pages} · '
            f"runs {first:,}-{last:,} of {total:,}{filtered}</span>")

    def _render_download(self) -> None:
        text = self.to_csv()
        data = base64.b64encode(text.encode("utf-8")).decode("ascii")
        name = f"{self.project or 'runs'}-runs.csv"
        self._download.value = (
            f'<a download="{esc(name)}" href="data:text/csv;charset=utf-8;base64,{data}" '
            f'style="{FONT}font-size:12px;color:#0969da;font-weight:600">⬇ {esc(name)}</a>'
            f'<span style="{FONT}font-size:11px;color:{MUTED}"> {self.total:,} rows, {len(text) / 1024:,.0f} KB</span>')

    def _render_diff(self) -> None:
        diff = self.diff
        if diff is None:
            n = len(self.selected)
            more = "" if n == 0 else f" ({n} ticked: tick one more)"
            self._diff_html.value = (f'<div style="{FONT}margin:14px 0 4px 0;font-size:13px;font-weight:600">Diff'
                                     f'</div><div style="{FONT}font-size:12px;color:{MUTED}">Tick two or more runs '
                                     f"to compare their params, metrics, stage sources and data{more}.</div>")
            return
        ids, names = diff["runs"], diff["names"]
        heads = ["", *(f"{esc(names[r])} <span style='color:{MUTED};font-weight:400'>#{r}</span>" for r in ids)]
        parts = []
        differing = [p for p in diff["params"] if p["differs"]]
        same = [p for p in diff["params"] if not p["differs"]]
        missing = f'<span style="color:{MUTED}">–</span>'
        if differing:
            rows = [[f"<b>{esc(p['key'])}</b>", *(esc(number(p["values"][r])) or missing for r in ids)]
                    for p in differing]
            body = table(heads, rows, row_styles=["background:#fff8c5"] * len(rows))
        else:
            body = f'<div style="font-size:12px;color:{MUTED}">No param differs.</div>'
        if same:
            listed = ", ".join(f"{p['key']}={number(p['values'][ids[0]])}" for p in same[:12])
            listed += ", …" if len(same) > 12 else ""
            body += (f'<div style="font-size:11.5px;color:{MUTED};margin:2px 0 0 2px">{len(same)} identical: '
                     f"{esc(listed)}</div>")
        parts.append(section("Params", body, note=f"{len(differing)} differ"))
        if diff["metrics"]:
            rows = []
            for m in diff["metrics"]:
                cells = [f"<b>{esc(m['key'])}</b> <span style='color:{MUTED}'>"
                         f"{'↓' if m['lower_is_better'] else '↑'}</span>"]
                for r in ids:
                    text = esc(number(m["values"][r])) or missing
                    if r in m["best"]:
                        text = f'<span style="color:#1a7f37;font-weight:700">★ {text}</span>'
                    cells.append(text)
                rows.append(cells)
            parts.append(section("Metrics", table(heads, rows, align=["left", *["right"] * len(ids)]),
                                 note="★ best (↑ higher is better, ↓ lower)"))
        else:
            parts.append(section("Metrics", f'<div style="font-size:12px;color:{MUTED}">No metrics logged.</div>'))
        data = diff["data"]
        if data["match"] is None:
            verdict = f'<span style="color:{MUTED}">no data stage recorded in these runs</span>'
            rows_html = ""
        else:
            verdict = (badge("✓ data fingerprints match", "passed") if data["match"]
                       else badge("✗ data differs: " + ", ".join(data["differ"]), "failed"))
            rows = [[f"<b>{esc(name)}</b>", *(f'<span style="{MONO}font-size:11px">{esc((fps.get(r) or "-")[:12])}'
                                              "</span>" for r in ids)]
                    for name, fps in data["frames"].items()]
            rows_html = table(heads, rows)
        parts.append(section("Data", f"<div>{verdict}</div>{rows_html}"))
        blocks = []
        for source in diff["sources"]:
            if source["same"]:
                blocks.append(f'<div style="font-size:12px;margin:3px 0"><b>{esc(source["stage"])}</b> '
                              f'<span style="color:#1a7f37">identical</span></div>')
                continue
            for other, text in source["diffs"].items():
                if not text:
                    continue
                blocks.append(f'<div style="font-size:12px;margin:8px 0 3px 0"><b>{esc(source["stage"])}</b> '
                              f'<span style="color:{MUTED}">{esc(names[ids[0]])} → {esc(names[other])}</span></div>'
                              + unified_diff_html(text))
        parts.append(section("Stage sources", "".join(blocks) or
                             f'<div style="font-size:12px;color:{MUTED}">No stage recorded in these runs.</div>',
                             note=f"latest attempt of each stage, against {esc(names[ids[0]])}"))
        self._diff_html.value = (f'<div style="{FONT}color:#24292f;background:#ffffff;max-width:1100px;'
                                 f'border:1px solid {BORDER};border-radius:8px;padding:2px 14px 10px 14px;'
                                 f'margin-top:10px">'
                                 f'<div style="margin:14px 0 4px 0;font-size:14px;font-weight:600">Diff of '
                                 f"{len(ids)} runs</div>{''.join(parts)}</div>")

    def _render_history(self) -> None:
        metric = self.history_metric
        if not metric:
            self._history_html.value = placeholder("no metrics logged")
            return
        series = self.table.history_series()
        if not self.selected:
            self._history_html.value = placeholder(f"tick runs to draw {metric} over steps")
            return
        if not series:
            self._history_html.value = placeholder(f"the ticked runs have no {metric}")
            return
        names = [self.table.names[r] for r in self.selected]
        named = {(n if names.count(n) == 1 else f"{n} #{r}"): series.get(r, [])  # colours as in the scatter
                 for n, r in zip(names, self.selected, strict=True)}
        self._history_html.value = line_chart(named, title=f"{metric} over steps", y_title=metric)

    def _render_scatter(self) -> None:
        points = self.table.scatter_points()
        param, metric = points["param"], points["metric"]
        if not param or not metric:
            self._scatter_html.value = placeholder("log params and metrics to draw one against the other")
            return
        chosen = points["points"]
        note = ""
        if len(chosen) > MAX_SCATTER_POINTS:
            step = math.ceil(len(chosen) / MAX_SCATTER_POINTS)
            selected = set(self.selected)
            chosen = [p for i, p in enumerate(chosen) if i % step == 0 or p[0] in selected]
            note = f"every {step}th of {len(points['points']):,} runs"
        colour = {r: i for i, r in enumerate(self.selected)}  # as in the history chart
        drawn = [(x, y, self.table.names.get(r, str(r)), colour.get(r)) for r, x, y in chosen]
        self._scatter_html.value = scatter_chart(
            drawn, title=f"{metric} against {param}", x_title=param, y_title=metric, note=note)


def compare(project: str | None = None, *, where: str | None = None,
            store: Store | str | os.PathLike | None = None) -> CompareWidget:
    """A widget comparing the runs of ``project`` (every run when None).

    ``where``: a filter in the language of ``mnb.runs`` (``"metrics.f1 > 0.8"``), editable in the
    widget. ``store``: the store file (default: the notebook session's, else ``$MLOPS_NB_STORE`` or
    ``./mlops.db``). Drive it from code with ``sort_by``, ``filter``, ``page`` and ``select``; read it
    with ``rows``, ``diff``, ``chart_data`` and ``to_dataframe()``.
    """
    if store is None:
        session = current_session()
        if session is not None:
            store = session.run.store if session.run is not None else session.store
    return CompareWidget(project, where=where, store=store)
