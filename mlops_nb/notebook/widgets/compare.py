"""The compare widget: a sortable, filterable, paginated runs table; a diff of the selected runs;
charts; the table as a DataFrame or a CSV download.

The data (load, sort, filter, pages, selection, diff, chart data) is the table model
:class:`~mlops_nb.notebook.widgets.runs_table.RunsTable`; what each panel shows is written by
:mod:`~mlops_nb.notebook.widgets.compare_render`. This module wires the controls to the model and
puts the rendered text in the panels, only for the current page. The widget's state is its traits:
the model's state (mirrored) and what each panel shows (``header``, ``rows_html``, ``pager``,
``diff_html``...). The controls and the seams (:meth:`~CompareWidget.sort_by`,
:meth:`~CompareWidget.click_header`, :meth:`~CompareWidget.filter`, :meth:`~CompareWidget.page`,
:meth:`~CompareWidget.select`, :meth:`~CompareWidget.tick`, :meth:`~CompareWidget.download_csv`)
drive the same state.

The widget only reads: a store it opens itself is opened read-only (a store file that does not exist
yet is not created; the widget says how to record a run, and Reload looks again).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

from mlops_nb.notebook.session import current_session
from mlops_nb.notebook.widgets import compare_render as render
from mlops_nb.notebook.widgets._render import BORDER
from mlops_nb.notebook.widgets.runs_table import PAGE_SIZE, RunsTable, namespace
from mlops_nb.store import Store, open_store, resolve_path

if TYPE_CHECKING:
    import pandas

#: The table model's state the widget mirrors as traits.
MIRRORED = ("project", "where", "error", "sort_column", "ascending", "current_page", "page_size", "columns", "selected",
            "history_metric", "scatter_param", "scatter_metric")
#: Columns a first header click sorts descending (newest, longest first); the others ascending.
DESCENDING_FIRST = ("start_time", "duration")


def _read_only(store: Store | str | os.PathLike | None) -> Store | None:
    """``store`` opened for reading (a :class:`Store` is used as given); None while no store file
    exists there yet."""
    if isinstance(store, Store):
        return store
    path = resolve_path(store)
    return open_store(path, readonly=True) if path.exists() else None


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

    # What the panels show (read-only: the widget sets them when it redraws). Observe them to follow
    # the widget, or put one in a report (IPython.display.HTML(widget.diff_html)).
    header = traitlets.List(traitlets.Unicode(), read_only=True,
                            help="each shown column's header; the sorted one ends with ▲ (ascending) or ▼")
    rows_html = traitlets.List(traitlets.Unicode(), read_only=True, help="the rows of the page shown, as HTML")
    pager = traitlets.Unicode("", read_only=True, help="the pager: 'page 1 of 2 · runs 1-25 of 30'")
    error_html = traitlets.Unicode("", read_only=True, help="under the filter box: why it was refused")
    empty_html = traitlets.Unicode("", read_only=True,
                                   help="why the table shows no row (no run recorded, or none matches the filter)")
    diff_html = traitlets.Unicode("", read_only=True, help="the diff of the ticked runs (or how to get one)")
    history_svg = traitlets.Unicode("", read_only=True, help="the chart of the history metric over steps")
    scatter_svg = traitlets.Unicode("", read_only=True, help="the chart of the scatter param against its metric")
    download_html = traitlets.Unicode("", read_only=True, help="the CSV download link ('' until Export CSV)")

    def __init__(self, project: str | None = None, *, where: str | None = None,
                 store: Store | str | os.PathLike | None = None, page_size: int = PAGE_SIZE):
        self._busy = False
        self._row_ids: list[int] = []
        self._store_arg = store
        opened = _read_only(store)
        self._store_path = opened.path if opened is not None else resolve_path(store)
        self.table = RunsTable(opened, project, page_size=page_size)
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

    def click_header(self, column: str) -> None:
        """Sort as a click on ``column``'s header does: the other way round when the table is already
        sorted by it; else ascending (descending for ``start_time`` and ``duration``: newest, longest
        first)."""
        column = self.table.resolve(column)
        ascending = not self.ascending if column == self.sort_column else column not in DESCENDING_FIRST
        self.sort_by(column, ascending)

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

    def tick(self, run_id: int, ticked: bool = True) -> None:
        """Tick (or untick) one run's box, as a click on it does: the selection keeps the order runs
        were ticked in, and the diff compares against the first one."""
        chosen = [r for r in self.selected if r != int(run_id)]
        if ticked:
            chosen.append(int(run_id))
        self.select(chosen)

    def choose_columns(self, columns: Iterable[str]) -> None:
        """Show ``columns`` (ids or unambiguous keys), in the table's canonical order."""
        self.table.choose_columns(columns)
        self._sync()
        self._render_columns()

    def download_csv(self) -> None:
        """What Export CSV does: put a link that saves :meth:`to_csv` (every filtered run, in the
        table's order) in :attr:`download_html`. The link goes when the table changes."""
        text = self.to_csv()
        self.set_trait("download_html", render.download_html(f"{self.project or 'runs'}-runs.csv", text, self.total))

    def refresh(self) -> None:
        """Query the store again (new runs, new metrics), keeping the filter, sort and selection."""
        if self.table.store is None:  # no store file when the widget was made: look again
            self.table.store = _read_only(self._store_arg)
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

    # -- the controls ----------------------------------------------------------------------------

    def _panel(self, trait: str, css_class: str | None = None, **layout: str) -> widgets.HTML:
        """An HTML widget that shows the trait ``trait``."""
        panel = widgets.HTML(layout=widgets.Layout(**layout))
        if css_class:
            panel.add_class(css_class)
        traitlets.dlink((self, trait), (panel, "value"))
        return panel

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
        self._reload = W.Button(description="Reload", icon="refresh", tooltip="read the store again",
                                layout=L(width="90px"))
        self._reload.on_click(lambda _: self.refresh())
        error = self._panel("error_html", "mnb-filter-error")

        self._chooser = W.SelectMultiple(rows=10, layout=L(width="360px"))
        self._chooser.observe(self._on_chooser, "value")
        self._chooser_box = W.VBox([W.HTML(render.CHOOSER_HINT), self._chooser],
                                   layout=L(display="none", margin="4px 0"))
        toggle = W.ToggleButton(description="Columns", icon="columns", layout=L(width="104px"))
        toggle.observe(lambda c: setattr(self._chooser_box.layout, "display", "flex" if c["new"] else "none"),
                       "value")
        csv_button = W.Button(description="Export CSV", icon="download", layout=L(width="116px"),
                              tooltip="prepare a CSV of every filtered run, in the table's order")
        csv_button.on_click(lambda _: self.download_csv())
        download = self._panel("download_html", "mnb-download", margin="0 0 0 6px")

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
        self._no_rows = self._panel("empty_html")
        self._table = W.VBox(layout=L(overflow="auto hidden", width="100%", border=f"1px solid {BORDER}",
                                      padding="0 0 2px 0"))
        self._table.add_class("mnb-table")
        self._row_boxes: list[widgets.HBox] = []
        self._make_rows()

        pick = dict(layout=L(width="250px"), style={"description_width": "52px"})
        self._history_pick = W.Dropdown(description="metric", **pick)
        self._history_pick.observe(lambda c: self._pick("history_metric", c), "value")
        self._param_pick = W.Dropdown(description="param", **pick)
        self._param_pick.observe(lambda c: self._pick("scatter_param", c), "value")
        self._metric_pick = W.Dropdown(description="metric", **pick)
        self._metric_pick.observe(lambda c: self._pick("scatter_metric", c), "value")
        charts = W.HBox([
            W.VBox([self._history_pick, self._panel("history_svg", "mnb-history-chart")],
                   layout=L(margin="0 16px 0 0")),
            W.VBox([W.HBox([self._param_pick, self._metric_pick]), self._panel("scatter_svg", "mnb-scatter-chart")]),
        ], layout=L(flex_flow="row wrap"))
        self._empty = self._panel("empty_html")
        self._controls = [
            W.HBox([self._filter_box, apply, clear, self._reload], layout=L(align_items="center")),
            error,
            W.HBox([toggle, csv_button, download, pager], layout=L(align_items="center", width="100%")),
            self._chooser_box,
            self._table,
            W.HTML(render.HINT),
            self._panel("diff_html", "mnb-diff"),
            W.HTML(render.CHARTS_HEADING),
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
        check_layout = L(width=f"{render.CHECK_WIDTH}px", margin="0", flex="0 0 auto")
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
        known = self.table.known
        with self._quiet():
            self._chooser.options = [(render.column_label(c, known, full=True), c) for c in self.available_columns]
            self._chooser.value = tuple(c for c in self.columns if c in self.available_columns)
            metrics, params = known["metrics"], known["params"]
            self._history_pick.options = metrics
            self._metric_pick.options = metrics
            self._param_pick.options = params
            self._history_pick.value = self.history_metric if self.history_metric in metrics else None
            self._metric_pick.value = self.scatter_metric if self.scatter_metric in metrics else None
            self._param_pick.value = self.scatter_param if self.scatter_param in params else None

    # -- events from the controls ----------------------------------------------------------------

    def _on_filter_text(self, change: Any) -> None:
        if not self._busy:
            self.filter(change["new"])

    def _on_chooser(self, change: Any) -> None:
        if not self._busy:
            self.choose_columns(change["new"])

    def _on_check(self, i: int, change: Any) -> None:
        if not self._busy and i < len(self._row_ids):
            self.tick(self._row_ids[i], change["new"])

    def _pick(self, trait: str, change: Any) -> None:
        if not self._busy and change["new"] != getattr(self, trait):
            setattr(self, trait, change["new"])

    def _on_selection(self) -> None:
        self._render_rows()
        self._render_diff()
        self._render_history()
        self._render_scatter()

    # -- drawing: the rendered text into the traits and the controls -----------------------------

    def _render_all(self) -> None:
        self._title.value = render.title_html(self.project, len(self.table.frame), self._store_path)
        if self.table.frame.empty:
            self.set_trait("header", [])
            self.set_trait("rows_html", [])
            self.set_trait("pager", "")
            self.set_trait("empty_html", render.no_store_runs_html(self.project, self._store_path))
            self.children = [self._title, self._empty, self._reload]
            return
        self.children = [self._title, *self._controls]
        self._render_error()
        self._render_columns()
        self._render_diff()
        self._render_history()
        self._render_scatter()

    def _render_error(self) -> None:
        self.set_trait("error_html", render.error_html(self.error, self.where))

    def _render_columns(self) -> None:
        """Header buttons for the shown columns, then the rows."""
        buttons = [widgets.HTML(layout=widgets.Layout(width=f"{render.CHECK_WIDTH}px", margin="0", flex="0 0 auto"))]
        self._sort_buttons = {}
        for column in self.columns:
            button = widgets.Button(
                tooltip=f"sort by {column}",
                layout=widgets.Layout(width=f"{render.column_width(column)}px", height="30px", margin="0",
                                      padding="0 4px", flex="0 0 auto", border="0"))
            button.style.button_color = render.HEADER_COLOURS[namespace(column)]
            button.style.text_color = "#24292f"  # the header colours are light on either theme
            button.add_class("mnb-sort")
            button.add_class("mnb-sort-" + re.sub(r"[^A-Za-z0-9_-]", "-", column))
            button.on_click(lambda _, c=column: self.click_header(c))
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
        if self.table.frame.empty:  # no table: the panel saying how to record a run stays
            return
        labels = render.header_labels(self.columns, self.table.known, self.sort_column, self.ascending)
        self.set_trait("header", labels)
        for (column, button), label in zip(self._sort_buttons.items(), labels, strict=True):
            button.description = label
            button.style.font_weight = "bold" if column == self.sort_column else ""
        self._render_rows()
        pager = render.pager_text(self.current_page, self.pages, self.page_size, self.total, len(self.table.frame))
        self.set_trait("pager", pager)
        self._pager_label.value = render.pager_html(pager)
        self.set_trait("download_html", "")  # a link to a CSV of another table is not left behind

    def _render_rows(self) -> None:
        records = self.table.frame.iloc[self.table.page_positions()].to_dict("records")
        selected = set(self.selected)
        self._row_ids = [int(record["run_id"]) for record in records]
        shown = [render.row_html(record, self.columns, selected=run_id in selected, index=i)
                 for i, (record, run_id) in enumerate(zip(records, self._row_ids, strict=True))]
        self.set_trait("rows_html", shown)
        with self._quiet():
            for i, html in enumerate(shown):
                self._checks[i].value = self._row_ids[i] in selected
                if self._cells[i].value != html:
                    self._cells[i].value = html
        if self._shown_rows != len(records):
            self._shown_rows = len(records)
            self._table.children = [self._header, *self._row_boxes[:len(records)], self._no_rows]
        self.set_trait("empty_html", "" if records else render.no_match_html(self.where))

    def _render_diff(self) -> None:
        self.set_trait("diff_html", render.diff_html(self.diff, len(self.selected)))

    def _render_history(self) -> None:
        series = self.table.history_series()
        self.set_trait("history_svg", render.history_svg(self.history_metric, self.selected, series, self.table.names))

    def _render_scatter(self) -> None:
        svg = render.scatter_svg(self.table.scatter_points(), self.selected, self.table.names)
        self.set_trait("scatter_svg", svg)


def compare(project: str | None = None, *, where: str | None = None,
            store: Store | str | os.PathLike | None = None) -> CompareWidget:
    """A widget comparing the runs of ``project`` (every run when None).

    ``where``: a filter in the language of ``mnb.runs`` (``"metrics.f1 > 0.8"``), editable in the
    widget. ``store``: the store file (default: the notebook session's, else ``$MLOPS_NB_STORE`` or
    ``./mlops.db``), read only. Drive it from code with ``sort_by``, ``click_header``, ``filter``,
    ``page``, ``select``, ``tick`` and ``download_csv``; read it with ``rows``, ``diff``,
    ``chart_data`` and ``to_dataframe()``, and what it shows with its traits (``header``,
    ``rows_html``, ``pager``, ``diff_html``, ``history_svg``, ``scatter_svg``...).
    """
    if store is None:
        session = current_session()
        if session is not None:
            store = session.run.store if session.run is not None else session.store
    return CompareWidget(project, where=where, store=store)
