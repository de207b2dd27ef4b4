"""Export a registered model as a deployment package, with a retrain.py generated from the notebook.

:func:`export` writes a package root ``DIR`` holding whole package versions and a ``current`` link
(the layout is described in :mod:`mlops_nb.deploy.layout`): ``DIR/versions/v0001/`` on the first export,
the next number on each later export or promotion by retraining, ``DIR/current`` pointing at the one
that serves, and ``DIR/settings.json`` (retraining settings, :mod:`mlops_nb.deploy.settings`). Each version
holds (package format 1, DESIGN.md section 4)::

    MANIFEST.json          format, run and model ids, created, SHA-256 and size of every other file
    model.skops            the fitted model (load it with mlops_nb.load_model: checksums, allow-list)
    pipeline.json          class path and JSON-safe params, nested for pipelines (model.rebuild_estimator)
    schema.json            what fresh data must look like (the data stage's frames), the target, the raw
                           rows predict takes ("raw": the data stage's columns without the target) and
                           the model's own input columns ("input": dtypes, nullability, category domains)
    reference/profile.json mlops_nb.drift.reference_profile of the training table, and under "scores"
                           the profile of the model's scores on its training input (prediction drift)
    reference/sample.*     mlops_nb.drift.reference_sample: at most 10,000 training rows (Parquet when
                           pyarrow is installed, else CSV)
    metrics.json           the run's metrics, requirement and gate
    requirements.txt       exact pins of the installed libraries the model needs
    input_example.json     a few rows as the data stage produced them, without the target (pandas "split"
                           orientation); rows of model input when there is no features.py
    features.py            the row-wise lines of the features and selection cells as ``model_input(rows)``:
                           raw rows -> the model's input (mlops_nb.deploy.rowwise proves it at export)
    retrain.py             the data, features and selection cells as plain functions, then a call
                           into the retraining command (mlops_nb.deploy.runtime.main); export runs it
                           once in a subprocess from the notebook's folder (mlops_nb.deploy.materialize)
                           to build schema.json and the reference, never in the kernel
    crontab.txt            the cron line: absolute interpreter, cd into DIR, store path, current/retrain.py,
                           appending to DIR-retrain.log beside DIR
    airflow_dag.py         (airflow=True) a BashOperator running the cron line's command, 99 skipped
    cronjob.yaml           (kubernetes=True) a CronJob with concurrencyPolicy: Forbid, 99 a success
    serving.yaml           (kubernetes=True) a Deployment running `mlops-nb serve` and its Service
    Dockerfile             (kubernetes=True) the image of both, built from requirements.txt

A version appears whole or not at all: its files are written and fsynced under a temporary name,
renamed, and only then does ``current`` move to it (``os.replace`` of a new symlink); a new package
root is built whole beside ``DIR`` and renamed into place. Export takes the package's lock, so it
never races a retraining job. Export judges the exported *version's own* stage attempt, not the
run's latest state (:func:`mlops_nb.tracking.registry.judge_attempt`), and refuses, saying why and
how to override with ``force="reason"``, a model whose gate failed or that no gate measured, a stale
model, a run with no ``data`` stage before the model, and a model that cannot be loaded safely. A
version retrained by a package's job is judged by the gate its job recorded, and exported with the
notebook run it was retrained from. Export of a version other than the registry's ``champion`` into
an existing package is refused unless ``make_champion=True``, which moves the alias too (with its
history). The export is recorded as the notebook run's ``deployment`` stage.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlops_nb.capture import json_safe
from mlops_nb.deploy import kubernetes as k8s
from mlops_nb.deploy.layout import (
    CURRENT,
    FEATURES_FILE,
    FORMAT_VERSION,
    MANIFEST,
    MODEL_FILE,
    PIPELINE_FILE,
    SCHEMA_FILE,
    SCRIPT_FILE,
    SKOPS_DEFAULTS_FILE,
    VERSIONS_DIR,
    fsync_dir,
    locked,
    package_dir,
    prune_versions,
    switch_current,
    write_version,
)
from mlops_nb.deploy.materialize import materialize
from mlops_nb.deploy.model import untrusted_types
from mlops_nb.deploy.pipeline import distribution_version, pipeline_document, requirements_txt
from mlops_nb.deploy.schedule import (
    DEFAULT_SCHEDULE,
    airflow_dag,
    check_line_value,
    cron_command,
    crontab_text,
    next_run_times,
)
from mlops_nb.deploy.script.plan import plan_script
from mlops_nb.deploy.script.render import render_script
from mlops_nb.deploy.script.rowwise import rowwise_request
from mlops_nb.deploy.settings import keep_versions, write_default_settings
from mlops_nb.deploy.skops_scan import estimator_record
from mlops_nb.deploy.trust import seal_and_record
from mlops_nb.errors import ExportError, PackageError, PackageLocked
from mlops_nb.store import Store
from mlops_nb.tracking import deployments, integrity, registry
from mlops_nb.tracking.context import current


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
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        tags = f" ({', '.join(self.aliases)})" if self.aliases else ""
        lines = [
            f"mlops: exported {self.name} version {self.version}{tags} of run {self.run_id} to {self.path} "
            f"({len(self.files) + 1} files, {self.seconds:.1f} s)",
            f"  schedule {self.schedule}; next runs: "
            + ", ".join(moment.strftime("%Y-%m-%d %H:%M") for moment in self.next_runs),
            f"  cron line in {self.path / CURRENT / 'crontab.txt'}",
        ]
        if self.forced:
            overrode = "; ".join(self.overridden) or "nothing needed overriding"
            lines.append(f"  forced ({self.forced}): {overrode}")
        lines.extend(f"  {note}" for note in self.notes)
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)


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
    make_champion: bool = False,
    image: str | None = None,
    volume_claim: str | None = None,
) -> ExportResult:
    """Write the deployment package of model ``name`` to folder ``to`` and record it.

    ``version``: a version number or alias (default: the champion, else the latest version).
    ``schedule``: a cron expression for retraining (default ``0 3 * * 1``, Mondays 03:00),
    validated; the next three runs are reported. ``data``: where fresh data will be (a CSV, Parquet
    or JSON path or glob, made absolute; default: retrain.py re-runs the notebook's own data step).
    ``force``: a reason to export despite the refusals (recorded with the export). ``airflow``,
    ``kubernetes``: also write ``airflow_dag.py`` / ``cronjob.yaml``, ``serving.yaml`` and a
    ``Dockerfile`` (:mod:`mlops_nb.deploy.kubernetes`); ``image``: the image the Kubernetes workloads
    run (default: a placeholder, and one line saying how to build it); ``volume_claim``: a
    PersistentVolumeClaim holding the package and the store (default: hostPath). ``X``, ``y``: the notebook
    names of the model's input frame and target, when export cannot tell them on its own.
    ``store``: the store (default: the notebook's, else ``$MLOPS_NB_STORE`` / ``./mlops.db``).
    ``command``: the command line to record. ``workdir``: the folder the notebook ran in (default:
    the current folder inside a kernel, else the notebook's folder or the store's).
    ``make_champion``: export a version that is not the registry's champion into an existing package
    and make it the champion (else refused: the package's ``current`` would serve a model the
    registry does not call champion).

    Raises :class:`ExportError` saying why, with the fix; nothing is written then.
    """
    started, clock = time.time(), time.perf_counter()
    # What ends up in the crontab line is refused (exit 78) before any work, whoever calls.
    check_line_value(to, "the package path")
    check_line_value(data, "the data source")
    check_line_value(schedule, "the schedule")
    k8s.check_image(image)
    k8s.check_claim(volume_claim)
    if (image or volume_claim) and not kubernetes:
        raise PackageError("--image and --volume-claim describe the Kubernetes files: add --kubernetes")
    if force is not None and not str(force).strip():
        raise ExportError("--force needs a reason, e.g. --force \"hotfix approved by the data team\"")
    opened, _, _ = registry.context(None, store)
    chosen = registry.get_version(name, version, store=opened)
    if chosen.run_id is None:
        raise ExportError(f"{chosen} is linked to no run; register a model from a notebook run to export it")
    schedule = (schedule or DEFAULT_SCHEDULE).strip()
    next_runs = next_run_times(schedule)
    target = Path(to).expanduser().absolute()
    _check_target(target)
    _check_champion(opened, chosen, target, make_champion)

    model_bytes = _model_bytes(opened, chosen)
    run_id, model_capture, gate_passed = _source(opened, chosen)
    run = opened.run(run_id)
    captures = opened.captures(run_id)
    events = opened.events(run_id)
    requirement = opened.requirement(run_id)
    model = _load_own_model(model_bytes)
    refused = refusals(opened, run_id, events, model_capture, untrusted_types(model_bytes), gate_passed=gate_passed)
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
    built = materialize(script, plan, model, model_bytes, captures, workdir,
                        rowwise=rowwise_request(plan, model, header) if model is not None else None)
    if built.rowwise_error and force is None:
        raise ExportError(f"export of {chosen} refused: {built.rowwise_error} (or export with --force \"REASON\" "
                          f"to ship a package that predicts from the model's input only)")

    warnings = [*plan.warnings, *built.warnings, *_integrity_notes(events)]
    if built.rowwise_error:
        refused = [*refused, f"not row-wise: {built.rowwise_error}"]
        warnings.append(f"no features.py: {built.rowwise_error}")
    if data_source and "://" not in data_source and not _matches(data_source):
        warnings.append(f"nothing matches {data_source} yet; retraining exits 66 until data arrives there")
    store_path = str(opened.path)
    log_path = target.parent / f"{target.name}-retrain.log"
    line = cron_command(target, store_path, data_source, log_path)
    files: dict[str, bytes] = {
        MODEL_FILE: model_bytes,
        PIPELINE_FILE: _json_bytes(pipeline_document(model, model_capture)),
        SCHEMA_FILE: _json_bytes(built.schema),
        **built.reference,
        "metrics.json": _json_bytes(_metrics(opened, run_id, requirement)),
        "requirements.txt": requirements_txt(model, sample_parquet=any(n.endswith(".parquet") for n in built.reference)
                                             ).encode(),
        "input_example.json": built.input_example.encode(),
        SCRIPT_FILE: script.encode(),
        **({FEATURES_FILE: built.features.encode()} if built.features else {}),
        "crontab.txt": crontab_text(schedule, line, chosen.name, target).encode(),
        SKOPS_DEFAULTS_FILE: _json_bytes(estimator_record()),
    }
    if airflow:
        files["airflow_dag.py"] = airflow_dag(chosen.name, schedule, line.split(" >> ")[0]).encode()
    notes = []
    if kubernetes:
        where = {"image": image, "claim": volume_claim}
        files["cronjob.yaml"] = k8s.cronjob_yaml(chosen.name, schedule, target, store_path, data_source,
                                                 **where).encode()
        files["serving.yaml"] = k8s.serving_yaml(chosen.name, target, store_path, data_source, **where).encode()
        files["Dockerfile"] = k8s.dockerfile(chosen.name, target).encode()
        notes.append(k8s.image_line(image, target) or f"kubernetes: cronjob.yaml and serving.yaml run {image}")
    manifest = {
        "format": FORMAT_VERSION,
        "created": datetime.fromtimestamp(started, timezone.utc).isoformat(),
        "mlops_nb": distribution_version("mlops-nb"),
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
    listed = write_package(target, files, manifest, seal=lambda folder, root: seal_and_record(
        folder, root, target, store=opened, reason="export", run_id=run["id"]))
    if make_champion and chosen.version != opened.aliases(chosen.name).get("champion"):
        registry.promote(chosen.name, chosen.version, "champion", by=command or "mnb.export", store=opened,
                         reason=f"exported to {target} as its current version")
    manifest_bytes = (package_dir(target) / MANIFEST).read_bytes()
    seconds = time.perf_counter() - clock
    summary = {
        "model": chosen.name, "version": chosen.version, "path": str(target), "schedule": schedule,
        "next_runs": [moment.isoformat() for moment in next_runs], "data_source": data_source,
        "files": len(listed), "forced": force, "overridden": manifest["overridden"],
        "reproduced": built.reproduced, "warnings": warnings,
    }
    deployments.record_deployment(
        run_id, source=command or _api_command(name, to, version, schedule, data, force),
        start_time=started, duration=seconds, summary=summary, manifest=manifest_bytes, store=opened,
    )
    return ExportResult(
        target, chosen.name, chosen.version, registry.get_version(name, chosen.version, store=opened).aliases,
        run_id, listed, schedule, next_runs,
        seconds, warnings, force, manifest["overridden"], notes,
    )


def _api_command(name, to, version, schedule, data, force) -> str:
    args = [repr(name), f"to={str(to)!r}"]
    args += [f"{k}={v!r}" for k, v in (("version", version), ("schedule", schedule), ("data", data),
                                        ("force", force)) if v is not None]
    return f"mnb.export({', '.join(args)})"


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target} is a file; export into a folder path (--to DIR)")
    if target.is_dir() and (target / MANIFEST).is_file() and not (target / VERSIONS_DIR).is_dir():
        raise ExportError(
            f"{target} holds a package in the single-folder layout of earlier mlops-nb versions; move it away "
            f"(or export to a new folder with --to): exports now keep versions in {target}/versions/")
    if target.is_dir() and any(target.iterdir()) and not (target / VERSIONS_DIR).is_dir():
        raise ExportError(
            f"{target} is a folder with files and no {MANIFEST}: not a package to replace; "
            f"choose a new or empty folder with --to")


def _check_champion(store: Store, chosen: registry.ModelVersion, target: Path, make_champion: bool) -> None:
    """An existing package serves the registry's champion: refuse to point its ``current`` at another
    version unless the caller asked to make that version the champion."""
    champion = store.aliases(chosen.name).get("champion")
    if make_champion or chosen.version == champion or not (target / VERSIONS_DIR).is_dir():
        return
    holder = f"version {champion}" if champion is not None else "no version"
    raise ExportError(
        f"{target} is a package of {chosen.name}, whose champion is {holder}: exporting {chosen} there would serve "
        f"a model the registry does not call champion. Export the champion, or add --make-champion "
        f"(make_champion=True) to make version {chosen.version} the champion as well")


def _source(store: Store, chosen: registry.ModelVersion) -> tuple[int, dict | None, bool | None]:
    """The notebook run whose stages the package replays, the capture of the model's stage attempt,
    and, for a version retrained by a package's job, the gate that job recorded (else None: the
    attempt is judged). A retrained version replays the notebook run its job was a child of, with
    the capture of that run's latest version of the model registered before it."""
    run = store.run(chosen.run_id)
    if chosen.capture_id is not None or run.get("kind") != "retraining" or run.get("parent_id") is None:
        capture = next((c for c in store.captures(chosen.run_id) if c["id"] == chosen.capture_id), None)
        return chosen.run_id, capture, None
    parent = run["parent_id"]
    origins = [v for v in store.model_versions(chosen.name)
               if v["run_id"] == parent and v["capture_id"] is not None and v["version"] < chosen.version]
    capture = None
    if origins:
        capture = next((c for c in store.captures(parent) if c["id"] == origins[-1]["capture_id"]), None)
    # None: the package states no requirement its job could check; it promoted only what passed the rest
    return parent, capture, chosen.gate_passed is not False


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
             untrusted: list[str], *, gate_passed: bool | None = None) -> list[str]:
    """Why the model of ``run_id`` captured as ``model_capture`` should not be exported (empty when
    it may be), one line each. The model's own stage attempt is judged (its gate, whether it is
    stale), not the run's latest state; ``gate_passed`` (a retrained version's recorded gate)
    replaces the attempt's gate when given."""
    attempt = registry.judge_attempt(store, run_id, model_capture)
    reasons = list(attempt.problems)
    if gate_passed is not None:
        reasons = [r for r in reasons if not r.startswith(("no gate", "gate failed"))]
        if not gate_passed:
            reasons.append("gate failed: the retraining job that made it recorded no passed requirement")
    model_seq = model_capture["seq"] if model_capture and model_capture.get("seq") is not None else None
    if not any(e["kind"] == "stage" and e["stage"] == "data" and e["status"] == "ok"
               and (model_seq is None or e["seq"] < model_seq) for e in events):
        reasons.append("no data stage: retraining needs to know which frames hold the data; load it in a "
                       "`%%stage data` cell and re-run the stages after it")
    unloadable = (model_capture or {}).get("summary", {}).get("unloadable")
    if unloadable:
        reasons.append(f"unloadable: the model {unloadable}")
    elif untrusted:
        reasons.append(f"untrusted types: load_model would refuse {', '.join(untrusted)} (outside mlops-nb's "
                       f"allow-list, mlops_nb.deploy.model.TRUSTED_TYPES)")
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


def write_package(target: Path, files: dict[str, bytes], manifest: dict[str, Any],
                  seal: Callable[[Path, Path], Any] | None = None) -> dict[str, dict]:
    """Add ``files`` and MANIFEST.json (``manifest`` plus the files' checksums) as the next version
    of package root ``target`` and make it current, under the package's lock. A new root is built
    whole (first version, ``current`` link, ``settings.json``) in a temporary folder beside
    ``target`` and renamed into place; in an existing root the version is written beside the
    others and ``current`` swapped. On any failure the current version stays current. ``seal(version
    folder, root folder)`` signs and records the new version before it becomes current."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with locked(target, "export"):
            if not target.exists() or not any(target.iterdir()):
                tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.export-"))
                try:
                    version, listed = write_version(tmp, files, manifest)
                    write_default_settings(tmp)
                    if seal is not None:
                        seal(version, tmp)
                    switch_current(tmp, version)
                    fsync_dir(tmp)
                    os.chmod(tmp, 0o755)
                    if target.exists():
                        target.rmdir()  # empty: replaced by the whole new root
                    os.rename(tmp, target)
                    fsync_dir(target.parent)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                return listed
            version, listed = write_version(target, files, manifest)
            write_default_settings(target)
            try:
                if seal is not None:
                    seal(version, target)
                switch_current(target, version)
            except BaseException:
                shutil.rmtree(version, ignore_errors=True)
                raise
            prune_versions(target, keep_versions(target))
            return listed
    except PackageLocked as exc:
        raise ExportError(f"cannot export now: {exc}; export again when it ends") from None


export = export_package
"""``mnb.export(...)``: the public name of :func:`export_package`."""
