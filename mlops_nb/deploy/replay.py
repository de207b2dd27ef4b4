"""The process export runs its generated retrain.py in: ``python -m mlops_nb.deploy.replay FOLDER``.

It loads ``FOLDER/retrain.py`` (the very file that ships), runs its ``notebook_data`` and
``prepare`` from the notebook's folder, and writes back into ``FOLDER/out/`` what export needs:
``result.json`` (schema.json's content, which frames reproduced the notebook's fingerprints, the
input example, warnings) and the reference files. A step that fails writes ``error.json`` with the
one-line message export shows. Running here, not in the kernel, keeps the kernel's working
directory, standard output and namespace as they were (:mod:`mlops_nb.deploy.materialize`).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

from mlops_nb.capture import fingerprint, json_safe
from mlops_nb.deploy.layout import FORMAT_VERSION
from mlops_nb.deploy.reference import reference_files
from mlops_nb.deploy.schema import bound_table, columns
from mlops_nb.deploy.script.load import load_script_file

REQUEST = "request.json"
RESULT = "result.json"
ERROR = "error.json"
OUT = "out"


class StepFailed(Exception):
    """A generated step failed; its message is export's one-line error."""


def replay(folder: Path) -> dict[str, Any]:
    """Run the request in ``folder`` and return the result (the reference files are written to
    ``folder/out/``)."""
    request = json.loads((folder / REQUEST).read_text(encoding="utf-8"))
    model = _load_model(folder / request["model"]) if request.get("model") else None
    binding, target, features = request["binding"], request["target"], request["features"]
    schema: dict[str, Any] = {"format": FORMAT_VERSION, "target": target, "data": None, "frames": {}}
    reproduced: dict[str, bool] = {}
    warnings: list[str] = []
    table = X = None
    if binding is not None:
        module, frames = _data_step(folder / request["script"])
        for name, frame in frames.items():
            expected = request["fingerprints"].get(name)
            if expected:
                reproduced[name] = fingerprint(frame) == expected
        table = bound_table(frames, {"data": {"binding": binding}, "target": target}).copy()
        schema["frames"] = {name: {"rows": int(len(f)), "columns": columns(f)} for name, f in frames.items()}
        schema["data"] = {"binding": binding, "rows": int(len(table)), "columns": columns(table)}
        X = _features_step(module, frames)  # after the frames were measured: a step may change them in place
        if request.get("x_fingerprint"):
            reproduced[request["x_name"]] = fingerprint(X) == request["x_fingerprint"]
        different = [n for n, same in reproduced.items() if not same]
        if different:
            warnings.append(f"retrain.py's steps did not reproduce {', '.join(different)} exactly (the data source "
                            f"changed since the run, or a step is not deterministic)")
    inputs = None
    if X is not None:
        inputs = X[features] if features and set(features) <= set(map(str, X.columns)) else X
        schema["input"] = {"name": request["x_name"], "columns": columns(inputs)}
        example = inputs.head(3).to_json(orient="split", index=False, date_format="iso")
    else:
        schema["input"] = {"name": request["x_name"], "columns": [
            {"name": f, "dtype": None, "kind": "other", "nullable": True} for f in features]}
        example = json.dumps({"columns": features, "data": []})
    schema["output"] = {"name": request["y_name"], "target": target,
                        "classes": json_safe(list(getattr(model, "classes_", []))) or None}
    reference = reference_files(table, model=model, inputs=inputs)
    out = folder / OUT
    for relative, data in reference.items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_bytes(data)
    return {"schema": schema, "reference": sorted(reference), "input_example": example + "\n",
            "reproduced": reproduced, "warnings": warnings}


def _data_step(script: Path) -> tuple[Any, dict[str, Any]]:
    """The loaded script and the frames of its ``notebook_data``. What the cells print goes nowhere:
    it belongs to retrain.py's log, not to the export."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            module = load_script_file(script)
            return module, module.notebook_data()
    except Exception as exc:
        raise StepFailed(
            f"retrain.py could not run the notebook's data step outside the notebook ({type(exc).__name__}: "
            f"{exc}); make the data cell self-contained (its imports and paths) and re-run the stages") from None


def _features_step(module: Any, frames: dict[str, Any]) -> Any:
    """The model input X that the script's ``prepare`` makes of ``frames``."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            X, _ = module.prepare(frames)
    except Exception as exc:
        raise StepFailed(
            f"retrain.py's feature steps failed outside the notebook ({type(exc).__name__}: {exc}); make the "
            f"features and selection cells self-contained and re-run the stages") from None
    return X


def _load_model(path: Path) -> Any:
    """The model export read from the user's own store (their notebook made it): every type it
    needs is trusted here, as in the kernel. Nothing from a package is loaded this way."""
    import skops.io as sio

    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


def _main(argv: list[str]) -> int:
    folder = Path(argv[0])
    try:
        result = replay(folder)
    except StepFailed as exc:
        (folder / ERROR).write_text(json.dumps({"message": " ".join(str(exc).split())}), encoding="utf-8")
        return 1
    (folder / RESULT).write_text(json.dumps(result, default=json_safe), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
