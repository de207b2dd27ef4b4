"""Every store write of a retraining job, in one place: the run it records in, the drift rows, the
candidate's model version, the registry's aliases, and the run's end.

Tracking is the only writer: each of these hands the job's facts to :mod:`mlops_nb.tracking`
(``tracking.retraining``, ``tracking.registry``), which knows how they are stored.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from mlops_nb.deploy.layout import MANIFEST, read_json, versions
from mlops_nb.deploy.settings import is_number
from mlops_nb.errors import PackageError, RunNotFound


def open_job_store(explicit: str | os.PathLike | None, manifest: dict[str, Any]) -> Any:
    """The store a job records in: ``--store``, else ``$MLOPS_NB_STORE``, else the package's own."""
    from mlops_nb import store as store_module

    return store_module.open_store(explicit or os.environ.get(store_module.ENV_VAR) or manifest.get("store"))


def start_run(store: Any, manifest: dict[str, Any]) -> int:
    """Start the job's ``retraining`` run, a child of the notebook run the package came from."""
    from mlops_nb import tracking

    run = manifest["run"]
    try:
        started = tracking.start(run["project"], name=f"retrain-{manifest['model']['name']}",
                                 kind="retraining", parent=run["id"], store=store)
    except RunNotFound:
        raise PackageError(
            f"the store {store.path} has no run {run['id']}, the notebook run this package comes from; "
            f"record in the store it was exported from ({manifest.get('store')}): set MLOPS_NB_STORE to it "
            f"or pass --store") from None
    return started.id


def finish_interrupted_promotion(store: Any, root: Path, manifest: dict[str, Any], run_id: int) -> str | None:
    """Make a promotion a job died inside (kill -9, power cut) whole or undone, so that no registered
    version is left without a package: a job registers its candidate and tags its run ``promoting``
    in one transaction, then writes the package version, swaps ``current`` and moves ``champion``.

    For each earlier retraining run of the package's notebook run that ended without finishing
    (interrupted or failed) with a ``promoting`` version no alias ever named: when ``current``
    serves that version, the alias move is finished; otherwise the package never served it, so its
    package version (if written) and its registry entry are removed. Call with the package's lock
    held. Returns a note of what was done, or None."""
    from mlops_nb.tracking import registry, retraining

    name = manifest["model"]["name"]
    serving = manifest["model"]["version"]
    notes = []
    for run in store.child_runs(manifest["run"]["id"]):
        tagged = run["tags"].get(retraining.PROMOTING_TAG)
        if run["id"] == run_id or run["status"] not in ("interrupted", "failed") or not (tagged or "").isdigit():
            continue
        version = int(tagged)
        row = store.model_version(name, version)
        if row is None or row["run_id"] != run["id"]:
            continue  # already removed, or the number now belongs to another version
        named = [h for h in store.alias_history(name) if h["version"] == version]
        if version == serving and store.aliases(name).get("champion") != version:
            later = [h for h in store.alias_history(name) if h["alias"] == "champion" and h["time"] > run["start_time"]]
            if later:
                continue  # someone moved the champion since: their choice stands
            registry.promote(name, version, "champion", by="mlops-nb retrain", run=run_id, store=store,
                             reason=f"completing the promotion of retraining run {run['id']}, which was interrupted")
            notes.append(f"completed the interrupted promotion of {name} version {version} (run {run['id']})")
        elif version != serving and not named:
            for _, folder in versions(root):
                held = read_json(folder, MANIFEST)
                if held["model"].get("version") == version and (held.get("retrained") or {}).get("run_id") == run["id"]:
                    shutil.rmtree(folder, ignore_errors=True)
            retraining.remove_candidate(name, version, store=store)
            notes.append(f"removed {name} version {version}, registered by retraining run {run['id']}, which "
                         f"died before its package served it")
    return "; ".join(notes) or None


def record_drift(store: Any, run_id: int, rows: list[dict[str, Any]], document: dict[str, Any]) -> None:
    """The drift rows of every column (and the prediction) and the whole report as ``drift.json``."""
    from mlops_nb.tracking import retraining

    retraining.record_drift(run_id, rows, json.dumps(document, separators=(",", ":")).encode(), store=store)


def register_candidate(store: Any, run_id: int, name: str, model_bytes: bytes, *, class_path: str | None,
                       description: str, gate_passed: bool | None) -> int:
    """Register the candidate as the next version of model ``name``, linked to the job's run and
    marked as being promoted (one transaction; :func:`finish_interrupted_promotion` reads it)."""
    from mlops_nb.tracking import retraining

    version = retraining.register_candidate(run_id, name, model_bytes, class_path=class_path,
                                            description=description, gate_passed=gate_passed, store=store)
    return version


def promote_champion(store: Any, name: str, version: int, run_id: int, reason: str) -> None:
    """Move the registry's ``champion`` to ``version`` (the one it replaces becomes ``previous``)."""
    from mlops_nb.tracking import registry

    registry.promote(name, version, "champion", by="mlops-nb retrain", run=run_id, store=store, reason=reason)


def record_end(store: Any, run_id: int, *, params: dict[str, Any], tags: dict[str, Any], metrics: dict[str, Any],
               ok: bool, message: str, requirement: dict[str, Any] | None = None,
               gate: dict[str, Any] | None = None) -> None:
    """The run's params, tags and metrics, the requirement and the candidate's gate, and its end
    (finished when ``ok``, else failed with ``message``), in one transaction."""
    from mlops_nb.tracking import retraining

    retraining.finish_retraining(run_id, ok=ok, error=message, params=params, tags=tags,
                                 metrics={k: v for k, v in metrics.items() if is_number(v)},
                                 requirement=requirement, gate=gate, store=store)


def seal_version(store: Any, folder: Any, root: Any, run_id: int) -> None:
    """Sign a promoted version and record its manifest (the trust anchor) before it becomes current."""
    from mlops_nb.deploy.trust import seal_and_record

    seal_and_record(folder, root, root, store=store, reason="promotion", run_id=run_id)
