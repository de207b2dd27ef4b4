"""Export a registered model as a deployment package, with a retrain.py generated from the notebook.

:func:`export` writes a package root ``DIR`` holding whole package versions and a ``current`` link
(the layout is described in :mod:`mlops_nb.deploy.package`): ``DIR/versions/v0001/`` on the first export,
the next number on each later export or promotion by retraining, ``DIR/current`` pointing at the one
that serves, and ``DIR/settings.json`` (retraining settings, :mod:`mlops_nb.deploy.retrain`). Each version
holds (package format 1, DESIGN.md section 4)::

    MANIFEST.json          format, run and model ids, created, SHA-256 and size of every other file
    model.skops            the fitted model (load it with mlops_nb.load_model: checksums, allow-list)
    pipeline.json          class path and JSON-safe params, nested for pipelines (package.rebuild_estimator)
    schema.json            what fresh data must look like (the data stage's frames), the target, and
                           the model's own input columns (dtypes, nullability, category domains)
    reference/profile.json mlops_nb.drift.reference_profile of the training table, and under "scores"
                           the profile of the model's scores on its training input (prediction drift)
    reference/sample.*     mlops_nb.drift.reference_sample: at most 10,000 training rows (Parquet when
                           pyarrow is installed, else CSV)
    metrics.json           the run's metrics, requirement and gate
    requirements.txt       exact pins of the installed libraries the model needs
    input_example.json     a few rows of model input (pandas "split" orientation)
    retrain.py             the data, features and selection cells as plain functions, then a call
                           into the retraining runtime (mlops_nb.deploy.package.main)
    crontab.txt            the cron line: absolute interpreter, cd into DIR, store path, current/retrain.py,
                           appending to DIR-retrain.log beside DIR
    airflow_dag.py         (airflow=True) BashOperator running retrain.py, max_active_runs=1, 99 skipped
    cronjob.yaml           (kubernetes=True) a CronJob with concurrencyPolicy: Forbid

A version appears whole or not at all: its files are written and fsynced under a temporary name,
renamed, and only then does ``current`` move to it (``os.replace`` of a new symlink); a new package
root is built whole beside ``DIR`` and renamed into place. Export takes the package's lock, so it
never races a retraining job. Export refuses, saying why and how to override with
``force="reason"``, a model that failed or never passed its requirement gate, a stale model, a run
with no ``data`` stage, and a model that cannot be loaded safely. The export is recorded as the
run's ``deployment`` stage.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import inspect
import io
import json
import math
import os
import re
import shlex
import shutil
import symtable
import sys
import tempfile
import textwrap
import time
import tokenize
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlops_nb.capture import _class_path, _column_kind, _is_estimator, fingerprint, json_safe
from mlops_nb.deploy import package
from mlops_nb.errors import ExportError, MlopsError, PackageLocked
from mlops_nb.stages import REPLAYED, STAGE_INDEX
from mlops_nb.store import Store
from mlops_nb.tracking import integrity, registry
from mlops_nb.tracking.context import current

DEFAULT_SCHEDULE = "0 3 * * 1"
MAX_CATEGORIES = 1_000
#: Always pinned in requirements.txt, with the distributions of any other library the model uses.
PINNED = ("scikit-learn", "numpy", "scipy", "pandas", "skops", "mlops-nb")
#: Cell magics whose body is ordinary Python that retrain.py keeps.
PASSTHROUGH_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
#: Bare calls that only show something in a notebook, dropped from retrain.py.
_ECHO_CALLS = frozenset({"display", "head", "tail", "describe", "info"})
_FUNCTION_NAMES = {"data": "load_data", "features": "build_features", "selection": "select_features"}
_RESERVED = frozenset({"prepare", "notebook_data", "mlops_nb", "WORKDIR", "DATA_FRAMES", "ns"})


@dataclass
class ExportResult:
    """What :func:`export` wrote: the package ``path``, the model, the files and what was said."""

    path: Path
    name: str
    version: int
    aliases: list[str]
    run_id: int
    files: dict[str, dict]
    schedule: str
    next_runs: list[datetime]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    forced: str | None = None
    overridden: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        tags = f" ({', '.join(self.aliases)})" if self.aliases else ""
        lines = [
            f"mlops: exported {self.name} version {self.version}{tags} of run {self.run_id} to {self.path} "
            f"({len(self.files) + 1} files, {self.seconds:.1f} s)",
            f"  schedule {self.schedule}; next runs: "
            + ", ".join(moment.strftime("%Y-%m-%d %H:%M") for moment in self.next_runs),
            f"  cron line in {self.path / package.CURRENT / 'crontab.txt'}",
        ]
        if self.forced:
            overrode = "; ".join(self.overridden) or "nothing needed overriding"
            lines.append(f"  forced ({self.forced}): {overrode}")
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)


# -- the export -------------------------------------------------------------------------------------


def export_package(
    name: str,
    *,
    version: int | str | None = None,
    to: str | os.PathLike,
    schedule: str | None = None,
    data: str | None = None,
    force: str | None = None,
    airflow: bool = False,
    kubernetes: bool = False,
    X: str | None = None,
    y: str | None = None,
    store: str | os.PathLike | Store | None = None,
    command: str | None = None,
    workdir: str | os.PathLike | None = None,
) -> ExportResult:
    """Write the deployment package of model ``name`` to folder ``to`` and record it.

    ``version``: a version number or alias (default: the champion, else the latest version).
    ``schedule``: a cron expression for retraining (default ``0 3 * * 1``, Mondays 03:00),
    validated; the next three runs are reported. ``data``: where fresh data will be (a CSV, Parquet
    or JSON path or glob, made absolute; default: retrain.py re-runs the notebook's own data step).
    ``force``: a reason to export despite the refusals (recorded with the export). ``airflow``,
    ``kubernetes``: also write ``airflow_dag.py`` / ``cronjob.yaml``. ``X``, ``y``: the notebook
    names of the model's input frame and target, when export cannot tell them on its own.
    ``store``: the store (default: the notebook's, else ``$MLOPS_NB_STORE`` / ``./mlops.db``).
    ``command``: the command line to record. ``workdir``: the folder the notebook ran in (default:
    the current folder inside a kernel, else the notebook's folder or the store's).

    Raises :class:`ExportError` saying why, with the fix; nothing is written then.
    """
    started, clock = time.time(), time.perf_counter()
    if force is not None and not str(force).strip():
        raise ExportError("--force needs a reason, e.g. --force \"hotfix approved by the data team\"")
    opened, _, _ = registry.context(None, store)
    chosen = registry.get_version(name, version, store=opened)
    if chosen.run_id is None:
        raise ExportError(f"{chosen} is linked to no run; register a model from a notebook run to export it")
    run = opened.run(chosen.run_id)
    schedule = (schedule or DEFAULT_SCHEDULE).strip()
    next_runs = next_run_times(schedule)
    target = Path(to).expanduser().absolute()
    _check_target(target)

    model_bytes = _model_bytes(opened, chosen)
    captures = opened.captures(chosen.run_id)
    model_capture = next((c for c in captures if c["id"] == chosen.capture_id), None)
    events = opened.events(chosen.run_id)
    requirement = opened.requirement(chosen.run_id)
    model = _load_own_model(model_bytes)
    refused = refusals(opened, chosen.run_id, events, model_capture, package.untrusted_types(model_bytes))
    if refused and force is None:
        listing = "\n".join(f"  - {reason}" for reason in refused)
        raise ExportError(
            f"export of {chosen} (run {chosen.run_id}) refused:\n{listing}\n"
            f"Fix the above and export again, or override with --force \"REASON\" "
            f"(force=\"REASON\" in Python); the reason is recorded with the export.")

    if workdir is None:
        workdir = _default_workdir(run, opened)
    target_column = (requirement or {}).get("target")
    plan = plan_script(events, captures, model_capture, model, target=target_column, X=X, y=y)
    data_source = _absolute_source(data)
    header = {
        "name": chosen.name, "version": chosen.version, "run": run, "workdir": str(Path(workdir).absolute()),
        "created": started,
    }
    script = render_script(plan, header)
    built = materialize(script, plan, model, captures)

    warnings = [*plan.warnings, *built.warnings, *_integrity_notes(events)]
    if data_source and "://" not in data_source and not _matches(data_source):
        warnings.append(f"nothing matches {data_source} yet; retraining exits 66 until data arrives there")
    store_path = str(opened.path)
    log_path = target.parent / f"{target.name}-retrain.log"
    line = cron_command(target, store_path, data_source, log_path)
    files: dict[str, bytes] = {
        package.MODEL_FILE: model_bytes,
        package.PIPELINE_FILE: _json_bytes(pipeline_document(model, model_capture)),
        package.SCHEMA_FILE: _json_bytes(built.schema),
        **built.reference,
        "metrics.json": _json_bytes(_metrics(opened, chosen.run_id, requirement)),
        "requirements.txt": requirements_txt(model, sample_parquet=any(n.endswith(".parquet") for n in built.reference)
                                             ).encode(),
        "input_example.json": built.input_example.encode(),
        package.SCRIPT_FILE: script.encode(),
        "crontab.txt": crontab_text(schedule, line, chosen, target).encode(),
    }
    if airflow:
        files["airflow_dag.py"] = airflow_dag(chosen, schedule, line.split(" >> ")[0]).encode()
    if kubernetes:
        files["cronjob.yaml"] = cronjob_yaml(chosen, schedule, target, store_path, data_source).encode()
    manifest = {
        "format": package.FORMAT_VERSION,
        "created": datetime.fromtimestamp(started, timezone.utc).isoformat(),
        "mlops_nb": _version("mlops-nb"),
        "model": {
            "name": chosen.name, "version": chosen.version, "class": chosen.class_path,
            "sha256": hashlib.sha256(model_bytes).hexdigest(),
            "variable": model_capture["name"] if model_capture else None,
            "stage": model_capture["stage"] if model_capture else None,
        },
        "run": {"id": run["id"], "project": run["project"], "name": run["name"], "notebook": run["notebook"]},
        "store": store_path,
        "data_source": data_source,
        "schedule": schedule,
        "log": str(log_path),
        "requirement": None if requirement is None else {
            k: requirement[k] for k in ("metric", "op", "threshold", "target")},
        "forced": force,
        "overridden": refused if force is not None else [],
    }
    listed = write_package(target, files, manifest)
    manifest_bytes = (package.package_dir(target) / package.MANIFEST).read_bytes()
    seconds = time.perf_counter() - clock
    summary = {
        "model": chosen.name, "version": chosen.version, "path": str(target), "schedule": schedule,
        "next_runs": [moment.isoformat() for moment in next_runs], "data_source": data_source,
        "files": len(listed), "forced": force, "overridden": manifest["overridden"],
        "reproduced": built.reproduced, "warnings": warnings,
    }
    opened.record_deployment(
        chosen.run_id, source=command or _api_command(name, to, version, schedule, data, force),
        start_time=started, duration=seconds, summary=summary, manifest=opened.put_bytes(manifest_bytes),
    )
    return ExportResult(
        target, chosen.name, chosen.version, chosen.aliases, chosen.run_id, listed, schedule, next_runs,
        seconds, warnings, force, manifest["overridden"],
    )


def _api_command(name, to, version, schedule, data, force) -> str:
    args = [repr(name), f"to={str(to)!r}"]
    args += [f"{k}={v!r}" for k, v in (("version", version), ("schedule", schedule), ("data", data),
                                        ("force", force)) if v is not None]
    return f"mnb.export({', '.join(args)})"


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target} is a file; export into a folder path (--to DIR)")
    if target.is_dir() and (target / package.MANIFEST).is_file() and not (target / package.VERSIONS_DIR).is_dir():
        raise ExportError(
            f"{target} holds a package in the single-folder layout of earlier mlops-nb versions; move it away "
            f"(or export to a new folder with --to): exports now keep versions in {target}/versions/")
    if target.is_dir() and any(target.iterdir()) and not (target / package.VERSIONS_DIR).is_dir():
        raise ExportError(
            f"{target} is a folder with files and no {package.MANIFEST}: not a package to replace; "
            f"choose a new or empty folder with --to")


def _model_bytes(store: Store, chosen: registry.ModelVersion) -> bytes:
    artifact = store.artifact(chosen.artifact_id)
    path = store.artifact_path(artifact["path"]) if artifact else None
    if path is None or not path.is_file():
        raise ExportError(f"the model file of {chosen} is missing from {store.artifacts_dir}; register it again")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != artifact["sha256"]:
        raise ExportError(f"the stored model file of {chosen} ({path}) is damaged (checksum); register it again")
    return data


def _load_own_model(data: bytes) -> Any:
    """The model from our own store (the user's notebook made it), or None when it cannot load here."""
    import skops.io as sio

    try:
        return sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    except Exception:
        return None


def refusals(store: Store, run_id: int, events: list[dict], model_capture: dict | None,
             untrusted: list[str]) -> list[str]:
    """Why the model of ``run_id`` should not be exported (empty when it may be), one line each."""
    reasons = []
    model_seq = model_capture["seq"] if model_capture else None
    gates = [g for g in store.gates(run_id) if model_seq is None or (g["seq"] or 0) > model_seq]
    requirement = store.requirement(run_id)
    if not gates:
        if requirement is None:
            reasons.append("never validated: the run states no requirement; add `%mlops require METRIC >= VALUE "
                           "--target COLUMN` and run the validation stage")
        else:
            reasons.append(f"never validated: no validation stage measured {requirement['metric']} after the model "
                           f"was fitted; run the validation stage")
    elif not gates[-1]["passed"]:
        gate = gates[-1]
        value = "nothing" if gate["value"] is None else f"{gate['value']:.4g}"
        reasons.append(f"failed its requirement: {gate['metric']} {gate['op']} {gate['threshold']:g} "
                       f"got {value} in the validation stage")
    model_stage = (model_capture or {}).get("stage") or "model"
    depends = {s for s in integrity.UPSTREAM if STAGE_INDEX[s] <= STAGE_INDEX.get(model_stage, STAGE_INDEX["model"])}
    stale = integrity.stale_stages(events) & depends
    if stale:
        messages = [w.message for w in integrity.check(events) if w.kind == "stale" and w.stage in stale]
        reasons.append(f"stale: {'; '.join(messages)}")
    if not any(e["kind"] == "stage" and e["stage"] == "data" and e["status"] == "ok" for e in events):
        reasons.append("no data stage: retraining needs to know which frames hold the data; load it in a "
                       "`%%stage data` cell and re-run the stages after it")
    unloadable = (model_capture or {}).get("summary", {}).get("unloadable")
    if unloadable:
        reasons.append(f"unloadable: the model {unloadable}")
    elif untrusted:
        reasons.append(f"untrusted types: load_model would refuse {', '.join(untrusted)} (outside mlops-nb's "
                       f"allow-list, mlops_nb.deploy.package.TRUSTED_TYPES)")
    return reasons


def _integrity_notes(events: list[dict]) -> list[str]:
    return [w.message for w in integrity.check(events) if w.kind in ("edited", "restart", "unstaged_cells")]


def _default_workdir(run: dict, store: Store) -> Path:
    here = current()
    if here is not None and here.workdir:
        return Path(here.workdir)
    if run.get("notebook"):
        notebook = Path(run["notebook"])
        if notebook.is_absolute() or (store.path.parent / notebook).exists():
            return (store.path.parent / notebook).parent
    return store.path.parent


def _absolute_source(source: str | None) -> str | None:
    if not source:
        return None
    if "://" in source:
        return source
    return os.path.abspath(os.path.expanduser(source))


def _matches(source: str) -> bool:
    import glob

    return bool(glob.glob(source)) if glob.has_magic(source) else os.path.exists(source)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, default=json_safe, allow_nan=False) + "\n").encode()


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _metrics(store: Store, run_id: int, requirement: dict | None) -> dict[str, Any]:
    details = store.run_details(run_id)
    gates = details["gates"]
    return {
        "run_id": run_id,
        "metrics": {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in details["metrics"].items()},
        "requirement": None if requirement is None else {
            k: requirement[k] for k in ("metric", "op", "threshold", "target", "notes")},
        "gate": None if not gates else {k: gates[-1][k] for k in ("metric", "op", "threshold", "value", "passed")},
    }


# -- schedules and schedulers ------------------------------------------------------------------------


def next_run_times(schedule: str, count: int = 3, *, start: datetime | None = None) -> list[datetime]:
    """The next ``count`` times cron expression ``schedule`` fires (local time); :class:`ExportError`
    when it is not a valid five-field cron expression."""
    from croniter import croniter

    fields = schedule.split()
    if len(fields) != 5 or not croniter.is_valid(schedule):
        raise ExportError(
            f"{schedule!r} is not a cron schedule; write five fields MINUTE HOUR DAY MONTH WEEKDAY, "
            f"for example \"0 3 * * 1\" (Mondays at 03:00)")
    it = croniter(schedule, start or datetime.now().astimezone())
    return [it.get_next(datetime) for _ in range(count)]


def cron_command(target: Path, store_path: str, data_source: str | None, log_path: Path,
                 python: str | None = None) -> str:
    """The job's shell command: cron gives a bare environment (no virtualenv, no MLOPS_NB_STORE,
    PATH=/usr/bin:/bin), so it uses the absolute interpreter (``python``, default this one), cds
    into the package root, sets the store, runs the current version's retrain.py and appends to
    ``log_path``."""
    data = f" --data {shlex.quote(data_source)}" if data_source else ""
    return (f"cd {shlex.quote(str(target))} && MLOPS_NB_STORE={shlex.quote(store_path)} "
            f"{shlex.quote(python or sys.executable)} {package.CURRENT}/retrain.py{data} "
            f">> {shlex.quote(str(log_path))} 2>&1")


def crontab_text(schedule: str, command: str, chosen: registry.ModelVersion, target: Path) -> str:
    # In a crontab line an unescaped % ends the command: escape every one.
    return (f"# mlops-nb: retrain model {chosen.name} (package {target}); install with\n"
            f"#   mlops-nb cron install {target}\n"
            f"{schedule} {command.replace('%', chr(92) + '%')}\n")


def airflow_dag(chosen: registry.ModelVersion, schedule: str, command: str) -> str:
    dag_id = re.sub(r"[^A-Za-z0-9_]", "_", f"mlops_nb_retrain_{chosen.name}")
    return f'''"""Airflow DAG: retrain model {chosen.name!r} with its exported retrain.py (generated by mlops-nb).

Exit status 99 means "ran fine, kept the champion" and is shown as skipped; any other non-zero
status fails the task. Put this file in the DAGs folder of an Airflow whose workers can run the command.
"""

from datetime import datetime, timezone

from airflow import DAG

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

with DAG(
    dag_id={dag_id!r},
    schedule={schedule!r},
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["mlops-nb"],
) as dag:
    BashOperator(
        task_id="retrain",
        bash_command={command!r},
        skip_on_exit_code=99,
    )
'''


def cronjob_yaml(chosen: registry.ModelVersion, schedule: str, target: Path, store_path: str,
                 data_source: str | None) -> str:
    name = re.sub(r"[^a-z0-9-]", "-", f"mlops-nb-retrain-{chosen.name}".lower())[:52].strip("-")
    store_dir = str(Path(store_path).parent)
    args = ["python", f"{package.CURRENT}/retrain.py", *(["--data", data_source] if data_source else [])]
    # Exit 99 (champion kept) is a success for Kubernetes; anything else non-zero fails the job.
    shell = " ".join(shlex.quote(a) for a in args) + "; code=$?; [ $code -eq 99 ] && exit 0; exit $code"
    q = json.dumps
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"""# Kubernetes CronJob: retrain model {chosen.name} with its exported retrain.py (generated by mlops-nb).
# The image must have the packages of requirements.txt installed (for example FROM python:{python}-slim
# plus `pip install -r requirements.txt`). The package and the store's folder are mounted from the
# node at the paths they had at export; replace the hostPath volumes with your own storage.
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {q(name)}
  labels:
    app.kubernetes.io/managed-by: mlops-nb
spec:
  schedule: {q(schedule)}
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 3600
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 3
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: retrain
              image: {q(f"python:{python}-slim")}
              workingDir: {q(str(target))}
              command: ["sh", "-c", {q(shell)}]
              env:
                - name: MLOPS_NB_STORE
                  value: {q(store_path)}
              volumeMounts:
                - name: package
                  mountPath: {q(str(target))}
                - name: store
                  mountPath: {q(store_dir)}
          volumes:
            - name: package
              hostPath:
                path: {q(str(target))}
            - name: store
              hostPath:
                path: {q(store_dir)}
"""


# -- pipeline.json and requirements.txt --------------------------------------------------------------


def pipeline_spec(est: Any) -> dict[str, Any]:
    """``{"class", "params"}`` of an estimator with every parameter encoded so that
    :func:`mlops_nb.deploy.package.rebuild_estimator` rebuilds the same unfitted estimator: nested
    estimators as ``{"estimator": spec}``, tuples, arrays, types and functions tagged."""
    return {"class": _class_path(est), "params": {k: _encode(v) for k, v in est.get_params(deep=False).items()}}


def _encode(value: Any) -> Any:
    import functools

    import numpy as np

    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        return _encode(value.item())
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, np.ndarray):
        return {"ndarray": {"data": value.tolist(), "dtype": str(value.dtype)}}
    if _is_estimator(value):
        return {"estimator": pipeline_spec(value)}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _encode(v) for k, v in value.items()}}
    if isinstance(value, type):
        return {"type": _class_path(value)}
    if isinstance(value, functools.partial):
        return {"partial": {"func": _callable_path(value.func), "args": [_encode(a) for a in value.args],
                            "keywords": {k: _encode(v) for k, v in value.keywords.items()}}}
    if callable(value) and _callable_path(value) is not None:  # functions, ufuncs, builtins
        return {"callable": _callable_path(value)}
    params = _init_params(value)
    if params is not None:  # an object rebuilt from its constructor arguments: make_column_selector, KFold
        return {"object": {"class": _class_path(value), "params": params}}
    return {"unrebuildable": json_safe(value) if not callable(value) else repr(value)[:200]}


def _init_params(value: Any) -> dict[str, Any] | None:
    """Encoded constructor arguments of a library object that keeps each one as an attribute of the
    same name (scikit-learn's convention); None for anything else."""
    cls = type(value)
    if cls.__module__.split(".")[0] not in ("sklearn", "numpy", "scipy") or not hasattr(value, "__dict__"):
        return None
    try:
        names = [p.name for p in inspect.signature(cls).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD
                 or p.kind is p.KEYWORD_ONLY]
    except (TypeError, ValueError):
        return None
    if not all(name in vars(value) for name in names):
        return None
    return {name: _encode(vars(value)[name]) for name in names}


def _callable_path(func: Any) -> str | None:
    module = getattr(func, "__module__", None)
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if not module or not name or "<" in name or module == "__main__":
        return None
    return f"{module}.{name}"


def pipeline_document(model: Any, model_capture: dict | None) -> dict[str, Any]:
    """pipeline.json: the spec, whether it rebuilds, and the library versions it was made with."""
    if model is None:  # a model that cannot load here (forced export): the capture's description
        spec = {k: v for k, v in ((model_capture or {}).get("summary") or {}).items() if k in ("class", "params")}
        return {"format": package.FORMAT_VERSION, "rebuildable": False, **spec}
    spec = pipeline_spec(model)
    text = json.dumps(spec)
    return {"format": package.FORMAT_VERSION, "rebuildable": '"unrebuildable"' not in text,
            "scikit-learn": _version("scikit-learn"), **spec}


def requirements_txt(model: Any, *, sample_parquet: bool) -> str:
    """Exact pins (``name==version``) of the installed distributions the model needs."""
    names = list(PINNED)
    if sample_parquet:
        names.append("pyarrow")
    if model is not None:
        roots = {path.split(".", 1)[0] for path in re.findall(r'"(?:class|type|callable)": "([^"]+)"',
                                                                json.dumps(pipeline_spec(model)))}
        roots -= {"sklearn", "numpy", "scipy", "builtins", "functools"}
        if roots:
            from importlib import metadata

            owners = metadata.packages_distributions()
            names.extend(dist for root in sorted(roots) for dist in owners.get(root, [])[:1])
    lines = [f"# exact versions the model was exported with (Python {sys.version.split()[0]})"]
    for dist in dict.fromkeys(names):
        version = _version(dist)
        lines.append(f"{dist}=={version}" if version else f"# {dist}: not installed at export")
    return "\n".join(lines) + "\n"


# -- retrain.py: from recorded cells to plain functions -----------------------------------------------


@dataclass
class Step:
    """One recorded cell turned into a function of retrain.py."""

    stage: str
    seq: int
    execution_count: int | None
    function: str
    body: str
    inputs: list[str]
    outputs: list[str]
    nested_outputs: list[str]
    imports: list[str]
    referenced: set[str]
    assigned: set[str]
    imported: set[str]


@dataclass
class ScriptPlan:
    """What retrain.py will contain and how fresh data and the model's X and y are found."""

    steps: list[Step]
    imports: list[str]
    header: list[str]
    binding: dict[str, Any] | None
    x_name: str | None
    y_name: str | None
    y_expression: str
    target: str | None
    data_frames: list[str]
    x_capture: dict | None
    warnings: list[str] = field(default_factory=list)


def replay_cells(events: list[dict], upto_seq: int | None) -> list[dict]:
    """The stage attempts retrain.py replays: per ``data``, ``features`` and ``selection``, its
    latest successful cells that ran before the model was fitted (by cell id when the front end
    sent ids; else the latest block of back-to-back attempts, one per distinct source), in the
    order they ran."""
    stage_rows = [e for e in events if e["kind"] == "stage"]
    chosen = []
    for stage in REPLAYED:
        rows = [(i, r) for i, r in enumerate(stage_rows)
                if r["stage"] == stage and (upto_seq is None or r["seq"] < upto_seq)]
        if not rows:
            continue
        if any(r.get("cell_id") for _, r in rows):
            latest = {}
            for _, r in rows:
                if r["status"] == "ok":
                    latest[r.get("cell_id")] = r
            chosen.extend(latest.values())
            continue
        k = len(rows) - 1
        while k > 0 and rows[k - 1][0] == rows[k][0] - 1:
            k -= 1
        by_source = {}
        for _, r in rows[k:]:
            if r["status"] == "ok":
                by_source.pop(r["source_sha256"], None)
                by_source[r["source_sha256"]] = r
        chosen.extend(by_source.values())
    return sorted(chosen, key=lambda r: r["seq"])


def clean_cell(source: str) -> tuple[str, list[str]]:
    """A cell's Python without its ``%%stage`` header, magics, ``!shell`` lines and bare display
    expressions (``df.head()``, ``display(x)``, a lone name). Returns the code and notes on what
    was dropped. Line numbers and comments of what stays are kept."""
    from IPython.core.inputtransformer2 import TransformerManager

    lines = source.splitlines()
    notes = []
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and re.match(r"\s*%%stage\b", lines[0]):
        lines.pop(0)
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].strip()[2:].split()[0] if lines[0].strip()[2:].split() else ""
        if magic not in PASSTHROUGH_CELL_MAGICS:
            return "", [f"dropped a %%{magic} cell, which is not Python"]
        lines.pop(0)
    text = "\n".join(lines) + "\n"
    transformed = TransformerManager().transform_cell(text)
    try:
        tree = ast.parse(transformed)
    except SyntaxError as exc:
        raise ExportError(f"a recorded cell does not parse as Python ({exc.msg}, line {exc.lineno}):\n"
                          f"{textwrap.indent(text, '    ')}") from None
    if len(transformed.splitlines()) != len(lines):  # an unusual transform: fall back to the AST
        body = [s for s in tree.body if not (_uses_ipython(s) or _is_echo(s))]
        return ast.unparse(ast.Module(body=body, type_ignores=[])) + "\n", notes
    dropped: set[int] = set()
    for statement in tree.body:
        if _uses_ipython(statement) or _is_echo(statement):
            dropped.update(range(statement.lineno, statement.end_lineno + 1))
            if _uses_ipython(statement):
                notes.append(f"dropped notebook-only line: {lines[statement.lineno - 1].strip()[:60]}")
    kept = [line for number, line in enumerate(lines, 1) if number not in dropped]
    return "\n".join(kept).strip("\n") + "\n", notes


def _uses_ipython(statement: ast.stmt) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "get_ipython" for n in ast.walk(statement))


def _is_echo(statement: ast.stmt) -> bool:
    if not isinstance(statement, ast.Expr):
        return False
    value = statement.value
    if isinstance(value, ast.Name | ast.Attribute | ast.Subscript):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name == "display" or (isinstance(func, ast.Attribute) and name in _ECHO_CALLS):
            return True
    return False


def _top_level_bindings(tree: ast.Module) -> tuple[list[str], list[str], set[str]]:
    """Names a cell binds at its top level: (direct, in compound statements, loop/with/except targets)."""
    direct, nested, targets = [], [], set()

    def store_names(node: ast.AST) -> list[str]:
        return [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]

    def visit(statements: list[ast.stmt], into: list[str]) -> None:
        for s in statements:
            if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                into.append(s.name)
            elif isinstance(s, ast.Assign):
                for t in s.targets:
                    into.extend(store_names(t))
            elif isinstance(s, ast.AugAssign | ast.AnnAssign):
                if getattr(s, "value", None) is not None or isinstance(s, ast.AugAssign):
                    into.extend(store_names(s.target))
            elif isinstance(s, ast.For | ast.AsyncFor):
                targets.update(store_names(s.target))
                visit(s.body + s.orelse, nested)
            elif isinstance(s, ast.With | ast.AsyncWith):
                for item in s.items:
                    if item.optional_vars is not None:
                        targets.update(store_names(item.optional_vars))
                visit(s.body, nested)
            elif isinstance(s, ast.If | ast.While):
                visit(s.body + s.orelse, nested)
            elif isinstance(s, ast.Try):
                for handler in s.handlers:
                    if handler.name:
                        targets.add(handler.name)
                    visit(handler.body, nested)
                visit(s.body + s.orelse + s.finalbody, nested)
            if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
                for n in ast.walk(s):  # walrus anywhere in the statement
                    if isinstance(n, ast.NamedExpr):
                        into.append(n.target.id)

    visit(tree.body, direct)
    deleted = {t.id for s in tree.body if isinstance(s, ast.Delete) for t in s.targets if isinstance(t, ast.Name)}
    direct = [n for n in dict.fromkeys(direct) if n not in deleted]
    nested = [n for n in dict.fromkeys(nested) if n not in direct and n not in deleted]
    return direct, nested, targets


def _referenced(code: str) -> set[str]:
    """Global names a piece of code reads (at top level or from inside its functions)."""
    names: set[str] = set()

    def walk(table: symtable.SymbolTable, top: bool) -> None:
        for symbol in table.get_symbols():
            if symbol.is_referenced() and (top or symbol.is_global()):
                names.add(symbol.get_name())
        for child in table.get_children():
            walk(child, False)

    walk(symtable.symtable(code, "<cell>", "exec"), True)
    return names


def _split_imports(code: str) -> tuple[str, list[str], set[str]]:
    """Take a cell's top-level imports out (they go to the top of retrain.py, where every step sees
    them). Returns the rest, the import statements and the names they bind."""
    tree = ast.parse(code)
    lines = code.splitlines()
    imports, bound, dropped = [], set(), set()
    for s in tree.body:
        if isinstance(s, ast.Import | ast.ImportFrom):
            imports.append("\n".join(lines[s.lineno - 1:s.end_lineno]).strip())
            bound.update((a.asname or a.name).split(".")[0] for a in s.names)
            dropped.update(range(s.lineno, s.end_lineno + 1))
        elif isinstance(s, ast.Global | ast.Nonlocal):
            raise ExportError("a recorded cell uses `global`, which retrain.py cannot turn into a function; "
                              "remove it from the cell and re-run the stages")
    rest = "\n".join(line for n, line in enumerate(lines, 1) if n not in dropped).strip("\n")
    return (rest + "\n" if rest else ""), imports, bound


def _make_step(row: dict, function: str) -> tuple[Step, list[str]]:
    code, notes = clean_cell(row["source"])
    code, imports, imported = _split_imports(code)
    tree = ast.parse(code)
    direct, nested, targets = _top_level_bindings(tree)
    referenced = _referenced(code) if code.strip() else set()
    step = Step(row["stage"], row["seq"], row.get("execution_count"), function, code, [], direct, nested, imports,
                referenced - imported, set(direct) | set(nested) | targets | imported, imported)
    return step, notes


def _header_definitions(events: list[dict], steps: list[Step], upto_seq: int | None
                        ) -> tuple[list[str], list[str], set[str]]:
    """Imports, functions, classes and literal constants defined outside the replayed cells (in
    unstaged cells or other stages, before the model was fitted) that the replayed code uses:
    (imports, other definitions, the names they bind)."""
    import builtins

    replayed = {s.seq for s in steps}
    definitions: dict[str, tuple[str, set[str]]] = {}
    import_texts: set[str] = set()
    for event in events:
        if event["seq"] in replayed or not event.get("source") or event.get("status") == "error":
            continue
        if upto_seq is not None and event["seq"] >= upto_seq:
            continue
        try:
            code, _ = clean_cell(event["source"])
            tree = ast.parse(code)
        except (ExportError, SyntaxError):
            continue
        lines = code.splitlines()
        for s in tree.body:
            names: list[str] = []
            if isinstance(s, ast.Import | ast.ImportFrom):
                names = [(a.asname or a.name).split(".")[0] for a in s.names if a.name != "*"]
            elif isinstance(s, ast.FunctionDef | ast.ClassDef):
                names = [s.name]
            elif (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
                  and _is_literal(s.value)):
                names = [s.targets[0].id]
            if not names:
                continue
            first = min([s.lineno, *(d.lineno for d in getattr(s, "decorator_list", []))])
            text = "\n".join(lines[first - 1:s.end_lineno])
            uses = set()
            if isinstance(s, ast.Import | ast.ImportFrom):
                import_texts.add(text)
            else:
                uses = _referenced(text)
            for name in names:
                definitions[name] = (text, uses)
    needed = set().union(*(s.referenced for s in steps)) - set(dir(builtins))
    for step in steps:
        needed -= step.assigned
    included: dict[str, str] = {}
    pending = [n for n in needed if n in definitions]
    while pending:
        name = pending.pop()
        if name in included:
            continue
        text, uses = definitions[name]
        included[name] = text
        pending.extend(n for n in uses if n in definitions and n not in included)
    order = {text: i for i, (text, _) in enumerate(definitions.values())}
    header = sorted(dict.fromkeys(included.values()), key=lambda t: order.get(t, 0))
    return ([t for t in header if t in import_texts], [t for t in header if t not in import_texts],
            set(included))


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return False
    return True


def plan_script(events: list[dict], captures: list[dict], model_capture: dict | None, model: Any, *,
                target: str | None, X: str | None = None, y: str | None = None) -> ScriptPlan:
    """Decide what retrain.py contains: the replayed cells as steps, the header definitions, how
    fresh data binds to the data stage's frames, and where X and y are after the steps.
    :class:`ExportError` asks for ``--X NAME --y NAME`` where this is ambiguous."""
    import builtins

    upto = model_capture["seq"] if model_capture else None
    rows = replay_cells(events, upto)
    warnings: list[str] = []
    steps: list[Step] = []
    counts = {stage: sum(1 for r in rows if r["stage"] == stage) for stage in REPLAYED}
    seen: dict[str, int] = {}
    for row in rows:
        seen[row["stage"]] = seen.get(row["stage"], 0) + 1
        base = _FUNCTION_NAMES[row["stage"]]
        step, notes = _make_step(row, base if counts[row["stage"]] == 1 else f"{base}_{seen[row['stage']]}")
        steps.append(step)
        warnings.extend(f"{row['stage']} cell [{row.get('execution_count')}]: {n}" for n in notes)
    header_imports, header, header_names = _header_definitions(events, steps, upto)
    clash = sorted((header_names | {n for s in steps for n in s.assigned if n in _RESERVED}) & _RESERVED)
    if clash:
        raise ExportError(f"the notebook defines {', '.join(clash)}, a name retrain.py needs for itself; "
                          f"rename it in the notebook and re-run the stages")

    replayed_seqs = {s.seq for s in steps}
    stage_caps = [c for c in captures if c["seq"] in replayed_seqs and c["kind"] in ("dataframe", "series")]
    data_caps = {c["name"]: c for c in stage_caps if c["stage"] == "data"}
    latest_caps = {c["name"]: c for c in stage_caps}
    if X is not None and X not in latest_caps:
        raise ExportError(f"--X {X}: the data, features and selection stages produced no frame named {X!r}; "
                          f"they produced: {', '.join(latest_caps) or 'nothing'}")
    if y is not None and y not in latest_caps:
        raise ExportError(f"--y {y}: the data, features and selection stages produced no frame named {y!r}; "
                          f"they produced: {', '.join(latest_caps) or 'nothing'}")
    if target is None and y is not None:
        target = latest_caps[y]["summary"]["columns"][0]["name"]
    if target is None:
        raise ExportError("export needs the target column: state it with `%mlops require METRIC >= VALUE --target "
                          "COLUMN` (then re-run validation), or name the target frame with --y NAME")

    # X: the frame holding exactly the model's input columns.
    features = list(getattr(model, "feature_names_in_", [])) or (
        (model_capture or {}).get("summary", {}).get("feature_names_in") or [])
    features = [str(f) for f in features]
    x_name = X
    if x_name is None and steps:
        if features:
            matches = [n for n, c in latest_caps.items() if c["kind"] == "dataframe"
                       and [col["name"] for col in c["summary"]["columns"]] == features]
        else:
            n_in = getattr(model, "n_features_in_", None)
            matches = [n for n, c in latest_caps.items() if c["kind"] == "dataframe"
                       and len(c["summary"]["columns"]) == n_in]
        if len(matches) > 1:  # X and its splits (X_train, X_test): the whole is the one with the most rows
            most = max(latest_caps[n]["summary"]["rows"] for n in matches)
            largest = [n for n in matches if latest_caps[n]["summary"]["rows"] == most]
            matches = largest if len(largest) == 1 else matches
        if len(matches) != 1:
            found = f"several frames fit ({', '.join(matches)})" if matches else "no frame holds exactly its columns"
            raise ExportError(f"cannot tell which frame is the model's input X: {found}; export with --X NAME --y NAME")
        x_name = matches[0]

    # Fresh data binding: which data-stage frames receive it.
    binding = None
    data_frames: list[str] = []
    if not data_caps and any(s.stage == "data" for s in steps):
        raise ExportError("the data stage produced no pandas DataFrame or Series, so fresh data has nowhere to go; "
                          "load the data into a DataFrame in the data stage and re-run the stages")
    if data_caps:
        frames = [n for n, c in data_caps.items() if c["kind"] == "dataframe"]
        with_target = [n for n in frames if target in _capture_columns(data_caps[n])]
        y_series = [n for n, c in data_caps.items() if c["kind"] == "series"
                    and c["summary"]["columns"][0]["name"] == target]
        if X in frames and y in data_caps and data_caps[y]["kind"] == "series":
            binding = {"mode": "split", "X": X, "y": y}
        elif len(with_target) == 1:
            binding = {"mode": "frame", "frame": with_target[0]}
        elif len(frames) == 1 and len(y_series) == 1:
            binding = {"mode": "split", "X": frames[0], "y": y_series[0]}
        else:
            listing = ", ".join(f"{n} ({data_caps[n]['kind']})" for n in data_caps)
            raise ExportError(
                f"cannot tell which frame fresh data replaces: the data stage produced {listing}. Keep one "
                f"DataFrame holding the input columns and the target {target!r} in the data stage, or, when it "
                f"produces the input and the target separately, export with --X NAME --y NAME naming them")
        data_frames = [binding["frame"]] if binding["mode"] == "frame" else [binding["X"], binding["y"]]
        unbound = {n for s in steps if s.stage == "data" for n in s.outputs + s.nested_outputs} - set(data_frames)
        constants = _literal_constants(steps)  # e.g. FEATURES = [...] in the data cell: copied to the header
        header.extend(text for name, text in constants.items() if name in unbound and text not in header)
        header_names |= set(constants) & unbound
        unbound -= set(constants)
        for step in steps:
            earlier = {n for s in steps if s.stage != "data" and s.seq < step.seq for n in s.assigned}
            used = sorted((step.referenced & unbound) - earlier) if step.stage != "data" else []
            if used:
                raise ExportError(
                    f"the {step.stage} cell [{step.execution_count}] uses {', '.join(used)} from the data stage, "
                    f"but fresh data replaces only {', '.join(data_frames)}; create {', '.join(used)} in the "
                    f"features stage instead and re-run the stages")

    # y: the target series after the steps, else the target column of the bound frame.
    y_name, y_expression = y, f'ns[{y!r}]'
    if y_name is None and steps:
        series = [n for n, c in latest_caps.items() if c["kind"] == "series"
                  and c["summary"]["columns"][0]["name"] == target]
        x_rows = latest_caps[x_name]["summary"]["rows"] if x_name in latest_caps else None
        series = [n for n in series if latest_caps[n]["summary"]["rows"] == x_rows] or series
        if series:
            y_name = series[-1]
            y_expression = f"ns[{y_name!r}]"
        elif binding and binding["mode"] == "frame":
            y_expression = f"ns[{binding['frame']!r}][{target!r}]"
        else:
            raise ExportError(f"cannot find the target {target!r} after the data and feature steps; "
                              f"export with --X NAME --y NAME")

    # Inputs of each step: what earlier steps (or the bound frames) provide; warn on the rest.
    available = set(data_frames) if binding else set()
    known = set(dir(builtins)) | header_names | {"ns"} | {n for s in steps for n in s.imported}
    for step in steps:
        if step.stage == "data":
            provided = {n for s in steps if s.stage == "data" and s.seq < step.seq for n in s.assigned}
        else:
            provided = available | {n for s in steps if s.stage != "data" and s.seq < step.seq for n in s.assigned}
        step.inputs = sorted(n for n in step.referenced if n in provided and n not in known)
        missing = sorted(n for n in step.referenced - provided - step.assigned - known)
        if missing:
            warnings.append(f"the {step.stage} cell [{step.execution_count}] uses {', '.join(missing)}, which no "
                            f"replayed cell defines; define them in a data/features/selection cell")
    x_capture = latest_caps.get(x_name) if x_name else None
    return ScriptPlan(steps, header_imports, header, binding, x_name, y_name, y_expression, target, data_frames,
                      x_capture, warnings)


def _literal_constants(steps: list[Step]) -> dict[str, str]:
    """``NAME = <literal>`` statements of the data steps, by name (the last one wins)."""
    found = {}
    for step in steps:
        if step.stage != "data":
            continue
        lines = step.body.splitlines()
        for s in ast.parse(step.body).body:
            if (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
                    and _is_literal(s.value)):
                found[s.targets[0].id] = "\n".join(lines[s.lineno - 1:s.end_lineno])
    return found


def _capture_columns(record: dict) -> list[str]:
    return [c["name"] for c in record["summary"]["columns"]]


_STRING_TOKENS = {tokenize.STRING, *([tokenize.FSTRING_MIDDLE] if hasattr(tokenize, "FSTRING_MIDDLE") else [])}


def _indent(code: str, prefix: str = "    ") -> str:
    """Indent ``code`` by ``prefix`` except the continuation lines of multi-line strings (indenting
    those would change the strings)."""
    inside: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type in _STRING_TOKENS and token.end[0] > token.start[0]:
                inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return "\n".join(line if (n in inside or not line.strip()) else prefix + line
                     for n, line in enumerate(code.splitlines(), 1))


def _render_step(step: Step) -> str:
    where = f"cell [{step.execution_count}]" if step.execution_count else "a cell"
    lines = [f"def {step.function}(ns):", f'    """The {step.stage} stage: notebook {where}, as it ran."""']
    lines += [f"    {name} = ns[{name!r}]" for name in step.inputs]
    body = step.body.strip("\n")
    lines.append(_indent(body) if body.strip() else "    pass")
    returned = [f"{n!r}: {n}" for n in step.outputs] + [f"{n!r}: locals().get({n!r})" for n in step.nested_outputs]
    lines.append(f"    return {{{', '.join(returned)}}}")
    return "\n".join(lines)


_NO_DATA_STEP = '''def notebook_data():
    """No data stage was recorded: there is no notebook data step."""
    raise RuntimeError("this package was exported without a data stage; pass --data SOURCE")'''

_NOTEBOOK_DATA = '''def notebook_data():
    """The data stage as it ran in the notebook, from the notebook's folder: the frames it produced."""
    ns = {{}}
    with mlops_nb.deploy.package.working_dir(WORKDIR):
{calls}
    return {{name: ns[name] for name in DATA_FRAMES}}'''

_PREPARE = '''def prepare(frames):
    """Frames named as the data stage named them -> the model's input X and target y, through the
    features and selection steps in the order they ran."""
    ns = dict(frames)
{calls}    return {x}, {y}'''

_MAIN = '''if __name__ == "__main__":
    raise SystemExit(mlops_nb.deploy.package.main(__file__, prepare=prepare, notebook_data=notebook_data))'''


def render_script(plan: ScriptPlan, info: dict[str, Any]) -> str:
    """The text of retrain.py for ``plan``; ``info`` has ``name``, ``version``, ``run``, ``workdir``,
    ``created``."""
    run = info["run"]
    created = datetime.fromtimestamp(info["created"], timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    notebook = f", notebook {run['notebook']}" if run.get("notebook") else ""
    imports = list(dict.fromkeys([*plan.imports, *(i for step in plan.steps for i in step.imports)]))
    parts = [f'''"""Retrain model {info['name']!r} (version {info['version']}) on fresh data.

Generated by mlops-nb on {created} from run {run['id']} ({run['name']}) of project {run['project']!r}{notebook}:
its data, features and selection stage cells, in the order they ran, as plain functions, with
notebook-only lines (magics, !shell, display) removed.

    python retrain.py [--data SOURCE] [--query SQL] [--force]

SOURCE is a CSV, Parquet or JSON path or glob, or a database URL read with --query SQL; without it
the source given at export is read, else the notebook's own data step runs again. --force promotes a
candidate that meets the requirement even if it does not beat the champion by the margin. The
package root's settings.json holds the margin, the drift policy and the held-out share.
You may edit this file; MANIFEST.json records its checksum, so run `mlops-nb reseal PACKAGE` after.
Exit status: 0 promoted, 99 champion kept, 65 bad data, 66 no data, 75 already running,
78 configuration, 80 below the requirement, 81 drift needs a person, 82 integrity, 70 a bug.
"""''']
    parts.append("\n".join([*imports, "import mlops_nb.deploy.package"]))
    if plan.header:
        parts.append("# Defined outside the replayed stages in the notebook, used by them:\n"
                     + "\n\n".join(plan.header))
    frames = ", ".join(repr(n) for n in plan.data_frames)
    parts.append(f"WORKDIR = {info['workdir']!r}  # the notebook's folder: the data step's relative paths start here\n"
                 f"DATA_FRAMES = [{frames}]  # what the data stage produced; fresh data is bound to these names")
    parts.extend(_render_step(step) for step in plan.steps)
    data_steps = [s for s in plan.steps if s.stage == "data"]
    if plan.binding is None:
        parts.append(_NO_DATA_STEP)
    else:
        calls = "\n".join(f"        ns.update({s.function}(ns))" for s in data_steps) or "        pass"
        parts.append(_NOTEBOOK_DATA.format(calls=calls))
    calls = "".join(f"    ns.update({s.function}(ns))\n" for s in plan.steps if s.stage != "data")
    x_expression = f"ns[{plan.x_name!r}]" if plan.x_name else "ns['X']"
    parts.append(_PREPARE.format(calls=calls, x=x_expression, y=plan.y_expression))
    parts.append(_MAIN)
    return "\n\n\n".join(parts) + "\n"


# -- running the generated steps at export: schema, reference, reproduction check --------------------


@dataclass
class Built:
    schema: dict
    reference: dict[str, bytes]
    input_example: str
    reproduced: dict[str, bool]
    warnings: list[str]


def _run_generated(script: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "mlops_nb_export_check", "__file__": "retrain.py"}
    exec(compile(script, "retrain.py", "exec"), namespace)  # noqa: S102 - the notebook's own cells
    return namespace


def materialize(script: str, plan: ScriptPlan, model: Any, captures: list[dict]) -> Built:
    """Run the generated data and feature steps here, as retrain.py will: check they reproduce the
    notebook's frames (fingerprints), and build schema.json, the reference profile and sample, and
    the input example from what they produce."""
    import pandas as pd

    warnings: list[str] = []
    reproduced: dict[str, bool] = {}
    features = [str(c) for c in getattr(model, "feature_names_in_", [])]
    table = X = None
    schema: dict[str, Any] = {"format": package.FORMAT_VERSION, "target": plan.target, "data": None, "frames": {}}
    if plan.binding is not None:
        namespace = _run_generated(script)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # what the cells print belongs to retrain.py's log
                frames = namespace["notebook_data"]()
        except Exception as exc:
            raise ExportError(
                f"retrain.py could not run the notebook's data step outside the notebook ({type(exc).__name__}: "
                f"{exc}); make the data cell self-contained (its imports and paths) and re-run the stages") from None
        data_caps = {c["name"]: c for c in captures if c["stage"] == "data" and c["name"] in frames}
        for name, frame in frames.items():
            if name in data_caps and data_caps[name]["fingerprint"]:
                reproduced[name] = fingerprint(frame) == data_caps[name]["fingerprint"]
        binding = plan.binding
        if binding["mode"] == "frame":
            table = frames[binding["frame"]].copy()
        else:
            table = pd.concat([frames[binding["X"]], frames[binding["y"]].rename(plan.target)], axis=1)
        schema["frames"] = {name: {"rows": int(len(f)), "columns": _columns(f)} for name, f in frames.items()}
        schema["data"] = {"binding": binding, "rows": int(len(table)), "columns": _columns(table)}
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                X, _ = namespace["prepare"](frames)
        except Exception as exc:
            raise ExportError(
                f"retrain.py's feature steps failed outside the notebook ({type(exc).__name__}: {exc}); make the "
                f"features and selection cells self-contained and re-run the stages") from None
        if plan.x_capture is not None and plan.x_capture["fingerprint"]:
            reproduced[plan.x_name] = fingerprint(X) == plan.x_capture["fingerprint"]
        different = [n for n, same in reproduced.items() if not same]
        if different:
            warnings.append(f"retrain.py's steps did not reproduce {', '.join(different)} exactly (the data source "
                            f"changed since the run, or a step is not deterministic)")
    inputs = None
    if X is not None:
        inputs = X[features] if features and set(features) <= set(map(str, X.columns)) else X
        schema["input"] = {"name": plan.x_name, "columns": _columns(inputs)}
        example = inputs.head(3).to_json(orient="split", index=False, date_format="iso")
    else:
        columns = [{"name": f, "dtype": None, "kind": "other", "nullable": True} for f in features]
        schema["input"] = {"name": plan.x_name, "columns": columns}
        example = json.dumps({"columns": features, "data": []})
    schema["output"] = {"name": plan.y_name, "target": plan.target,
                        "classes": json_safe(list(getattr(model, "classes_", []))) or None}
    reference = package.reference_files(table, model=model, inputs=inputs)
    return Built(schema, reference, example + "\n", reproduced, warnings)


def _columns(frame: Any) -> list[dict[str, Any]]:
    """Schema entries (name, dtype, kind, nullable, categories) of a DataFrame's (or Series') columns."""
    if getattr(frame, "ndim", 2) == 1:
        frame = frame.to_frame()
    out = []
    for name in frame.columns:
        values = frame[name]
        kind = _column_kind(values.dtype)
        entry = {"name": str(name), "dtype": str(values.dtype), "kind": kind, "nullable": bool(values.isna().any())}
        if kind in ("categorical", "boolean"):
            unique = values.dropna().unique()
            if len(unique) <= MAX_CATEGORIES:
                entry["categories"] = sorted((json_safe(v) for v in unique), key=str)
        out.append(entry)
    return out


# -- writing the package root and its versions atomically -------------------------------------------


def write_package(target: Path, files: dict[str, bytes], manifest: dict[str, Any]) -> dict[str, dict]:
    """Add ``files`` and MANIFEST.json (``manifest`` plus the files' checksums) as the next version
    of package root ``target`` and make it current, under the package's lock. A new root is built
    whole (first version, ``current`` link, ``settings.json``) in a temporary folder beside
    ``target`` and renamed into place; in an existing root the version is written beside the
    others and ``current`` swapped. On any failure the current version stays current."""
    from mlops_nb.deploy.retrain import read_settings, settings_bytes

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with package.locked(target, "export"):
            if not target.exists() or not any(target.iterdir()):
                tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.export-"))
                try:
                    version, listed = package.write_version(tmp, files, manifest)
                    _swap_into_place(version, tmp)
                    package.write_synced(tmp / package.SETTINGS_FILE, settings_bytes())
                    package.fsync_dir(tmp)
                    os.chmod(tmp, 0o755)
                    if target.exists():
                        target.rmdir()  # empty: replaced by the whole new root
                    os.rename(tmp, target)
                    package.fsync_dir(target.parent)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                return listed
            version, listed = package.write_version(target, files, manifest)
            try:
                _swap_into_place(version, target)
            except BaseException:
                shutil.rmtree(version, ignore_errors=True)
                raise
            if not (target / package.SETTINGS_FILE).exists():
                package.write_synced(target / package.SETTINGS_FILE, settings_bytes())
            try:
                keep = read_settings(target)["keep_versions"]
            except MlopsError:  # a broken settings.json is retraining's to report (exit 78)
                keep = package.KEEP_VERSIONS
            package.prune_versions(target, keep)
            return listed
    except PackageLocked as exc:
        raise ExportError(f"cannot export now: {exc}; export again when it ends") from None


def _swap_into_place(version: Path, root: Path) -> None:
    """Make ``version`` the current version of package root ``root``."""
    package.switch_current(root, version)


export = export_package
"""``mnb.export(...)``: the public name of :func:`export_package`."""
