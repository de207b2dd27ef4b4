"""What one local run becomes in MLflow: its status, params as text (truncated, with a tag saying
so, where MLflow's limits would refuse them), its tags with the ``mlops_nb.*`` ones, and the files
of its ``mlops-nb/`` artifact folder. Pure apart from reading the store."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mlops_nb.format import json_safe
from mlops_nb.store import Store
from mlops_nb.sync.client import MAX_KEY_LENGTH, MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH

STATUS = {"running": "RUNNING", "finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}

#: The tag that finds a pushed run again (store identity and local run id): a sync killed after
#: MLflow created the run but before the store recorded its id looks it up instead of creating another.
UID_TAG = "mlops_nb.run_uid"
#: Identical environments are uploaded once per server; each run's tag names the file that holds its own.
ENVIRONMENT_TAG = "mlops_nb.environment"
ENVIRONMENT_FILE = "environment.json"
TRUNCATED = "mlops_nb.truncated"


def ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def param_text(value: Any) -> str:
    """A stored param as MLflow's text: numbers as Python writes them, JSON text as it is."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)
    return "None" if value is None else str(value)


def fit_params(params: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Params as MLflow takes them, and the tags that say which were truncated to its limit."""
    out, notes = {}, {}
    for key, value in params.items():
        text = param_text(value)
        if len(text) > MAX_PARAM_VAL_LENGTH:
            notes[f"{TRUNCATED}.params.{key}"[:MAX_KEY_LENGTH]] = (
                f"{len(text)} characters, truncated to {MAX_PARAM_VAL_LENGTH} (MLflow's limit); "
                f"the whole value is in the local mlops-nb store")
            text = text[:MAX_PARAM_VAL_LENGTH]
        out[key[:MAX_KEY_LENGTH]] = text
    return out, notes


def fit_tags(tags: dict[str, Any]) -> dict[str, str]:
    """Tags as MLflow takes them: text within its limit, a truncation said in a tag of its own."""
    out: dict[str, str] = {}
    for key, value in tags.items():
        text = "" if value is None else str(value)
        if len(text) > MAX_TAG_VAL_LENGTH:
            out[f"{TRUNCATED}.tags.{key}"[:MAX_KEY_LENGTH]] = (
                f"{len(text)} characters, truncated to {MAX_TAG_VAL_LENGTH} (MLflow's limit)")
            text = text[:MAX_TAG_VAL_LENGTH]
        out[key[:MAX_KEY_LENGTH]] = text
    return out


def base_tags(run: dict[str, Any], store: Store, store_uuid: str) -> dict[str, str]:
    """The tags every pushed run has, known from the runs row alone (cheap for thousands of runs)."""
    tags = {
        UID_TAG: f"{store_uuid}/{run['id']}",
        "mlops_nb.run_id": str(run["id"]),
        "mlops_nb.store": str(store.path),
        "mlops_nb.kind": run["kind"],
    }
    if run.get("parent_id") is not None:
        tags["mlops_nb.parent"] = str(run["parent_id"])
    if run.get("notebook"):
        tags["mlops_nb.notebook"] = run["notebook"]
    if run.get("git_commit"):
        tags["mlflow.source.git.commit"] = run["git_commit"]
    if run.get("error"):
        tags["mlops_nb.error"] = run["error"]
    return tags


def lifecycle_tags(view: dict[str, Any]) -> dict[str, str]:
    """The gate, integrity warnings and stage summary of a run's view, as ``mlops_nb.*`` tags."""
    tags: dict[str, str] = {}
    gate = view.get("gate")
    if gate:
        value = gate.get("value")
        shown = "NaN" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6g}"
        tags["mlops_nb.gate"] = (f"{gate['metric']} {gate['op']} {gate['threshold']:g}: {shown}, "
                                 f"{'passed' if gate['passed'] else 'failed'}")
    requirement = view.get("requirement")
    if requirement:
        tags["mlops_nb.requirement"] = f"{requirement['metric']} {requirement['op']} {requirement['threshold']:g}"
    warnings = view.get("warnings") or []
    tags["mlops_nb.integrity"] = "; ".join(w["message"] for w in warnings) if warnings else "ok"
    stages = [s for s in view.get("stages") or [] if s.get("state") != "not run"]
    if stages:
        tags["mlops_nb.stages"] = ", ".join(f"{s['stage']} {s['state']}" for s in stages)
    return tags


def write_lifecycle_files(store: Store, view: dict[str, Any], folder: Path) -> int:
    """Write the run's ``mlops-nb/`` artifact files into ``folder``: each stage attempt's cell source
    (``stages/<seq>-<stage>.py``), the stages table (``stages.json``), each captured DataFrame's profile
    (``profiles/<name>.json``). Returns how many. The environment is :func:`environment_text`, written
    by the sync only into the first run that has it."""
    count = 0
    run_id = view["id"]
    sources = store.rows("SELECT seq, stage, attempt, source FROM stages WHERE run_id = ? ORDER BY seq", (run_id,))
    if sources:
        (folder / "stages").mkdir(parents=True, exist_ok=True)
        for row in sources:
            (folder / "stages" / f"{row['seq']:03d}-{row['stage']}-{row['attempt']}.py").write_text(row["source"])
            count += 1
        _dump(folder / "stages.json", view.get("stages") or [])
        count += 1
    frames = [c for c in store.captures(run_id) if c.get("kind") == "dataframe"]
    if frames:
        (folder / "profiles").mkdir(parents=True, exist_ok=True)
        for capture in frames:
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in capture["name"])
            _dump(folder / "profiles" / f"{capture.get('stage_id') or 0}-{safe}.json", capture)
            count += 1
    return count


def environment_text(view: dict[str, Any]) -> str | None:
    """The run's ``environment.json`` (Python, platform, package versions), or None when not recorded."""
    return _text(view["environment"]) if view.get("environment") else None


def _dump(path: Path, value: Any) -> None:
    path.write_text(_text(value))


def _text(value: Any) -> str:
    return json.dumps(json_safe(value), indent=1, sort_keys=True, default=str)
