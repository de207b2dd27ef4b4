"""Run a notebook headless, top to bottom, in a fresh kernel of this interpreter (nbclient), and say
what happened: the stage cells it has, the cell that failed (its stage and the error's last line),
a timeout. ``mlops-nb check`` and ``mlops-nb demo`` use it; the notebook's own magics record the run.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_nb.errors import MlopsError
from mlops_nb.stages import stage_of

_LOAD_EXT = re.compile(r"^\s*%(re)?load_ext\s+mlops_nb\b", re.M)
_START = re.compile(r"^\s*%mlops\s+start\b(.*)$", re.M)


class NotebookInputError(MlopsError):
    """A notebook ``mlops-nb check`` cannot check; ``reason`` picks the exit status."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Notebook:
    """A notebook read for checking: its cells, its stage cells in order, the store it names."""

    path: Path
    node: Any
    stages: list[str]
    store: str | None


@dataclass
class Execution:
    """What running a notebook did. ``failed_cell``: ``index`` (0-based), ``stage``, ``error``."""

    elapsed: float = 0.0
    failed_cell: dict[str, Any] | None = None
    timed_out: bool = False
    timeout: float | None = None
    notebook_stages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"failed_cell": self.failed_cell, "timed_out": self.timed_out, "timeout": self.timeout,
                "notebook_stages": self.notebook_stages}


def read_notebook(path: Path) -> Notebook:
    """Read ``path`` as a notebook that records into mlops-nb; :class:`NotebookInputError` says why not
    (``not a notebook``, ``no load_ext``, ``no stage``)."""
    import nbformat

    if not path.is_file():
        raise NotebookInputError(f"{path} is not a notebook file (it does not exist or is a folder); "
                                 "give the path of an .ipynb file", "not a notebook")
    try:
        node = nbformat.read(str(path), as_version=4)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise NotebookInputError(f"{path} is not a Jupyter notebook ({first}); give the path of an .ipynb file",
                                 "not a notebook") from None
    sources = [cell.source for cell in node.cells if cell.cell_type == "code"]
    if not any(_LOAD_EXT.search(source) for source in sources):
        raise NotebookInputError(f"{path} does not load mlops-nb, so nothing would be recorded; add a cell "
                                 "`%load_ext mlops_nb` at its top", "no load_ext")
    stages = [name for name in (stage_of(source) for source in sources) if name]
    if not stages:
        raise NotebookInputError(f"{path} has no stage cell, so there is nothing to judge; start its cells "
                                 "with `%%stage data`, `%%stage model`, `%%stage validation` ...", "no stage")
    return Notebook(path, node, stages, _named_store(sources))


def _named_store(sources: list[str]) -> str | None:
    """The ``--store`` of the notebook's first ``%mlops start`` that names one."""
    for source in sources:
        for match in _START.finditer(source):
            try:
                words = shlex.split(match.group(1))
            except ValueError:
                continue
            for i, word in enumerate(words):
                if word == "--store" and i + 1 < len(words):
                    return words[i + 1]
                if word.startswith("--store="):
                    return word.split("=", 1)[1]
    return None


def this_python_kernel_manager(sockets: str | None = None) -> type:
    """A kernel manager whose kernel is this interpreter, whatever kernelspecs the machine has (a
    user-level ``python3`` spec may point at another Python, without mlops-nb). With ``sockets`` (a
    folder), the kernel listens on Unix sockets there instead of TCP ports."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class ThisPythonKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            if sockets is not None:
                kwargs = {"transport": "ipc", "ip": os.path.join(sockets, "kernel"), **kwargs}
            super().__init__(**kwargs)

        @property
        def kernel_spec(self) -> KernelSpec:
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name=f"Python {sys.version.split()[0]} (mlops-nb)", language="python",
            )

    return ThisPythonKernelManager


def execute(notebook: Notebook, env: dict[str, str], *, timeout: float | None = None) -> Execution:
    """Run every cell of ``notebook`` in order in its folder, with ``env`` as the kernel's environment,
    stopping at the first failing cell; ``timeout`` bounds all its cells together, in seconds. The
    notebook file is not changed."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    outcome = Execution(timeout=timeout, notebook_stages=list(notebook.stages))
    started = deadline = None

    def remaining(cell: Any) -> int | None:
        # nbclient's timeout is per cell: give each cell what is left of the notebook's budget
        return None if deadline is None else max(1, round(deadline - time.monotonic()))

    with tempfile.TemporaryDirectory(prefix="mlops-nb-kernel-") as sockets:
        client = NotebookClient(
            notebook.node, timeout_func=remaining, kernel_name="python3", startup_timeout=120,
            resources={"metadata": {"path": str(notebook.path.parent)}}, shutdown_kernel="graceful",
            kernel_manager_class=this_python_kernel_manager(sockets if os.name == "posix" else None),
        )
        client.reset_execution_trackers()
        with client.setup_kernel(env=env, cwd=str(notebook.path.parent)):
            client.wait_for_reply(client.kc.kernel_info())
            started = time.monotonic()  # the budget is the cells': a slow kernel start does not count
            deadline = None if timeout is None else started + timeout
            for index, cell in enumerate(notebook.node.cells):
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError:
                    outcome.timed_out = True
                    outcome.failed_cell = _failed(index, cell, "the cell was still running")
                    _interrupt(client)
                    client.shutdown_kernel = "immediate"  # a kernel that ignored the interrupt is not waited for
                    break
                except CellExecutionError as exc:
                    outcome.failed_cell = _failed(index, cell, _last_line(exc, cell))
                    break
    outcome.elapsed = 0.0 if started is None else time.monotonic() - started
    return outcome


def _failed(index: int, cell: Any, error: str) -> dict[str, Any]:
    return {"index": index, "stage": stage_of(cell.source), "error": error}


def _last_line(exc: Exception, cell: Any) -> str:
    """The error's last line: ``ename: evalue`` of the cell's error output."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            value = str(output.get("evalue", "")).strip().splitlines()
            return f"{output.get('ename')}: {value[-1]}" if value else str(output.get("ename"))
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _interrupt(client: Any, wait: float = 10.0) -> None:
    """Interrupt a cell that ran out of time and wait for the kernel to go idle, so the stage it
    was in is recorded as ended (with the interruption) before the kernel shuts down."""
    from nbclient.util import run_sync

    run_sync(client.km.interrupt_kernel)()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            message = run_sync(client.kc.get_iopub_msg)(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            return
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return
