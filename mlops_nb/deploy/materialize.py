"""Export's check of its generated retrain.py: run it, in a process of its own, as retrain.py will
run, and take from what it produced schema.json, the drift reference, the input example and
whether the notebook's frames were reproduced.

The script is written to a temporary folder and run with this interpreter from the notebook's
folder (:mod:`mlops_nb.deploy.replay`); its output is captured and dropped. The process is a fork
of a warm server started on the first export (pandas and scikit-learn already imported), or, where
there is no fork or ``MLOPS_NB_REPLAY_SERVER=0``, a new ``python -m mlops_nb.deploy.replay``. The notebook's kernel
never executes the replayed cells: its working directory, standard output and variables stay as
they were. The bytes that ran are the bytes that ship.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_nb.deploy import replay
from mlops_nb.deploy.layout import SCRIPT_FILE
from mlops_nb.deploy.script.plan import ScriptPlan
from mlops_nb.errors import ExportError


@dataclass
class Built:
    """What running retrain.py at export produced."""

    schema: dict
    reference: dict[str, bytes]
    input_example: str
    reproduced: dict[str, bool]
    warnings: list[str]
    features: str | None = None  #: features.py, proved row-wise; None when there is none
    rowwise_error: str | None = None  #: why the features cannot be replayed per row


def materialize(script: str, plan: ScriptPlan, model: Any, model_bytes: bytes | None, captures: list[dict],
                workdir: str | os.PathLike, rowwise: dict[str, Any] | None = None) -> Built:
    """Run ``script``'s data and feature steps in a subprocess from ``workdir``: check they reproduce
    the notebook's frames (fingerprints), and build schema.json, the reference profile and sample,
    and the input example from what they produce. ``model`` is the loaded model (None when it
    cannot load here), ``model_bytes`` its skops dump. :class:`ExportError` with the step that
    failed and how to fix it."""
    features = [str(c) for c in getattr(model, "feature_names_in_", [])]
    data_caps = {c["name"]: c["fingerprint"] for c in captures if c["stage"] == "data" and c.get("fingerprint")}
    request = {
        "script": SCRIPT_FILE, "model": "model.skops" if model is not None and model_bytes else None,
        "binding": plan.binding, "target": plan.target, "x_name": plan.x_name, "y_name": plan.y_name,
        "features": features, "fingerprints": {n: fp for n, fp in data_caps.items() if n in plan.data_frames},
        "x_fingerprint": (plan.x_capture or {}).get("fingerprint"), "rowwise": rowwise,
    }
    with tempfile.TemporaryDirectory(prefix="mlops-nb-export-") as tmp:
        folder = Path(tmp)
        (folder / SCRIPT_FILE).write_bytes(script.encode())
        if request["model"]:
            (folder / request["model"]).write_bytes(model_bytes)
        (folder / replay.REQUEST).write_text(json.dumps(request), encoding="utf-8")
        # A notebook folder that is gone fails inside the data step (its chdir), with that step's message.
        cwd = str(Path(workdir).absolute()) if os.path.isdir(workdir) else str(folder)
        code = _run(folder, cwd)
        if (folder / replay.ERROR).is_file():
            raise ExportError(json.loads((folder / replay.ERROR).read_text(encoding="utf-8"))["message"])
        if code != 0 or not (folder / replay.RESULT).is_file():
            stderr = (folder / "stderr.txt").read_text(errors="replace") if (folder / "stderr.txt").is_file() else ""
            lines = [line for line in stderr.splitlines() if line.strip()]
            last = lines[-1].strip() if lines else f"exit status {code}"
            raise ExportError(f"retrain.py could not be checked outside the notebook ({last}); re-run the stages "
                              f"and export again, and report it if it persists")
        result = json.loads((folder / replay.RESULT).read_text(encoding="utf-8"))
        reference = {name: (folder / replay.OUT / name).read_bytes() for name in result["reference"]}
    return Built(result["schema"], reference, result["input_example"], result["reproduced"], result["warnings"],
                 result.get("features"), result.get("rowwise_error"))


def _run(folder: Path, cwd: str) -> int:
    """Replay ``folder`` from ``cwd`` in a fresh process; its exit status. A fork of the warm server
    when there is one (the libraries already imported: a fraction of a second instead of the
    seconds pandas and scikit-learn take to import), else ``python -m mlops_nb.deploy.replay``."""
    with _lock:
        code = _run_warm(folder, cwd)
    if code is not None:
        return code
    with open(folder / "stdout.txt", "wb") as out, open(folder / "stderr.txt", "wb") as err:
        return subprocess.run([sys.executable, "-m", "mlops_nb.deploy.replay", str(folder)], cwd=cwd,
                              stdin=subprocess.DEVNULL, stdout=out, stderr=err).returncode


def _run_warm(folder: Path, cwd: str) -> int | None:
    """The exit status of a replay forked by the warm server, or None when there is no server."""
    server = _server()
    if server is not None:
        try:
            server.stdin.write(json.dumps({"folder": str(folder), "cwd": cwd, "env": dict(os.environ)}) + "\n")
            server.stdin.flush()
            answer = server.stdout.readline()
            if answer.strip():
                return int(answer)
        except (OSError, ValueError):
            pass
        except BaseException:  # interrupted: the replay must not outlive the export
            _stop_server()
            raise
        _stop_server()  # it died: a one-shot process does this replay
    return None


_warm: subprocess.Popen | None = None
_ready = False
_lock = threading.Lock()


def warm_up() -> None:
    """Start the warm replay server now, without waiting for it: the notebook calls this when a
    model is registered, so that the export which usually follows finds pandas and scikit-learn
    already imported instead of paying for the imports itself. Does nothing where there is no fork."""
    with _lock:
        _start()


def _start() -> subprocess.Popen | None:
    global _warm, _ready
    if not hasattr(os, "fork") or os.environ.get("MLOPS_NB_REPLAY_SERVER") == "0":
        return None
    if _warm is not None and _warm.poll() is None:
        return _warm
    try:
        _warm = subprocess.Popen([sys.executable, "-m", "mlops_nb.deploy.replay", "--serve"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                 cwd=tempfile.gettempdir(), start_new_session=True)
    except OSError:
        _stop_server()
        return None
    _ready = False
    atexit.unregister(_stop_server)
    atexit.register(_stop_server)
    return _warm


def _server() -> subprocess.Popen | None:
    """The warm replay server of this process, started on first use (or by :func:`warm_up`) and
    ready; None where there is no fork or it could not start."""
    global _ready
    server = _start()
    if server is None or _ready:
        return server
    try:
        if server.stdout.readline().strip() != "ready":
            raise OSError("the replay server did not start")
    except OSError:
        _stop_server()
        return None
    _ready = True
    return server


def _stop_server() -> None:
    """End the warm server and any replay it is running (its whole process group)."""
    global _warm, _ready
    _ready = False
    if _warm is not None:
        with contextlib.suppress(OSError):
            os.killpg(_warm.pid, signal.SIGKILL)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            _warm.wait(timeout=5)
        for stream in (_warm.stdin, _warm.stdout):
            with contextlib.suppress(OSError):
                stream.close()
    _warm = None
