"""The version a server answers with, and the switch to a new one when the package's ``current``
moves (a retraining promotion or a rollback).

A :class:`Served` is one verified version held in memory: its model (loaded with the allow-list),
manifest, schema and drift reference. :class:`Holder` keeps the one in use behind a plain
attribute; :meth:`Holder.check` (the server's poll thread calls it every
``MLOPS_NB_SERVE_POLL`` seconds, default 1) reads the ``current`` link, and when it names another
version, verifies and loads that version aside and only then swaps the reference. A request holds
the ``Served`` it started with, so a swap never changes a request mid-way. A version that fails
verification is refused once (one line on stderr) and the old one keeps serving.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_nb.deploy.layout import CURRENT, MANIFEST, package_dir, package_root
from mlops_nb.deploy.model import load_model
from mlops_nb.deploy.reference import read_reference
from mlops_nb.deploy.scorer import Scorer, compile_version
from mlops_nb.deploy.verify import verify
from mlops_nb.errors import MlopsError, PackageError

POLL_VAR = "MLOPS_NB_SERVE_POLL"


@dataclass
class Served:
    """One verified package version, loaded."""

    folder: Path
    model: Any
    manifest: dict[str, Any]
    schema: dict[str, Any]
    reference: dict[str, Any] | None
    manifest_sha256: str
    input_columns: list[str] = field(default_factory=list)
    scorer: Scorer | None = None  # the version compiled for scoring (schema plan, features.py, model methods)

    def compiled(self) -> Scorer:
        """The version compiled for scoring (a ``Served`` built by hand is compiled on first use)."""
        if self.scorer is None:
            self.scorer = compile_version(self.folder, self.model, verified=True)
        return self.scorer

    def version(self) -> dict[str, Any]:
        """What ``GET /version`` answers."""
        model = self.manifest.get("model") or {}
        return {"package_version": self.folder.name, "model": model.get("name"), "model_version": model.get("version"),
                "manifest_sha256": self.manifest_sha256, "package": str(self.folder),
                "transform": "compiled" if self.compiled().compiled_transform() is not None else "scikit-learn"}


def load_served(folder: Path, *, store: Any = None, public_key: str | None = None) -> Served:
    """Verify version ``folder`` (checksums, the store's record or the signature, a pinned key) and
    load what serving needs; :class:`~mlops_nb.errors.ChecksumError` / ``UntrustedTypes`` when it
    must be refused."""
    import hashlib

    manifest = verify(folder, store=store, public_key=public_key)
    model = load_model(folder, verify_files=False)  # verified just above, in full
    scorer = compile_version(folder, model, verified=True)  # once per version: requests only score
    scorer.compiled_transform()  # proven here, at start or switch, not in the first request
    schema = scorer.schema  # read once, by the compiled version
    try:
        reference, _ = read_reference(folder, with_sample=False)
    except PackageError:
        reference = None
    sha = hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()
    inputs = [c["name"] for c in (schema.get("input") or {}).get("columns") or []]
    return Served(folder=folder, model=model, manifest=manifest, schema=schema, reference=reference,
                  manifest_sha256=sha, input_columns=inputs, scorer=scorer)


def _say(line: str) -> None:
    sys.stderr.write(f"mlops-nb serve: {line}\n")
    sys.stderr.flush()


class Holder:
    """The package a server serves and the version in use (:attr:`served`)."""

    def __init__(self, package: str | os.PathLike, *, store: Any = None, public_key: str | None = None):
        self.store = store
        self.public_key = public_key
        folder = package_dir(package)
        try:
            self.root: Path | None = package_root(package)
        except PackageError:  # a lone version folder: served as it is, nothing to follow
            self.root = None
        self.served = load_served(folder, store=store, public_key=public_key)
        self.refused: Path | None = None
        self._lock = threading.Lock()

    def target(self) -> Path | None:
        """The version ``current`` names now (one readlink), or None when there is no link to follow."""
        if self.root is None:
            return None
        link = self.root / CURRENT
        try:
            return (self.root / os.readlink(link)).resolve()
        except OSError:
            return None

    def check(self) -> bool:
        """Switch to the version ``current`` names when it moved and verifies; True when it switched."""
        target = self.target()
        if target is None or target == self.served.folder or target == self.refused:
            return False
        with self._lock:  # one load at a time; a second caller finds the work done
            if target == self.served.folder or target == self.refused or not (target / MANIFEST).is_file():
                return False
            try:
                new = load_served(target, store=self.store, public_key=self.public_key)
            except MlopsError as exc:
                if self.target() == target:  # not merely pruned by a newer promotion meanwhile
                    self.refused = target
                    _say(f"refusing {target.name} (still serving {self.served.folder.name}): {exc}")
                return False
            except OSError:  # pruned while read: the next check finds the newer one
                return False
            old, self.served = self.served, new
            self.refused = None
            gc.freeze()  # the new version's model joins the objects full collections skip (app.settle)
            _say(f"now serving {new.folder.name} (model version {new.version()['model_version']}), "
                 f"was {old.folder.name}")
            return True

    def poll(self, stop: threading.Event) -> None:
        """Call :meth:`check` every ``$MLOPS_NB_SERVE_POLL`` seconds (default 1) until ``stop``."""
        interval = float(os.environ.get(POLL_VAR) or 1.0)
        while not stop.wait(interval):
            try:
                self.check()
            except Exception as exc:  # the poll must outlive any surprise; the old version keeps serving
                _say(f"checking {CURRENT} failed: {type(exc).__name__}: {exc}")
