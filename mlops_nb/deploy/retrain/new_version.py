"""The files and MANIFEST.json of the package version a promoted candidate becomes: the current
version's files, with the new model, reference, input example and metrics."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlops_nb.deploy.layout import FEATURES_FILE, MODEL_FILE, SCHEMA_FILE, version_number
from mlops_nb.deploy.reference import reference_files
from mlops_nb.deploy.rows import example_json
from mlops_nb.format import json_safe


def version_files(current: Path, manifest: dict[str, Any], model_bytes: bytes, *, candidate: Any, table: Any,
                  inputs: Any, run_id: int, metrics: dict[str, float], holdout_rows: int,
                  primary_metric: str) -> dict[str, bytes]:
    """Relative path -> bytes of the new version: ``current``'s files (less its reference), the
    candidate's model, a reference of the fresh ``table`` and ``inputs``, its input example, and
    metrics.json with the candidate's and champion's metrics on the held-out rows."""
    files = {rel: (current / rel).read_bytes() for rel in manifest["files"] if not rel.startswith("reference/")}
    files[MODEL_FILE] = model_bytes
    files.update(reference_files(table, model=candidate, inputs=inputs))
    schema = json.loads(files[SCHEMA_FILE]) if SCHEMA_FILE in files else {}
    raw = [c["name"] for c in (schema.get("raw") or {}).get("columns") or []]
    # raw rows when the package makes its own model input (features.py), as export wrote them
    example = inputs.head(3)
    if FEATURES_FILE in files and raw and set(raw) <= set(table.columns):
        first = inputs.index[:3]
        example = table.loc[first, raw] if first.isin(table.index).all() else table[raw].head(3)
    files["input_example.json"] = (example_json(example) + "\n").encode()
    requirement = manifest.get("requirement")
    files["metrics.json"] = (json.dumps(json_safe({
        "run_id": run_id,
        "metrics": {k.removeprefix("candidate_"): v for k, v in metrics.items() if k.startswith("candidate_")},
        "champion_metrics": {k.removeprefix("champion_"): v for k, v in metrics.items() if k.startswith("champion_")},
        "holdout_rows": holdout_rows,
        "requirement": requirement,
        "gate": None if not requirement else {
            "metric": requirement["metric"], "op": requirement["op"], "threshold": requirement["threshold"],
            "value": metrics.get(f"candidate_{primary_metric}"), "passed": 1},
    }), indent=2) + "\n").encode()
    return files


def version_manifest(current: Path, manifest: dict[str, Any], model_bytes: bytes, *, version: int, run_id: int,
                     data_source: str | None, data_fingerprint: str, forced: bool) -> dict[str, Any]:
    """The new version's manifest (its file listing is added when it is written): the current one's,
    with the new model version and checksum, and where it was retrained from."""
    new = {k: v for k, v in manifest.items() if k not in ("files", "package_version", "resealed")}
    new["created"] = datetime.now(timezone.utc).isoformat()
    new["model"] = {**manifest["model"], "version": version, "sha256": hashlib.sha256(model_bytes).hexdigest()}
    new["retrained"] = {
        "run_id": run_id, "from_model_version": manifest["model"]["version"],
        "from_package_version": version_number(current), "data_source": data_source,
        "data_fingerprint": data_fingerprint, "forced": forced, "time": time.time(),
    }
    return new
