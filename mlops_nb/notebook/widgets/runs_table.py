"""The compare widget's table model: the runs of a project loaded once, sorted, filtered, paged and
selected, with the diff and the chart data of the selection. No ipywidgets: the widget
(:mod:`mlops_nb.notebook.widgets.compare`) renders it and wires its controls to it.

Built for 10,000 runs: the store is queried once (:meth:`Store.runs_frame` and the one-query
:meth:`Store.runs_overview`); sorting and paging happen in pandas on that frame, filtering asks the
store for the matching run ids (so the ``where`` language means exactly what it means in
``mnb.runs``).

The store may not exist yet (``store`` None: a notebook that compares before its first run); the
table then has no runs until the widget hands it the store and refreshes. Runs whose process is gone
show as ``interrupted`` without a write, as in every reader.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mlops_nb.errors import FilterError, InvalidValue
from mlops_nb.format import is_missing
from mlops_nb.stages import STAGES, lower_is_better
from mlops_nb.store import RUN_COLUMNS, Store, process_gone

if TYPE_CHECKING:
    import numpy
    import pandas
#: Run columns the table can show, in their order; metric, param and tag columns follow.
BASE_COLUMNS = ("name", "project", "kind", "status", "start_time", "duration", "stages", "gate", "registry")
LABELS = {"name": "run", "start_time": "start", "stages": "stages reached", "registry": "registry"}
#: Above this many points a scatter chart draws every n-th run (and the ticked ones).
MAX_SCATTER_POINTS = 2000
#: The columns of :meth:`Store.runs_overview`, merged into the runs frame.
OVERVIEW_COLUMNS = ("parent_id", "stages", "reached", "req_metric", "req_op", "req_threshold", "gate", "gate_value",
                    "registry")
#: Extra frame columns exported with a visible one.
COMPANIONS = {"stages": ("reached",), "gate": ("gate_value",)}
PAGE_SIZE = 25


def namespace(column: str) -> str | None:
    head, dot, _ = column.partition(".")
    return head if dot and head in ("params", "metrics", "tags") else None


def _no_runs() -> pandas.DataFrame:
    """The frame of a store that does not exist yet: the columns of the runs frame and its overview."""
    import pandas as pd

    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in (*RUN_COLUMNS, *OVERVIEW_COLUMNS)})
    for name in ("start_time", "end_time"):
        frame[name] = pd.to_datetime(frame[name].astype("float64"), unit="s", utc=True)
    return frame.astype({"run_id": "int64", "stages": "int64"})


def plain(value: Any) -> Any:
    """A frame value as a plain Python value (NaN and NA as None)."""
    if is_missing(value):
        return None
    if hasattr(value, "item") and not hasattr(value, "tzinfo"):
        return value.item()
    return value


class RunsTable:
    """The runs compared: state in plain attributes (the widget mirrors them as traits), derived views
    :attr:`rows`, :attr:`diff`, :attr:`chart_data` and :meth:`to_dataframe`."""

    def __init__(self, store: Store | None, project: str | None = None, *, page_size: int = PAGE_SIZE):
        self.store = store
        self.project = project
        self.page_size = max(1, int(page_size))
        self.where, self.error = "", ""
        self.sort_column, self.ascending, self.current_page = "start_time", False, 1
        self.columns: list[str] = []
        self.selected: list[int] = []
        self.history_metric: str | None = None
        self.scatter_param: str | None = None
        self.scatter_metric: str | None = None
        self._diff: dict | None = None
        self._diff_for: tuple | None = None
        self._histories: dict | None = None
        self._histories_for: tuple | None = None
        self.load()
        self.start_over()

    # -- data ------------------------------------------------------------------------------------

    def load(self) -> None:
        """Query the store once: every run of the project with its params, metrics, tags and overview."""
        if self.store is None:
            frame = _no_runs()
        else:
            frame = self.store.runs_frame(self.project)
            overview = self.store.runs_overview(self.project)
            import pandas as pd

            if frame["run_id"].equals(overview["run_id"]):  # both in id order, as they are unless a run
                # began between the two queries; side by side costs nothing, a merge 0.1 s at 100k
                frame = pd.concat([frame, overview.drop(columns="run_id")], axis=1)
            else:
                frame = frame.merge(overview, on="run_id", how="left")
            self._show_interrupted(frame)
        frame["duration"] = (frame["end_time"] - frame["start_time"]).dt.total_seconds()
        frame["stages"] = frame["stages"].fillna(0).astype("int64")
        self.frame = frame
        self._keys: dict[str, Any] = {}
        self.known = {ns: [c.split(".", 1)[1] for c in frame.columns if namespace(c) == ns]
                       for ns in ("params", "metrics", "tags")}
        self._mask: numpy.ndarray | None = None
        self.names = dict(zip(frame["run_id"].tolist(), frame["name"].tolist(), strict=True))
        self._order = frame.index.to_numpy()

    def _show_interrupted(self, frame: pandas.DataFrame) -> None:
        """``running`` runs whose process is gone read as ``interrupted`` (the next writing open records
        it); only the running ones are looked up, one query each."""
        for position in frame.index[frame["status"] == "running"]:
            if process_gone(self.store.run(int(frame.at[position, "run_id"]))):
                frame.at[position, "status"] = "interrupted"

    @property
    def available_columns(self) -> list[str]:
        """Every column the table can show: the run columns, then ``metrics.*``, ``params.*``, ``tags.*``."""
        frame = self.frame
        base = [c for c in BASE_COLUMNS if c in frame.columns]
        return [*base, *(c for ns in ("metrics", "params", "tags") for c in frame.columns if namespace(c) == ns)]

    def default_columns(self) -> list[str]:
        frame = self.frame
        chosen = ["name", "status", "start_time", "duration", "stages", "gate"]
        if self.project is None and frame["project"].nunique() > 1:
            chosen.insert(1, "project")
        if frame["registry"].notna().any():
            chosen.append("registry")
        wanted = frame["req_metric"].dropna().value_counts().index.tolist()
        metrics = [f"metrics.{m}" for m in wanted if f"metrics.{m}" in frame.columns]
        metrics += [c for c in frame.columns if namespace(c) == "metrics" and c not in metrics]
        params = [c for c in frame.columns if namespace(c) == "params"]
        varying = [c for c in params if frame[c].nunique(dropna=True) > 1]
        params = varying + [c for c in params if c not in varying]
        return chosen + metrics[:4] + params[:3]

    def default_charts(self) -> tuple[str | None, str | None, str | None]:
        metrics = [c.split(".", 1)[1] for c in self.columns if namespace(c) == "metrics"] or self.known["metrics"]
        params = [c.split(".", 1)[1] for c in self.columns if namespace(c) == "params"] or self.known["params"]
        metric = metrics[0] if metrics else None
        return metric, (params[0] if params else None), metric

    def _sort_key(self, column: str) -> pandas.Series:
        """A sortable version of ``column`` (cached): numbers as numbers, text case-insensitive."""
        key = self._keys.get(column)
        if key is not None:
            return key
        import pandas as pd

        frame = self.frame
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

    def page_positions(self) -> numpy.ndarray:
        start = (self.current_page - 1) * self.page_size
        return self._order[start:start + self.page_size]

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The current page as shown: ``run_id``, then each shown column's value (plain Python values)."""
        positions = self.page_positions()
        part = self.frame.iloc[positions]
        out = []
        for record in part[["run_id", *self.columns]].to_dict("records"):
            out.append({k: plain(v) for k, v in record.items()})
        return out

    def to_dataframe(self) -> pandas.DataFrame:
        """What the table shows, every page: the filtered runs in the table's order, ``run_id`` and
        the shown columns (``stages`` comes with ``reached``, ``gate`` with ``gate_value``)."""
        columns = ["run_id"]
        for column in self.columns:
            columns.append(column)
            columns.extend(COMPANIONS.get(column, ()))
        return self.frame[columns].iloc[self._order].reset_index(drop=True)

    def to_csv(self) -> str:
        """:meth:`to_dataframe` as CSV text (times in ISO 8601, UTC)."""
        return self.to_dataframe().to_csv(index=False)

    # -- changes: the widget's controls and seams call these -------------------------------------

    def sort_by(self, column: str, ascending: bool = True) -> None:
        """Sort by ``column`` (an id such as ``metrics.f1``, or an unambiguous key such as ``f1``);
        missing values go last either way. Back to page 1."""
        self.sort_column = self.resolve(column)
        self.ascending = bool(ascending)
        self.current_page = 1
        self._apply_order()

    def filter(self, expression: str | None) -> bool:
        """Keep the runs that ``expression`` (the ``where`` language of ``mnb.runs``) selects; empty or
        None keeps every run. A bad expression sets :attr:`error` and keeps the last good result.
        Returns whether the filter was applied."""
        import numpy as np

        text = (expression or "").strip()
        try:
            if not text:
                ids = None
            elif self.store is None:  # no store file yet: nothing to filter
                ids = []
            else:
                ids = self.store.run_ids(self.project, text, known=self.known)
        except FilterError as exc:
            self.error = str(exc)
            return False
        self.error = ""
        self.where = text
        self.current_page = 1
        self._mask = None if ids is None else np.isin(self.frame["run_id"].to_numpy(), np.asarray(ids))
        self._apply_order()
        return True

    def page(self, number: int) -> None:
        """Show page ``number`` (from 1; clamped to the pages there are)."""
        self.current_page = min(max(1, int(number)), self.pages)

    def select(self, run_ids: Iterable[int]) -> None:
        """Tick exactly ``run_ids``; they must be runs of this comparison."""
        ids = list(dict.fromkeys(int(r) for r in run_ids))
        unknown = [r for r in ids if r not in self.names]
        if unknown:
            raise InvalidValue(
                f"run {', '.join(map(str, unknown))} is not in this comparison"
                f"{f' of project {self.project!r}' if self.project else ''}; pick ids from .to_dataframe()['run_id']")
        self.selected = ids

    def choose_columns(self, columns: Iterable[str]) -> None:
        """Show ``columns`` (ids or unambiguous keys), in the table's canonical order."""
        wanted = {self.resolve(c) for c in columns}
        self.columns = [c for c in self.available_columns if c in wanted]

    def start_over(self) -> None:
        """Default columns, charts and order for the loaded frame; no filter, no selection."""
        self.columns = self.default_columns()
        self.history_metric, self.scatter_param, self.scatter_metric = self.default_charts()
        self.sort_column, self.ascending, self.current_page = "start_time", False, 1
        self.where, self.error, self.selected = "", "", []
        self._diff_for = self._histories_for = None
        self._apply_order()

    def refresh(self) -> bool:
        """Query the store again (new runs, new metrics), keeping the filter, sort and selection.
        Returns whether the table started over (it was empty: nothing to keep)."""
        was_empty = self.frame.empty
        self.load()
        if was_empty:
            self.start_over()
            return True
        available = set(self.available_columns)
        self.columns = [c for c in self.columns if c in available] or self.default_columns()
        if self.sort_column not in available and self.sort_column != "run_id":
            self.sort_column, self.ascending = "start_time", False
        self.selected = [r for r in self.selected if r in self.names]
        self._diff_for = self._histories_for = None
        if not self.filter(self.where):
            self.filter("")
        return False

    def resolve(self, column: str) -> str:
        available = self.available_columns
        if column in available or column == "run_id":
            return column
        reverse = {v: k for k, v in LABELS.items()}
        if column in reverse:
            return reverse[column]
        matches = [c for c in available if namespace(c) and c.split(".", 1)[1] == column]
        if len(matches) == 1:
            return matches[0]
        hint = f"; it is ambiguous: {', '.join(matches)}" if matches else ""
        raise InvalidValue(f"unknown column {column!r}{hint}; the columns are: {', '.join(available)}")

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
        frame = self.frame.set_index("run_id").loc[ids]
        names = {r: self.names[r] for r in ids}
        params = []
        for column in (c for c in frame.columns if namespace(c) == "params"):
            values = {r: plain(frame.at[r, column]) for r in ids}
            if all(v is None for v in values.values()):
                continue
            params.append({"key": column.split(".", 1)[1], "values": values,
                           "differs": len({repr(v) for v in values.values()}) > 1})
        metrics = []
        for column in (c for c in frame.columns if namespace(c) == "metrics"):
            key = column.split(".", 1)[1]
            values = {r: plain(frame.at[r, column]) for r in ids}
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
        stage_rows = self.store.stage_sources(ids)
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
        prints = self.store.data_fingerprints(ids)
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
        return {"history": {"metric": self.history_metric, "runs": self.history_series()},
                "scatter": self.scatter_points()}

    def history_series(self) -> dict[int, list[tuple[int, float]]]:
        ids = tuple(self.selected)
        if not ids or not self.history_metric:
            return {}
        key = (ids, self.history_metric)
        if self._histories_for != key:
            self._histories = self.store.metric_histories(ids, self.history_metric)
            self._histories_for = key
        return {r: self._histories[r] for r in ids if r in self._histories}

    def scatter_points(self) -> dict[str, Any]:
        """The filtered runs with both values as ``(run_id, x, y)``, y finite. Above
        :data:`MAX_SCATTER_POINTS` every ``step``-th is kept (the ticked runs always), chosen on the
        columns before any point becomes Python objects: 100,000 runs cost what 2,000 do;
        ``total`` says how many there were."""
        import numpy as np

        param, metric = self.scatter_param, self.scatter_metric
        out: dict[str, Any] = {"param": param, "metric": metric, "points": [], "total": 0, "step": 1}
        x_col, y_col = f"params.{param}", f"metrics.{metric}"
        if not param or not metric or x_col not in self.frame.columns or y_col not in self.frame.columns:
            return out
        part = self.frame[["run_id", x_col, y_col]].iloc[self._order].dropna()
        part = part[np.isfinite(part[y_col].to_numpy(dtype=np.float64))]
        out["total"] = len(part)
        if len(part) > MAX_SCATTER_POINTS:
            step = math.ceil(len(part) / MAX_SCATTER_POINTS)
            keep = (np.arange(len(part)) % step == 0) | part["run_id"].isin(self.selected).to_numpy()
            part, out["step"] = part[keep], step
        out["points"] = [(int(r), plain(x), float(y)) for r, x, y in part.itertuples(index=False)]
        return out
        part = self.frame[["run_id", x_col, y_col]].iloc[self._order].dropna()
        out["points"] = [(int(r), plain(x), float(y)) for r, x, y in part.itertuples(index=False)
                         if math.isfinite(float(y))]
        return out
