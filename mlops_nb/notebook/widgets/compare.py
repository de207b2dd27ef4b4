"""The compare widget: a sortable, filterable, paginated runs table; a diff of the selected runs;
charts; the table as a DataFrame or a CSV download.

Built for 10,000 runs: the store is queried once (:meth:`Store.runs_frame` and the one-query
:meth:`Store.runs_overview`); sorting and paging happen in pandas on that frame, filtering asks the
store for the matching run ids (so the ``where`` language means exactly what it means in
``mnb.runs``), and only the current page is rendered. The widget's state is its traits; the
controls and the seams (:meth:`~CompareWidget.sort_by`, :meth:`~CompareWidget.filter`,
:meth:`~CompareWidget.page`, :meth:`~CompareWidget.select`) drive the same state.
"""

from __future__ import annotations

import base64
import difflib
import math
import os
import re
from collections.abc import Iterable
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

from mlops_nb.errors import FilterError, InvalidValue
from mlops_nb.format import MINUTES_FORMAT, duration, is_missing, local_time, number, short_time
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
from mlops_nb.notebook.widgets.status import HOW_TO_START, current_session
from mlops_nb.stages import STAGES
from mlops_nb.store import Store, open_store

if TYPE_CHECKING:
    import numpy
    import pandas

#: Run columns the table can show, in their order; metric, param and tag columns follow.
BASE_COLUMNS = ("name", "project", "kind", "status", "start_time", "duration", "stages", "gate", "registry")
LABELS = {"name": "run", "start_time": "start", "stages": "stages reached", "registry": "registry"}
WIDTHS = {"name": 150, "project": 100, "kind": 84, "status": 90, "start_time": 104, "duration": 72, "stages": 140,
          "gate": 92, "registry": 150}
NAMESPACE_WIDTHS = {"metrics": 86, "params": 92, "tags": 104}
#: Header colours: run columns, metrics, params, tags.
HEADER_COLOURS = {None: "#eaeef2", "metrics": "#ddf4ff", "params": "#fff8c5", "tags": "#fbefff"}
#: Extra frame columns exported with a visible one.
COMPANIONS = {"stages": ("reached",), "gate": ("gate_value",)}
PAGE_SIZE = 25
MAX_SCATTER_POINTS = 2000
CHECK_WIDTH = 30
_LOWER_IS_BETTER = re.compile(r"(loss|error|err|mse|mae|rmse|mape|logloss|latency|time|duration)", re.I)


def _namespace(column: str) -> str | None:
    head, dot, _ = column.partition(".")
    return head if dot and head in ("params", "metrics", "tags") else None


def lower_is_better(metric: str, requirement_op: str | None = None) -> bool:
    """Whether a smaller ``metric`` is better: the requirement's direction when there is one
    (``rmse <= 3``), else the name (loss, error, mse, mae, rmse, time...)."""
    if requirement_op in ("<", "<="):
        return True
    if requirement_op in (">", ">=", "=", "=="):
        return False
    return bool(_LOWER_IS_BETTER.search(metric))


def _plain(value: Any) -> Any:
    """A frame value as a plain Python value (NaN and NA as None)."""
    if is_missing(value):
        return None
    if hasattr(value, "item") and not hasattr(value, "tzinfo"):
        return value.item()
    return value


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
        self._store = open_store(store)
        self._busy = False
        self._keys: dict[str, Any] = {}
        self._diff: dict | None = None
        self._diff_for: tuple | None = None
        self._histories: dict | None = None
        self._histories_for: tuple | None = None
        self._row_ids: list[int] = []
        super().__init__()
        self.add_class("mnb-compare")
        with self._quiet():
            self.project = project
            self.page_size = max(1, int(page_size))
        self._load()
        self._build()
        self._start_over()
        if where:
            self.filter(where)

    def _start_over(self) -> None:
        """Default columns, charts and order for the loaded frame; no filter, no selection."""
        with self._quiet():
            self.columns = self._default_columns()
            self.history_metric, self.scatter_param, self.scatter_metric = self._default_charts()
            self.sort_column, self.ascending, self.current_page = "start_time", False, 1
            self.where, self.error, self.selected = "", "", []
            self._filter_box.value = ""
        self._diff_for = self._histories_for = None
        self._build_chooser_options()
        self._apply_order()
        self._render_all()

    def __repr__(self) -> str:
        scope = f"project {self.project!r}" if self.project else "every project"
        where = f", where {self.where!r}" if self.where else ""
        return (f"<CompareWidget {scope}: {self.total} of {len(self._frame)} runs{where}, sorted by "
                f"{self.sort_column} {'ascending' if self.ascending else 'descending'}, page {self.current_page}"
                f" of {self.pages}, selected {self.selected}>")

    # -- data ------------------------------------------------------------------------------------

    def _load(self) -> None:
        """Query the store once: every run of the project with its params, metrics, tags and overview."""
        frame = self._store.runs_frame(self.project)
        overview = self._store.runs_overview(self.project)
        frame = frame.merge(overview, on="run_id", how="left")
        frame["duration"] = (frame["end_time"] - frame["start_time"]).dt.total_seconds()
        frame["stages"] = frame["stages"].fillna(0).astype("int64")
        self._frame = frame
        self._keys = {}
        self._known = {ns: [c.split(".", 1)[1] for c in frame.columns if _namespace(c) == ns]
                       for ns in ("params", "metrics", "tags")}
        self._mask: numpy.ndarray | None = None
        self._names = dict(zip(frame["run_id"].tolist(), frame["name"].tolist(), strict=True))
        self._order = frame.index.to_numpy()

    @property
    def available_columns(self) -> list[str]:
        """Every column the table can show: the run columns, then ``metrics.*``, ``params.*``, ``tags.*``."""
        frame = self._frame
        base = [c for c in BASE_COLUMNS if c in frame.columns]
        return [*base, *(c for ns in ("metrics", "params", "tags") for c in frame.columns if _namespace(c) == ns)]

    def _default_columns(self) -> list[str]:
        frame = self._frame
        chosen = ["name", "status", "start_time", "duration", "stages", "gate"]
        if self.project is None and frame["project"].nunique() > 1:
            chosen.insert(1, "project")
        if frame["registry"].notna().any():
            chosen.append("registry")
        wanted = frame["req_metric"].dropna().value_counts().index.tolist()
        metrics = [f"metrics.{m}" for m in wanted if f"metrics.{m}" in frame.columns]
        metrics += [c for c in frame.columns if _namespace(c) == "metrics" and c not in metrics]
        params = [c for c in frame.columns if _namespace(c) == "params"]
        varying = [c for c in params if frame[c].nunique(dropna=True) > 1]
        params = varying + [c for c in params if c not in varying]
        return chosen + metrics[:4] + params[:3]

    def _default_charts(self) -> tuple[str | None, str | None, str | None]:
        metrics = [c.split(".", 1)[1] for c in self.columns if _namespace(c) == "metrics"] or self._known["metrics"]
        params = [c.split(".", 1)[1] for c in self.columns if _namespace(c) == "params"] or self._known["params"]
        metric = metrics[0] if metrics else None
        return metric, (params[0] if params else None), metric

    def _sort_key(self, column: str) -> pandas.Series:
        """A sortable version of ``column`` (cached): numbers as numbers, text case-insensitive."""
        key = self._keys.get(column)
        if key is not None:
            return key
        import pandas as pd

        frame = self._frame
        if column == "gate":
            key = frame["gate_value"]
        elif column in ("start_time", "duration", "stages", "run_id"):
            key = frame[column]
        else:
            values = frame[column]
            if values.dtype == object or pd.api.types.is_string_dtype(values):
                numeric = pd.to_numeric(values, errors="coerce")
                present = values.notna()
                all_numbers = numeric[present].notna().all()
                key = numeric if all_numbers else values.astype(str).str.lower().where(present)
            else:
                key = values
        self._keys[column] = key
        return key

    def _apply_order(self) -> None:
        """Filter mask + sort key -> the order of the filtered runs (frame positions)."""
        key = self._sort_key(self.sort_column)
        if self._mask is not None:
            key = key[self._mask]
        self._order = key.sort_values(ascending=self.ascending, na_position="last", kind="stable").index.to_numpy()

    @property
    def total(self) -> int:
        """How many runs pass the filter."""
        return len(self._order)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    def _page_positions(self) -> numpy.ndarray:
        start = (self.current_page - 1) * self.page_size
        return self._order[start:start + self.page_size]

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The current page as shown: ``run_id``, then each shown column's value (plain Python values)."""
        positions = self._page_positions()
        part = self._frame.iloc[positions]
        out = []
        for record in part[["run_id", *self.columns]].to_dict("records"):
            out.append({k: _plain(v) for k, v in record.items()})
        return out

    def to_dataframe(self) -> pandas.DataFrame:
        """What the table shows, every page: the filtered runs in the table's order, ``run_id`` and
        the shown columns (``stages`` comes with ``reached``, ``gate`` with ``gate_value``)."""
        columns = ["run_id"]
        for column in self.columns:
            columns.append(column)
            columns.extend(COMPANIONS.get(column, ()))
        return self._frame[columns].iloc[self._order].reset_index(drop=True)

    def to_csv(self) -> str:
        """:meth:`to_dataframe` as CSV text (times in ISO 8601, UTC)."""
        return self.to_dataframe().to_csv(index=False)

    # -- seams: the controls call these, and so can users and tests ------------------------------

    def sort_by(self, column: str, ascending: bool = True) -> None:
        """Sort the table by ``column`` (a column id such as ``metrics.f1``, or a key such as ``f1``
        when only one namespace has it); missing values go last either way."""
        column = self._resolve(column)
        with self._quiet():
            self.sort_column = column
            self.ascending = bool(ascending)
            self.current_page = 1
        self._apply_order()
        self._render_table()

    def filter(self, expression: str | None) -> bool:
        """Keep the runs that ``expression`` (the ``where`` language of ``mnb.runs``) selects; empty
        or None shows every run. A bad expression sets :attr:`error` (shown under the filter box) and
        keeps the last good result. Returns whether the filter was applied."""
        import numpy as np

        text = (expression or "").strip()
        try:
            ids = self._store.run_ids(self.project, text, known=self._known) if text else None
        except FilterError as exc:
            with self._quiet():
                self.error = str(exc)
                self._filter_box.value = text
            self._render_error()
            return False
        with self._quiet():
            self.error = ""
            self.where = text
            self._filter_box.value = text
            self.current_page = 1
        self._mask = None if ids is None else np.isin(self._frame["run_id"].to_numpy(), np.asarray(ids))
        self._apply_order()
        self._render_error()
        self._render_table()
        self._render_scatter()
        return True

    def page(self, number: int) -> None:
        """Show page ``number`` (from 1; clamped to the pages there are)."""
        with self._quiet():
            self.current_page = min(max(1, int(number)), self.pages)
        self._render_table()

    def select(self, run_ids: Iterable[int]) -> None:
        """Tick exactly ``run_ids`` (two or more show the diff). Ids must be runs of this comparison."""
        ids = list(dict.fromkeys(int(r) for r in run_ids))
        unknown = [r for r in ids if r not in self._names]
        if unknown:
            raise InvalidValue(
                f"run {', '.join(map(str, unknown))} is not in this comparison"
                f"{f' of project {self.project!r}' if self.project else ''}; pick ids from .to_dataframe()['run_id']")
        with self._quiet():
            self.selected = ids
        self._on_selection()

    def choose_columns(self, columns: Iterable[str]) -> None:
        """Show ``columns`` (ids or unambiguous keys), in the table's canonical order."""
        wanted = {self._resolve(c) for c in columns}
        with self._quiet():
            self.columns = [c for c in self.available_columns if c in wanted]
        self._render_columns()

    def refresh(self) -> None:
        """Query the store again (new runs, new metrics), keeping the filter, sort and selection."""
        was_empty = self._frame.empty
        self._load()
        if was_empty:  # nothing to keep: the columns and charts the new runs call for
            self._start_over()
            return
        available = set(self.available_columns)
        with self._quiet():
            self.columns = [c for c in self.columns if c in available] or self._default_columns()
            if self.sort_column not in available and self.sort_column != "run_id":
                self.sort_column, self.ascending = "start_time", False
            self.selected = [r for r in self.selected if r in self._names]
        self._diff_for = self._histories_for = None
        self._build_chooser_options()
        if not self.filter(self.where):
            self.filter("")
        self._render_all()

    def _resolve(self, column: str) -> str:
        available = self.available_columns
        if column in available or column == "run_id":
            return column
        reverse = {v: k for k, v in LABELS.items()}
        if column in reverse:
            return reverse[column]
        matches = [c for c in available if _namespace(c) and c.split(".", 1)[1] == column]
        if len(matches) == 1:
            return matches[0]
        hint = f"; it is ambiguous: {', '.join(matches)}" if matches else ""
        raise InvalidValue(f"unknown column {column!r}{hint}; the columns are: {', '.join(available)}")

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
        if not hasattr(self, "_frame"):
            return proposal["value"]
        return self._resolve(proposal["value"])

    @traitlets.observe("project")
    def _project_changed(self, change: Any) -> None:
        if not self._busy and hasattr(self, "_frame"):
            self._load()
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
        with self._quiet():
            self._history_pick.value = self.history_metric
            self._param_pick.value = self.scatter_param
            self._metric_pick.value = self.scatter_metric
        if change["name"] == "history_metric":
            self._render_history()
        else:
            self._render_scatter()

    # -- derived: diff and charts ----------------------------------------------------------------

    @property
    def diff(self) -> dict[str, Any] | None:
        """The comparison of the selected runs (None with fewer than two), in selection order:

        ``runs`` (ids), ``names``; ``params``: ``{"key", "values": {id: value}, "differs"}``;
        ``metrics``: ``{"key", "values", "best": [ids], "lower_is_better"}``; ``sources``: per stage,
        ``{"stage", "same", "diffs": {id: unified diff against the first run}}``; ``data``:
        ``{"match": bool | None, "frames": {name: {id: fingerprint}}, "differ": [names]}``.
        """
        ids = tuple(self.selected)
        if len(ids) < 2:
            return None
        if self._diff_for != ids:
            self._diff = self._compute_diff(list(ids))
            self._diff_for = ids
        return self._diff

    def _compute_diff(self, ids: list[int]) -> dict[str, Any]:
        frame = self._frame.set_index("run_id").loc[ids]
        names = {r: self._names[r] for r in ids}
        params = []
        for column in (c for c in frame.columns if _namespace(c) == "params"):
            values = {r: _plain(frame.at[r, column]) for r in ids}
            if all(v is None for v in values.values()):
                continue
            params.append({"key": column.split(".", 1)[1], "values": values,
                           "differs": len({repr(v) for v in values.values()}) > 1})
        metrics = []
        for column in (c for c in frame.columns if _namespace(c) == "metrics"):
            key = column.split(".", 1)[1]
            values = {r: _plain(frame.at[r, column]) for r in ids}
            if all(v is None for v in values.values()):
                continue
            ops = {frame.at[r, "req_op"] for r in ids if frame.at[r, "req_metric"] == key}
            lower = lower_is_better(key, next(iter(ops)) if len(ops) == 1 else None)
            finite = {r: v for r, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}
            best: list[int] = []
            if len(finite) > 1:
                target = (min if lower else max)(finite.values())
                best = [r for r, v in finite.items() if v == target]
            metrics.append({"key": key, "values": values, "best": best, "lower_is_better": lower})
        sources = []
        stage_rows = self._store.stage_sources(ids)
        base = ids[0]
        for stage in STAGES:
            texts = {r: stage_rows.get(r, {}).get(stage, {}).get("source") for r in ids}
            if all(t is None for t in texts.values()):
                continue
            diffs = {}
            for other in ids[1:]:
                diffs[other] = "".join(difflib.unified_diff(
                    (texts[base] or "").splitlines(keepends=True), (texts[other] or "").splitlines(keepends=True),
                    fromfile=f"{names[base]} ({'not run' if texts[base] is None else stage})",
                    tofile=f"{names[other]} ({'not run' if texts[other] is None else stage})", lineterm="\n"))
            sources.append({"stage": stage, "same": not any(diffs.values()), "diffs": diffs})
        prints = self._store.data_fingerprints(ids)
        frames: dict[str, dict[int, str | None]] = {}
        for r in ids:
            for name, fp in prints.get(r, {}).items():
                frames.setdefault(name, {})[r] = fp
        differ = [n for n, fps in frames.items() if len(fps) < len(ids) or len(set(fps.values())) > 1]
        data = {"match": None if not frames else not differ, "frames": frames, "differ": differ}
        return {"runs": ids, "names": names, "params": params, "metrics": metrics, "sources": sources, "data": data}

    @property
    def chart_data(self) -> dict[str, Any]:
        """What the charts draw: ``history`` ``{"metric", "runs": {id: [(step, value), ...]}}`` for the
        selected runs; ``scatter`` ``{"param", "metric", "points": [(id, x, y), ...]}`` for the filtered
        runs that have both values."""
        return {"history": {"metric": self.history_metric, "runs": self._history_series()},
                "scatter": self._scatter_points()}

    def _history_series(self) -> dict[int, list[tuple[int, float]]]:
        ids = tuple(self.selected)
        if not ids or not self.history_metric:
            return {}
        key = (ids, self.history_metric)
        if self._histories_for != key:
            self._histories = self._store.metric_histories(ids, self.history_metric)
            self._histories_for = key
        return {r: self._histories[r] for r in ids if r in self._histories}

    def _scatter_points(self) -> dict[str, Any]:
        param, metric = self.scatter_param, self.scatter_metric
        out: dict[str, Any] = {"param": param, "metric": metric, "points": []}
        x_col, y_col = f"params.{param}", f"metrics.{metric}"
        if not param or not metric or x_col not in self._frame.columns or y_col not in self._frame.columns:
            return out
        part = self._frame[["run_id", x_col, y_col]].iloc[self._order].dropna()
        out["points"] = [(int(r), _plain(x), float(y)) for r, x, y in part.itertuples(index=False)
                         if math.isfinite(float(y))]
        return out

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
            metrics = self._known["metrics"]
            params = self._known["params"]
            self._history_pick.options = metrics
            self._metric_pick.options = metrics
            self._param_pick.options = params
            self._history_pick.value = self.history_metric if self.history_metric in metrics else None
            self._metric_pick.value = self.scatter_metric if self.scatter_metric in metrics else None
            self._param_pick.value = self.scatter_param if self.scatter_param in params else None

    def _label(self, column: str, *, full: bool = False) -> str:
        namespace = _namespace(column)
        if namespace is None:
            return LABELS.get(column, column.replace("_", " "))
        key = column.split(".", 1)[1]
        if full:
            return f"{namespace[:-1]}: {key}"
        clash = sum(1 for ns in ("params", "metrics", "tags") if key in self._known[ns]) > 1
        return column if clash else key

    def _width(self, column: str) -> int:
        return WIDTHS.get(column) or NAMESPACE_WIDTHS.get(_namespace(column) or "", 96)

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
        if self._frame.empty:
            where = f"in project <b>{esc(self.project)}</b>" if self.project else "in this store"
            self._empty.value = (
                f'<div style="{FONT}border:1px dashed {BORDER};border-radius:8px;padding:18px 20px;max-width:760px">'
                f'<div style="font-size:14px;font-weight:600">No runs {where} yet</div>'
                f'<div style="font-size:12.5px;margin-top:6px">{HOW_TO_START} Then run '
                f"<code>%mlops compare</code> again.</div>"
                f'<div style="font-size:11px;color:{MUTED};margin-top:6px">store {esc(self._store.path)}</div></div>')
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
        n = len(self._frame)
        self._title.value = (
            f'<div style="{FONT}font-size:15px;font-weight:600">{what} '
            f'<span style="font-size:12px;font-weight:400;color:{MUTED}">{n:,} run{"s" if n != 1 else ""} · '
            f"store {esc(self._store.path)}</span></div>")

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
            button.style.button_color = HEADER_COLOURS[_namespace(column)]
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
        positions = self._page_positions()
        records = self._frame.iloc[positions].to_dict("records")
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
            align = "right" if column in ("duration",) or _namespace(column) == "metrics" else "left"
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
        total, n = self.total, len(self._frame)
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
        series = self._history_series()
        if not self.selected:
            self._history_html.value = placeholder(f"tick runs to draw {metric} over steps")
            return
        if not series:
            self._history_html.value = placeholder(f"the ticked runs have no {metric}")
            return
        names = [self._names[r] for r in self.selected]
        named = {(n if names.count(n) == 1 else f"{n} #{r}"): series.get(r, [])  # colours as in the scatter
                 for n, r in zip(names, self.selected, strict=True)}
        self._history_html.value = line_chart(named, title=f"{metric} over steps", y_title=metric)

    def _render_scatter(self) -> None:
        points = self._scatter_points()
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
        drawn = [(x, y, self._names.get(r, str(r)), colour.get(r)) for r, x, y in chosen]
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
