"""Export's check of its generated retrain.py: run it, in a process of its own, as retrain.py will
run, and take from what it produced schema.json, the drift reference, the input example and
whether the notebook's frames were reproduced.

The script is written to a temporary folder and run with this interpreter from the notebook's
folder (:mod:`mlops_nb.deploy.replay`); its output is captured and dropped. The notebook's kernel
never executes the replayed cells: its working directory, standard output and variables stay as
they were. The bytes that ran are the bytes that ship.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
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


def materialize(script: str, plan: ScriptPlan, model: Any, model_bytes: bytes | None, captures: list[dict],
                workdir: str | os.PathLike) -> Built:
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
        "x_fingerprint": (plan.x_capture or {}).get("fingerprint"),
    }
    with tempfile.TemporaryDirectory(prefix="mlops-nb-export-") as tmp:
        folder = Path(tmp)
        (folder / SCRIPT_FILE).write_bytes(script.encode())
        if request["model"]:
            (folder / request["model"]).write_bytes(model_bytes)
        (folder / replay.REQUEST).write_text(json.dumps(request), encoding="utf-8")
        # A notebook folder that is gone fails inside the data step (its chdir), with that step's message.
        cwd = workdir if os.path.isdir(workdir) else folder
        done = subprocess.run([sys.executable, "-m", "mlops_nb.deploy.replay", str(folder)], cwd=cwd,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
        if (folder / replay.ERROR).is_file():
            raise ExportError(json.loads((folder / replay.ERROR).read_text(encoding="utf-8"))["message"])
        if done.returncode != 0 or not (folder / replay.RESULT).is_file():
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            last = lines[-1].strip() if lines else f"exit status {done.returncode}"
            raise ExportError(f"retrain.py could not be checked outside the notebook ({last}); re-run the stages "
                              f"and export again, and report it if it persists")
        result = json.loads((folder / replay.RESULT).read_text(encoding="utf-8"))
        reference = {name: (folder / replay.OUT / name).read_bytes() for name in result["reference"]}
    return Built(result["schema"], reference, result["input_example"], result["reproduced"], result["warnings"])
