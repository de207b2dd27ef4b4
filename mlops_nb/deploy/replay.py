"""The process export runs its generated retrain.py in: ``python -m mlops_nb.deploy.replay FOLDER``,
or a fork of the warm server ``python -m mlops_nb.deploy.replay --serve`` (:func:`serve`).

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
import os
import sys
from pathlib import Path
from typing import Any

from mlops_nb.capture import fingerprint, json_safe
from mlops_nb.deploy import rowwise
from mlops_nb.deploy.layout import FORMAT_VERSION
from mlops_nb.deploy.reference import reference_files
from mlops_nb.deploy.rows import example_json
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
        pristine = {name: frame.copy() for name, frame in frames.items()}
        X = _features_step(module, frames)  # after the frames were measured: a step may change them in place
        if request.get("x_fingerprint"):
            reproduced[request["x_name"]] = fingerprint(X) == request["x_fingerprint"]
        different = [n for n, same in reproduced.items() if not same]
        if different:
            warnings.append(f"retrain.py's steps did not reproduce {', '.join(different)} exactly (the data source "
                            f"changed since the run, or a step is not deterministic)")
    inputs = rows_text = rowwise_error = None
    if X is not None:
        inputs = X[features] if features and set(features) <= set(map(str, X.columns)) else X
        schema["input"] = {"name": request["x_name"], "columns": columns(inputs)}
        example = example_json(inputs.head(3))
        if request.get("rowwise"):
            raw = rowwise.raw_rows(pristine, binding, target)
            schema["raw"] = {"columns": columns(raw)}
            try:
                rows_text, notes = rowwise.prove(request["rowwise"], pristine, X)
                warnings.extend(notes)
                example = example_json(raw.loc[inputs.index[:3]])
            except rowwise.NotRowwise as exc:
                rowwise_error = str(exc)
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
            "reproduced": reproduced, "warnings": warnings, "features": rows_text, "rowwise_error": rowwise_error}


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
    from mlops_nb.deploy.skops_scan import import_skops_io

    sio = import_skops_io()

    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


def run_request(folder: Path) -> int:
    """Replay the request in ``folder``; 0 with ``result.json`` written, 1 with ``error.json``."""
    try:
        result = replay(folder)
    except StepFailed as exc:
        (folder / ERROR).write_text(json.dumps({"message": " ".join(str(exc).split())}), encoding="utf-8")
        return 1
    (folder / RESULT).write_text(json.dumps(result, default=json_safe), encoding="utf-8")
    return 0


#: Imported once by the warm server, before it forks a replay: most of a replay's time is these imports.
PRELOAD = ("numpy", "pandas", "scipy.stats", "sklearn.base", "skops.io", "mlops_nb.drift")
#: Libraries whose modules a replay used are imported by the server too, for the next replay.
_LEARNED = ("numpy", "pandas", "scipy", "sklearn", "skops", "pyarrow")


def serve() -> int:
    """The warm replay server (``--serve``): import the heavy libraries once, then for each request
    line on stdin (``{"folder", "cwd", "env"}``) fork a child that replays it as a fresh process
    would (from ``cwd``, with ``env``, its output in ``folder``), and answer its exit status on
    stdout. Ends when stdin closes (the kernel that started it is gone)."""
    import importlib

    from mlops_nb.deploy.skops_scan import import_skops_io

    for name in PRELOAD:
        with contextlib.suppress(Exception):
            if name == "skops.io":
                import_skops_io()  # with its ufunc scan in one pass, as load_model imports it
            else:
                importlib.import_module(name)
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        folder = Path(request["folder"])
        pid = os.fork()
        if pid == 0:  # the replay: a copy of this warm process, set up like `python -m` in cwd
            code = 70
            try:
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)  # the server's requests are not the replay's to read
                os.close(devnull)
                for fd, name in ((1, "stdout.txt"), (2, "stderr.txt")):
                    out = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    os.dup2(out, fd)
                    os.close(out)
                os.chdir(request["cwd"])
                sys.path[0] = request["cwd"]
                os.environ.clear()
                os.environ.update(request["env"])
                code = run_request(folder)
                (folder / "modules.json").write_text(json.dumps(
                    [m for m in sys.modules if m.split(".")[0] in _LEARNED]), encoding="utf-8")
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
        with contextlib.suppress(Exception):
            for name in json.loads((folder / "modules.json").read_text(encoding="utf-8")):
                if name not in sys.modules:
                    importlib.import_module(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(serve() if sys.argv[1:] == ["--serve"] else run_request(Path(sys.argv[1])))
