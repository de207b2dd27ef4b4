"""The status widget: one run's lifecycle as a timeline that refreshes itself while later cells run.

``%mlops status`` (or ``mnb.status()``) displays it once; the notebook session then calls
:meth:`StatusWidget.refresh` when a cell starts and after it ran, so the same output shows a stage
running, then its outcome, without a new output per cell. Everything shown comes from the store
(:meth:`Store.run_details`, :meth:`Store.stage_captures`, :meth:`Store.child_runs`).
"""

from __future__ import annotations

import os
from typing import Any

import ipywidgets as widgets
import traitlets

from mlops_nb.format import MINUTES_FORMAT, duration, local_time, number
from mlops_nb.notebook.session import current_session
from mlops_nb.notebook.widgets._render import (
    BORDER,
    FONT,
    HOW_TO_START,
    MONO,
    MUTED,
    STATE_COLOURS,
    badge,
    esc,
    section,
    table,
)
from mlops_nb.notebook.widgets.serving import serving_section
from mlops_nb.notebook.widgets.text import status_text
from mlops_nb.store import Store, open_store, resolve_path
from mlops_nb.tracking.views import STATES, requirement_text, run_view, stage_states

__all__ = ["STATES", "StatusWidget", "lifecycle", "render", "status", "status_view"]
_SYMBOL = {"ok": "✓", "error": "✗", "stale": "!", "running": "…", "not run": ""}



def lifecycle(store: Store, run_id: int) -> dict[str, Any]:
    """Everything the status widget shows about run ``run_id``: the run's one view
    (:func:`mlops_nb.tracking.views.run_view`), the same data every front end renders."""
    return run_view(store, run_id)


# -- rendering -------------------------------------------------------------------------------------


def _stepper(stages: list[dict]) -> str:
    cells = []
    for i, s in enumerate(stages):
        fg, bg = STATE_COLOURS[s["state"]]
        ran = s["state"] != "not run"
        left = "transparent" if i == 0 else (BORDER if not ran else fg)
        right = "transparent" if i == len(stages) - 1 else BORDER
        dot = ('<div style="width:24px;height:24px;border-radius:50%;flex:none;display:flex;align-items:center;'
               'justify-content:center;font-size:13px;font-weight:700;'
               + (f'background:{fg};color:#ffffff;' if ran else f'background:#ffffff;border:2px solid {BORDER};'
                  'box-sizing:border-box;')
               + f'">{_SYMBOL[s["state"]]}</div>')
        took = duration(s["duration"]) if s["state"] not in ("not run", "running") else ""
        tries = f" · {s['attempt_count']}×" if s["attempt_count"] > 1 else ""
        cells.append(
            f'<div title="{esc(s["stage"])}: {esc(s["state"])}" style="flex:1 1 0;min-width:66px;text-align:center">'
            f'<div style="display:flex;align-items:center">'
            f'<div style="flex:1;height:2px;background:{left}"></div>{dot}'
            f'<div style="flex:1;height:2px;background:{right}"></div></div>'
            f'<div style="font-size:11.5px;font-weight:600;margin-top:4px;color:{"#24292f" if ran else MUTED}">'
            f'{esc(s["stage"])}</div>'
            f'<div style="font-size:10.5px;color:{fg if ran else MUTED};white-space:nowrap">'
            f'{esc(s["state"])}{esc(tries)}</div>'
            f'<div style="font-size:10px;color:{MUTED};min-height:13px">{esc(took)}</div></div>'
        )
    return f'<div class="mnb-timeline" style="display:flex;margin:14px 0 6px 0">{"".join(cells)}</div>'


def _gate_line(requirement: dict | None, gate: dict | None) -> str:
    if requirement is None:
        return (f'<div style="font-size:12px;color:{MUTED};margin-top:6px">No requirement yet: state one with '
                f'<code>%mlops require f1 &gt;= 0.85 --target y</code>.</div>')
    text = esc(requirement_text(requirement))
    if gate is None:
        verdict = badge("not evaluated yet", "pending")
        hint = f' <span style="color:{MUTED}">(a <code>%%stage validation</code> cell evaluates it)</span>'
    else:
        word = "passed" if gate["passed"] else "failed"
        verdict = badge(f"{word} ({number(gate['value'])})", word)
        hint = ""
    return (f'<div style="font-size:12.5px;margin-top:8px">Requirement <b>{text}</b>: {verdict}{hint}</div>')


def _details(stages: list[dict]) -> str:
    """A table of the stages that ran (the timeline above shows every stage)."""
    rows = []
    for s in stages:
        if s["state"] == "not run":
            continue
        captured = "<br>".join(esc(c) for c in s["captured"])
        if s["error"]:
            captured = (captured + "<br>" if captured else "") + (
                f'<span style="color:{STATE_COLOURS["error"][0]};{MONO}font-size:11px">{esc(s["error"])}</span>')
        rows.append([
            f"<b>{esc(s['stage'])}</b>", badge(s["state"]), esc(s["attempt_count"]), esc(duration(s["duration"])),
            captured or f'<span style="color:{MUTED}">nothing captured</span>',
        ])
    if not rows:
        return (f'<div style="font-size:12px;color:{MUTED};margin-top:6px">No stage has run yet: start a cell with '
                "<code>%%stage data</code> (or another stage name).</div>")
    return table(["stage", "state", "attempts", "duration", "captured"], rows,
                 align=["left", "left", "right", "right", "left"])


_WARNING_KIND = {"stale": "stale", "failed": "error", "restart": "interrupted", "edited": "stale",
                 "unstaged_cells": "pending"}


def _warnings(warnings: list[dict]) -> str:
    if not warnings:
        return section("Integrity", f'<div style="font-size:12px;color:{STATE_COLOURS["ok"][0]}">'
                                    "✓ no warnings: stages ran in order on the state they describe</div>")
    items = "".join(
        f'<div style="font-size:12px;margin:3px 0">'
        f'{badge(w["kind"].replace("_", " "), _WARNING_KIND.get(w["kind"], "pending"))} '
        f'{esc(w["message"])}</div>' for w in warnings)
    return section("Integrity", items, note=f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}")


def _retraining(children: list[dict]) -> str:
    if not children:
        return section("Retraining", f'<div style="font-size:12px;color:{MUTED}">No retraining runs yet. '
                                     "Export the model with <code>%mlops export</code> and a schedule to get them."
                                     "</div>")
    rows = []
    for child in children:
        metrics = ", ".join(f"{k} {number(v)}" for k, v in list(child["metrics"].items())[:4])
        rows.append([esc(child["name"]), badge(child["status"]), esc(local_time(child["start_time"], MINUTES_FORMAT)),
                     esc(duration(child["duration"])), esc(child["decision"]), esc(metrics)])
    return section("Retraining", table(["run", "status", "started", "duration", "decision", "metrics"], rows),
                   note=f"{len(children)} run{'s' if len(children) != 1 else ''}")


def render(data: dict[str, Any]) -> str:
    """The widget's HTML for :func:`lifecycle` data."""
    run = data
    took = run["duration"]
    when = local_time(run["start_time"], MINUTES_FORMAT) + (f" · took {duration(took)}" if took is not None else "")
    header = (
        f'<div style="display:flex;align-items:baseline;gap:8px;flex-wrap:wrap">'
        f'<span style="font-size:15px;font-weight:600">{esc(run["name"])}</span>'
        f'<span style="color:{MUTED};font-size:12px">run {run["id"]} · project {esc(run["project"])}</span>'
        f'{badge(run["status"])}'
        f'<span style="margin-left:auto;color:{MUTED};font-size:11px">started {esc(when)}</span></div>'
    )
    return _frame(header + _gate_line(data["requirement"], data["gate"]) + _stepper(data["stages"])
                  + _details(data["stages"]) + _warnings(data["warnings"]) + _retraining(data["retraining"])
                  + serving_section(data.get("monitoring")))


def _frame(body: str) -> str:
    return (f'<div class="mnb-status" style="{FONT}color:#24292f;border:1px solid {BORDER};border-radius:8px;'
            f'padding:12px 16px;background:#ffffff;max-width:1040px;box-sizing:border-box">{body}</div>')


def render_empty(message: str) -> str:
    return _frame(f'<div style="font-size:14px;font-weight:600">No run to show</div>'
                  f'<div style="font-size:12.5px;margin-top:6px;color:#24292f">{message}</div>')


# -- the widget -------------------------------------------------------------------------------------


class StatusWidget(widgets.VBox):
    """A run's lifecycle: stages in order with state, attempts, duration and what they captured; the
    requirement gate; integrity warnings; retraining runs; once its model is served, the traffic,
    latency and input drift its servers recorded. Get one from :func:`status`.

    ``follow`` (set when no run was named inside a notebook session) tracks the session's current
    run, including one started after the widget was shown.
    """

    run_id = traitlets.Int(None, allow_none=True, help="the run shown (None: no run yet)")
    follow = traitlets.Bool(False, help="track the notebook session's current run")
    states = traitlets.Dict(help="each stage's state: not run, running, ok, error or stale")
    html = traitlets.Unicode(help="what the widget shows, as HTML (read-only: refresh() sets it)")

    def __init__(self, run_id: int | None = None, *, store: Store | str | os.PathLike | None = None,
                 session: Any = None, follow: bool = False):
        self._html = widgets.HTML()
        super().__init__(children=[self._html])
        self.add_class("mnb-status-widget")
        self._store_arg = store
        self._session = session
        self._data: dict[str, Any] | None = None
        self.follow = follow
        self.run_id = run_id
        self.refresh()

    def _store(self) -> Store:
        if self.follow and self._session is not None:
            run = self._session.run
            if run is not None:
                return run.store
            return open_store(self._session.store if self._store_arg is None else self._store_arg, readonly=True)
        return open_store(self._store_arg, readonly=True)

    def refresh(self) -> bool:
        """Re-read the store and redraw when something changed. False once the widget is closed
        (the session then stops refreshing it)."""
        if self.comm is None:
            return False
        if self.follow and self._session is not None and self._session.run is not None:
            self.run_id = self._session.run.id
        if self.run_id is None:
            self._data = None
            self.states = {}
            where = "in this notebook yet" if self.follow else "in the store yet"
            extra = " This view fills in by itself once a run starts." if self.follow else ""
            html = render_empty(f"There is no run {where}. {HOW_TO_START}{extra}")
        else:
            store = self._store()
            self._data = lifecycle(store, self.run_id)
            self.states = stage_states(self._data)
            html = render(self._data)
        if html != self.html:
            self._html.value = html
            self.html = html
        return True

    @property
    def data(self) -> dict[str, Any] | None:
        """What is shown, as plain data (see :func:`lifecycle`); None when there is no run."""
        return self._data

    @property
    def timeline(self) -> list[dict[str, Any]]:
        """One entry per lifecycle stage, in order: ``stage``, ``state``, ``attempts``, ``duration``,
        ``error``, ``captured``."""
        return [] if self._data is None else self._data["stages"]

    def __repr__(self) -> str:
        ran = ", ".join(f"{stage} {state}" for stage, state in self.states.items() if state != "not run")
        return f"<StatusWidget run {self.run_id}: {ran or 'no stage yet'}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None and self._data is not None:
            bundle["text/plain"] = status_text(self._data)
        return bundle


def status(run: Any = None, *, store: Store | str | os.PathLike | None = None) -> StatusWidget:
    """The lifecycle widget of ``run`` (a :class:`~mlops_nb.tracking.Run` or a run id).

    Without ``run``: in a notebook with ``%load_ext mlops_nb``, the notebook's current run (also one
    started later); elsewhere the newest run in the store. ``store``: the store file (default: the
    session's, else ``$MLOPS_NB_STORE`` or ``./mlops.db``). In a notebook session the widget refreshes
    itself as later cells run.
    """
    return status_view(current_session(), run, store=store)


def status_view(session: Any, run: Any = None, *, store: Store | str | os.PathLike | None = None) -> StatusWidget:
    """:func:`status` for an explicit notebook ``session`` (None outside a notebook); used by ``%mlops status``."""
    run_id = getattr(run, "id", run)
    if store is None and hasattr(run, "store"):
        store = run.store
    # The widget only reads: a store it opens itself is opened read-only (never created or migrated).
    if run_id is not None:
        opened = open_store(store if store is not None or session is None else _session_store(session),
                            readonly=True)
        opened.run(run_id)  # RunNotFound, with the fix, for a bad id
        widget = StatusWidget(int(run_id), store=opened, session=session)
    elif session is not None:
        widget = StatusWidget(None, store=store, session=session, follow=True)
    elif not isinstance(store, Store) and not resolve_path(store).exists():
        widget = StatusWidget(None, store=store)  # no store file yet: "no run in the store yet"
    else:
        opened = open_store(store, readonly=True)
        widget = StatusWidget(opened.latest_run_id(), store=opened)
    if session is not None:
        session.watch(widget)
    return widget


def _session_store(session: Any) -> Any:
    return session.run.store if session.run is not None else session.store
