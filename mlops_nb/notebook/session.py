"""The notebook session: the current run of a kernel, and cell executions turned into stage records.

IPython events call :meth:`NotebookSession.before_cell` and :meth:`NotebookSession.after_cell`;
the magics call the rest. Everything recorded goes through :mod:`mlops_nb.tracking` (runs, and
:mod:`mlops_nb.tracking.lifecycle` for stages, cells, restarts and integrity); what a cell produced
is described by :mod:`mlops_nb.capture`. This module writes nothing itself.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_nb import capture
from mlops_nb.stages import Requirement, stage_of
from mlops_nb.store import CHECK_ENV_VAR
from mlops_nb.tracking import Run, lifecycle, start

#: Cells that only drive mlops-nb are not part of the run's lineage.
_OWN_CELL = re.compile(r"\A\s*(%mlops\b|%load_ext\s+mlops_nb|%reload_ext\s+mlops_nb)")

PROFILED_STAGES = ("data", "eda")
MODEL_STAGES = ("model", "tuning", "selection", "features")


def strip_stage_header(lines: list[str]) -> list[str]:
    """IPython input transformer: drop a valid ``%%stage NAME`` first line, so the body runs as an
    ordinary cell (its display, errors and execution count untouched). Invalid names are left for
    the ``%%stage`` cell magic, which explains the valid ones."""
    for i, line in enumerate(lines):
        if line.strip():
            if stage_of(line):
                return lines[:i] + lines[i + 1:]
            break
    return lines


def notebook_path(user_ns: dict) -> str | None:
    """The notebook's path when the front end says (JupyterLab sets ``__session__``)."""
    path = user_ns.get("__session__") or os.environ.get("JPY_SESSION_NAME")
    return str(path) if path and str(path).endswith(".ipynb") else None


def kernel_key() -> str | None:
    """The kernel's connection file name: it survives a kernel restart, a new kernel gets another."""
    try:
        from ipykernel import get_connection_file

        return Path(get_connection_file()).name
    except Exception:
        return None


@dataclass
class _Stage:
    name: str
    stage_id: int
    started: float
    before: dict
    run: Run


@dataclass
class NotebookSession:
    """The per-kernel state: which run is current, which stage cell is executing."""

    shell: Any
    store: str | None = None
    run: Run | None = None
    stage: _Stage | None = None
    notes: list[str] = field(default_factory=list)
    views: list[Any] = field(default_factory=list)

    # -- live views (the status widget) -------------------------------------------------------------

    def watch(self, view: Any) -> None:
        """Keep ``view`` current: ``view.refresh()`` is called when a cell starts and after it ran,
        until it returns False (the view was closed)."""
        if all(v is not view for v in self.views):
            self.views.append(view)

    def refresh_views(self, *_: Any) -> None:
        """``pre_run_cell`` and ``post_run_cell``, after the recording handlers: refresh the watched
        views in place (no new output). Costs nothing when no view is watched."""
        kept = []
        for view in self.views:
            try:
                if view.refresh() is not False:
                    kept.append(view)
            except Exception as exc:
                print(f"mlops: a status view stopped refreshing: {type(exc).__name__}: {exc}")
        self.views[:] = kept

    # -- runs -------------------------------------------------------------------------------------

    def start(self, project: str | None = None, *, name: str | None = None, store: str | None = None) -> Run:
        """End the current run (finished) and start a new notebook run."""
        if store is not None:
            self.store = store
        if os.environ.get(CHECK_ENV_VAR):  # `mlops-nb check --store` wins over the notebook's own --store
            self.store = os.environ[CHECK_ENV_VAR]
        if self.run is not None and self.run.status == "running":
            self.run.end("finished")
        notebook = notebook_path(self.shell.user_ns)
        project = project or (Path(notebook).stem if notebook else "default")
        self.run = start(project, name=name, store=self.store, kind="notebook", notebook=notebook,
                         kernel=kernel_key())
        return self.run

    def ensure_run(self) -> tuple[Run, str | None]:
        """The current run; resume the run a restarted kernel left, or start one. Returns the run
        and a one-line message when something happened the user should know about."""
        if self.run is not None and self.run.status == "running":
            return self.run, None
        key = kernel_key()
        if self.run is None and key is not None:
            resumed = lifecycle.resume_after_restart(key, store=self.store)
            if resumed is not None:
                self.run = resumed
                return self.run, (f"mlops: resumed run {self.run.id} ({self.run.name}) of project "
                                  f"'{self.run.project}' after a kernel restart")
        run = self.start()
        where = run.store.path
        return run, f"mlops: started run {run.id} ({run.name}) in project '{run.project}', store {where}"

    def __post_init__(self) -> None:
        atexit.register(self._kernel_exit)

    def _kernel_exit(self) -> None:
        """A kernel shutting down finishes its run (a restart then resumes it); a killed kernel
        cannot, and its run is marked interrupted by the next process that opens the store."""
        run = self.run
        if run is not None and run.status == "running":
            with contextlib.suppress(Exception):  # never turn a clean shutdown into a traceback
                run.end("finished", reason="kernel exit")

    def end(self, status: str = "finished") -> Run | None:
        run = self.run
        if run is not None and run.status == "running":
            run.end(status)
        return run

    # -- cells ------------------------------------------------------------------------------------

    def before_cell(self, info: Any) -> None:
        """``pre_run_cell``: open a stage attempt for a ``%%stage`` cell."""
        self.stage = None
        name = stage_of(info.raw_cell or "")
        if name is None:
            return
        run, message = self.ensure_run()
        if message:
            print(message)
        stage_id = lifecycle.begin_stage(
            run, name, source=info.raw_cell, cell_id=getattr(info, "cell_id", None),
            execution_count=self.shell.execution_count,
        )
        self.stage = _Stage(name, stage_id, time.perf_counter(), capture.snapshot(self.shell.user_ns), run)

    def after_cell(self, result: Any) -> None:
        """``post_run_cell``: close the stage attempt with what the cell produced, or record an
        outside cell in the run's lineage."""
        info = result.info
        if info is None or getattr(info, "silent", False):
            return
        stage, self.stage = self.stage, None
        error = result.error_before_exec or result.error_in_exec
        if stage is None:
            self._record_outside_cell(info, result, error)
            return
        duration = time.perf_counter() - stage.started
        error_text = None if error is None else f"{type(error).__name__}: {error}"
        names = capture.changed(stage.before, self.shell.user_ns)
        records, metrics, params, gate, lines = ([], {}, {}, None, [])
        if error is None:
            records, params, lines = self._describe(stage.name, names)
            if stage.name == "validation":
                metrics = capture.scalar_metrics(names, self.shell.user_ns)
                gate, line = self._gate(stage.run, metrics)
                if line:
                    lines.append(line)
        lifecycle.finish_stage(
            stage.run, stage.stage_id, duration=duration, status="ok" if error is None else "error",
            error=error_text, variables=names, captures=records, metrics=metrics, params=params, gate=gate,
            # IPython >= 9 counts the cell before ``pre_run_cell``; the result has the true count.
            execution_count=result.execution_count,
        )
        lines.extend(self._judge(stage.run))
        for line in lines:
            print(line)

    def _record_outside_cell(self, info: Any, result: Any, error: BaseException | None) -> None:
        run = self.run
        raw = info.raw_cell or ""
        if run is None or run.status != "running" or not raw.strip() or _OWN_CELL.match(raw):
            return
        lifecycle.record_cell(
            run, source=raw, cell_id=getattr(info, "cell_id", None), execution_count=result.execution_count,
            status="ok" if error is None else "error",
        )

    def _describe(self, stage: str, names: list[str]) -> tuple[list[dict], dict[str, Any], list[str]]:
        """Capture records for the changed names; estimators also get their skops bytes (``artifact``),
        which :func:`mlops_nb.tracking.lifecycle.finish_stage` stores."""
        records, params, lines = [], {}, []
        for name in names:
            obj = self.shell.user_ns.get(name)
            record = capture.describe(name, obj, profile=stage in PROFILED_STAGES)
            if record is None:
                continue
            if record["kind"] == "skipped":
                lines.append(f"mlops: did not capture {name}: {record['reason']}")
                continue
            if record["kind"] in ("estimator", "search"):
                model = getattr(obj, "best_estimator_", obj) if record["kind"] == "search" else obj
                try:
                    data, untrusted = capture.dump_model(model)
                except Exception as exc:
                    lines.append(f"mlops: {name} was described but not saved: skops cannot save it ({exc})")
                else:
                    record["artifact"] = data
                    record["untrusted_types"] = untrusted
                    reason = capture.untrusted_reason(untrusted, est=model)
                    if reason:
                        record["unloadable"] = reason
                        lines.append(f"mlops: {name} {reason}")
                if record["kind"] == "search":
                    params.update({f"{name}.best.{k}": _param(v) for k, v in record["best_params"].items()})
                elif stage in MODEL_STAGES:
                    params.update({f"{name}.{k}": v for k, v in capture.flat_params(obj).items()})
            records.append(record)
        return records, params, lines

    def _gate(self, run: Run, metrics: dict[str, float]) -> tuple[dict | None, str | None]:
        row = run.store.requirement(run.id)
        if row is None:
            return None, None
        if row["metric"] not in metrics:
            made = ", ".join(sorted(metrics)) or "no number"
            return None, (f"mlops: the requirement's metric {row['metric']!r} was not produced by this validation cell "
                          f"(it produced {made}); assign it to a variable named {row['metric']} here, or state the "
                          f"requirement on one of these (`%mlops require`)")
        requirement = Requirement(row["metric"], row["op"], row["threshold"])
        value = metrics[row["metric"]]
        gate = {"metric": requirement.metric, "op": requirement.op, "threshold": requirement.threshold,
                "value": value, "passed": int(requirement.passes(value))}
        return gate, requirement.verdict_line(value)

    def _judge(self, run: Run) -> list[str]:
        """Recompute the run's integrity warnings; say which stages just went stale."""
        newly = lifecycle.judge(run)
        if newly:
            return [f"mlops: now stale: {', '.join(newly)} (re-run to refresh; `%mlops status` shows why)"]
        return []


def _param(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


_SESSIONS: dict[int, NotebookSession] = {}


def session_for(shell: Any) -> NotebookSession:
    """The kernel's session (kept across ``%reload_ext``)."""
    if id(shell) not in _SESSIONS:
        _SESSIONS[id(shell)] = NotebookSession(shell)
    return _SESSIONS[id(shell)]


def current_session() -> NotebookSession | None:
    """The session of the running IPython shell, when ``%load_ext mlops_nb`` ran in it."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    shell = get_ipython()
    return None if shell is None else _SESSIONS.get(id(shell))


def forget_session(shell: Any) -> NotebookSession | None:
    """Drop the shell's session (tests that reuse one shell start clean)."""
    return _SESSIONS.pop(id(shell), None)
