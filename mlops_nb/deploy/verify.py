"""Trust in a package's files: read MANIFEST.json, verify every checksum, re-seal a file edited on
purpose, and compare requirements.txt's pins with the installed libraries."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlops_nb.deploy.layout import FORMAT_VERSION, MANIFEST, SCRIPT_FILE, file_digest, package_dir, write_atomic
from mlops_nb.errors import ChecksumError, PackageError


def read_manifest(package: str | os.PathLike) -> dict[str, Any]:
    """The package's MANIFEST.json, parsed (not verified: see :func:`verify`)."""
    path = package_dir(package) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ChecksumError(f"{path} cannot be read as JSON ({exc}); the package is damaged: export it again") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ChecksumError(f"{path} lists no files; the package is damaged: export it again")
    if manifest.get("format") != FORMAT_VERSION:
        raise PackageError(
            f"{path} is package format {manifest.get('format')!r}; this mlops-nb reads format {FORMAT_VERSION}")
    return manifest


def verify(package: str | os.PathLike, files: Iterable[str] | None = None) -> dict[str, Any]:
    """Check every file listed in MANIFEST.json (or only ``files``) against its SHA-256 and size.

    Returns the manifest. Raises :class:`ChecksumError` naming each file that is missing or whose
    bytes differ, so a flipped byte anywhere refuses the whole package.
    """
    folder = package_dir(package)
    manifest = read_manifest(folder)
    listed: Mapping[str, Any] = manifest["files"]
    bad = []
    for relative in (listed if files is None else files):
        entry = listed.get(relative)
        path = folder / relative
        if entry is None:
            bad.append(f"{relative} (not listed in {MANIFEST})")
        elif ".." in Path(relative).parts or Path(relative).is_absolute():
            bad.append(f"{relative} (a path outside the package)")
        elif not path.is_file():
            bad.append(f"{relative} (missing)")
        else:
            sha, size = file_digest(path)
            if sha != entry.get("sha256") or size != entry.get("size"):
                bad.append(f"{relative} (sha256 {sha[:12]}..., expected {str(entry.get('sha256'))[:12]}...)")
    if bad:
        raise ChecksumError(
            f"checksum error in package {folder}: {'; '.join(bad)}. The files changed since export; "
            f"export the model again (an edited retrain.py can be re-sealed with `mlops-nb reseal {folder}`)")
    return manifest


def reseal(package: str | os.PathLike, files: Sequence[str] = (SCRIPT_FILE,)) -> dict[str, Any]:
    """Record new checksums for ``files`` (default: retrain.py) after a person edited them on
    purpose; every other file must still verify. Returns the new manifest."""
    folder = package_dir(package)
    manifest = read_manifest(folder)
    others = [f for f in manifest["files"] if f not in files]
    verify(folder, others)
    for relative in files:
        if relative not in manifest["files"]:
            raise PackageError(f"{relative} is not a file of package {folder}")
        sha, size = file_digest(folder / relative)
        manifest["files"][relative] = {"sha256": sha, "size": size}
    manifest["resealed"] = {"time": time.time(), "files": list(files)}
    write_atomic(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
    return manifest


def version_mismatches(package: str | os.PathLike) -> list[str]:
    """Each pin of the package's requirements.txt that the installed libraries do not meet, as
    ``"scikit-learn==1.8.0 is pinned, 1.9.1 is installed"`` (empty when everything matches)."""
    from importlib import metadata

    path = package_dir(package) / "requirements.txt"
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, pinned = line.strip().partition("==")
        if not sep or line.lstrip().startswith("#"):
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != pinned:
            found.append(f"{name}=={pinned} is pinned, {installed or 'nothing'} is installed")
    return found
