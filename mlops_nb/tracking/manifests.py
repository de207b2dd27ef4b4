"""Recording the trust anchor: every MANIFEST.json a package version gets (export, promotion by
retraining, reseal), with its signature, in the store's ``manifests`` table."""

from __future__ import annotations

import os

from mlops_nb.store import Store, open_store
from mlops_nb.store.writer import Writer


def record_manifest(
    manifest: bytes, *, package: str, version_dir: str, run_id: int, reason: str, signature: str | None = None,
    key_id: str | None = None, model_name: str | None = None, model_version: int | None = None,
    store: str | os.PathLike | Store | None = None,
) -> int:
    """Record ``manifest`` (MANIFEST.json's bytes) of version ``version_dir`` of the package root
    ``package``: the bytes as an artifact of run ``run_id``, its SHA-256, ``signature`` (base64) and
    ``key_id``, ``reason`` (``export``, ``promotion``, ``reseal``), the model it holds. Returns the row id."""
    writer = Writer(open_store(store))
    stored = writer.put_bytes(manifest)
    return writer.add_manifest(package=package, version_dir=version_dir, stored=stored, run_id=run_id,
                               signature=signature, key_id=key_id, reason=reason, model_name=model_name,
                               model_version=model_version)
