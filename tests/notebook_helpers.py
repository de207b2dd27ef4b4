"""Build notebooks with nbformat and run them in a real ipykernel, as JupyterLab or "Run All" would.

The kernels always run on *this* interpreter (``sys.executable``): the helpers carry their own
``python3`` kernelspec in a private folder, so a user-level or system kernelspec that points at
another Python (or a fresh CI virtualenv with none installed) cannot change what is tested.

- :func:`code` / :func:`markdown` / :func:`notebook` build a notebook from cell sources.
- :func:`run_notebook` executes one with nbclient, like "Run All", and returns it with outputs.
- :func:`notebook_client` gives an nbclient client for finer control (execute cells one by one,
  restart the kernel between cells).
- :class:`Kernel` drives a kernel through ``jupyter_client`` message by message, which is how a
  test sends what nbclient does not, e.g. JupyterLab's ``cellId`` in the request metadata.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager, KernelManager
from nbclient import NotebookClient
from nbclient.util import run_sync

KERNEL_NAME = "python3"
_KERNEL_DIR: Path | None = None


def kernel_dir() -> Path:
    """A private folder holding one kernelspec, ``python3``, that runs ``sys.executable``."""
    global _KERNEL_DIR
    if _KERNEL_DIR is None:
        root = Path(tempfile.mkdtemp(prefix="mlops-nb-kernels-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        spec = root / KERNEL_NAME
        spec.mkdir()
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (tests)",
            "language": "python",
        }))
        _KERNEL_DIR = root
    return _KERNEL_DIR


def _spec_manager() -> KernelSpecManager:
    return KernelSpecManager(kernel_dirs=[str(kernel_dir())], ensure_native_kernel=False)


class LocalKernelManager(AsyncKernelManager):
    """nbclient's kernel manager, bound to the private kernelspec."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("kernel_spec_manager", _spec_manager())
        super().__init__(**kwargs)


def kernel_env(store: str | os.PathLike | None, **extra: str) -> dict[str, str]:
    """The kernel's environment: ours, with ``MLOPS_NB_STORE`` pointing at ``store`` (unset when
    ``store`` is None, so the kernel falls back to ``./mlops.db``)."""
    env = {**os.environ, **extra}
    env.pop("JPY_SESSION_NAME", None)
    env.pop("MLOPS_NB_STORE", None)
    if store is not None:
        env["MLOPS_NB_STORE"] = str(store)
    return env


# -- building notebooks ---------------------------------------------------------------------------


def code(source: str, **metadata: Any) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source.strip("\n"), metadata=metadata)


def markdown(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(source.strip("\n"))


def notebook(cells: Iterable[nbformat.NotebookNode | str]) -> nbformat.NotebookNode:
    """A notebook of ``cells``; a plain string is a code cell."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [code(c) if isinstance(c, str) else c for c in cells]
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write(nb: nbformat.NotebookNode, path: str | os.PathLike) -> Path:
    path = Path(path)
    nbformat.write(nb, str(path))
    return path


def read(path: str | os.PathLike) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


# -- executing notebooks with nbclient ------------------------------------------------------------


@dataclass
class Replies:
    """The kernel's ``execute_reply`` content for each executed cell, by cell index (the last one
    when a cell ran more than once)."""

    by_index: dict[int, dict] = field(default_factory=dict)

    def hook(self, cell: Any, cell_index: int, execute_reply: Mapping | None) -> None:
        if execute_reply is not None:
            self.by_index[cell_index] = dict(execute_reply["content"])


def notebook_client(
    nb: nbformat.NotebookNode, cwd: str | os.PathLike, *, timeout: int = 120, allow_errors: bool = False,
    replies: Replies | None = None,
) -> NotebookClient:
    """An nbclient client that runs ``nb`` in ``cwd`` on a kernel of this interpreter."""
    client = NotebookClient(
        nb, kernel_name=KERNEL_NAME, kernel_manager_class=LocalKernelManager, timeout=timeout,
        startup_timeout=120, allow_errors=allow_errors, resources={"metadata": {"path": str(cwd)}},
    )
    if replies is not None:
        client.on_cell_executed = replies.hook
    return client


def run_notebook(
    nb: nbformat.NotebookNode, cwd: str | os.PathLike, *, store: str | os.PathLike | None, timeout: int = 120,
    allow_errors: bool = False, replies: Replies | None = None,
) -> nbformat.NotebookNode:
    """Execute every cell of ``nb`` in order, as "Run All" does; ``nb`` is filled with outputs.

    Raises nbclient's ``CellExecutionError`` at the first failing cell unless ``allow_errors``.
    """
    client = notebook_client(nb, cwd, timeout=timeout, allow_errors=allow_errors, replies=replies)
    client.execute(env=kernel_env(store))
    return nb


def restart_kernel(client: NotebookClient, timeout: float = 120) -> None:
    """Restart the kernel of a client inside ``client.setup_kernel()``, as the Restart button does."""
    run_sync(client.km.restart_kernel)(now=True)
    run_sync(client.kc.wait_for_ready)(timeout=timeout)


# -- reading outputs ------------------------------------------------------------------------------


def text_of(outputs: Iterable[Mapping]) -> str:
    """Everything a cell showed as text: streams, plain-text results and displays, tracebacks."""
    parts = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            parts.append(output["text"])
        elif kind in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
        elif kind == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
            parts.append("\n".join(output.get("traceback", [])))
    return "\n".join(parts)


def errors_of(outputs: Iterable[Mapping]) -> list[Mapping]:
    return [o for o in outputs if o.get("output_type") == "error"]


# -- one message at a time: jupyter_client ----------------------------------------------------------


@dataclass
class Reply:
    """What one ``execute_request`` produced: the reply content and the iopub outputs."""

    content: dict
    outputs: list[dict]

    @property
    def status(self) -> str:
        return self.content["status"]

    @property
    def text(self) -> str:
        return text_of(self.outputs)


class Kernel:
    """A kernel of this interpreter driven by a blocking ``jupyter_client`` client.

    >>> with Kernel(cwd, env) as kernel:                         # doctest: +SKIP
    ...     kernel.execute("%load_ext mlops_nb")
    ...     kernel.execute("%%stage data\\ndf = ...", cell_id="cell-1")
    """

    def __init__(self, cwd: str | os.PathLike, env: Mapping[str, str], *, timeout: float = 120):
        self.timeout = timeout
        self.km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=_spec_manager())
        self.km.start_kernel(cwd=str(cwd), env=dict(env))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=timeout)

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def restart(self) -> None:
        self.km.restart_kernel(now=True)
        self.kc.wait_for_ready(timeout=self.timeout)

    def execute(self, code: str, *, cell_id: str | None = None) -> Reply:
        """Send one ``execute_request`` (with ``cellId`` in its metadata when given, as JupyterLab
        does) and wait for its reply and for the kernel to go idle."""
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}
        metadata = {"cellId": cell_id} if cell_id else {}
        msg = self.kc.session.msg("execute_request", content, metadata=metadata)
        self.kc.shell_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        deadline = time.monotonic() + self.timeout
        reply = None
        while reply is None:
            candidate = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if candidate["parent_header"].get("msg_id") == msg_id:
                reply = candidate
        outputs = []
        while True:
            try:
                message = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no idle status from the kernel after {code[:40]!r}") from None
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "status" and message["content"]["execution_state"] == "idle":
                break
            if kind in ("stream", "execute_result", "display_data", "error"):
                outputs.append(dict(nbformat.v4.output_from_msg(message)))
        return Reply(dict(reply["content"]), outputs)
