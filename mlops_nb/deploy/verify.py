"""Trust in a package's files, checked before anything in the package is loaded or run: read
MANIFEST.json, verify every checksum, compare the version with the manifest its store recorded (the
trust anchor) or with its signature, re-seal a file edited on purpose, and compare
requirements.txt's pins with the installed libraries."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlops_nb.deploy.layout import (
    FORMAT_VERSION,
    MANIFEST,
    SCRIPT_FILE,
    SETTINGS_FILE,
    VERSIONS_DIR,
    file_digest,
    package_dir,
    versions,
    write_atomic,
)
from mlops_nb.errors import ChecksumError, MlopsError, PackageError

#: Files of a version that MANIFEST.json does not list: itself, and the signature over it.
_UNLISTED = frozenset({MANIFEST, "SIGNATURE", "public_key.pem"})


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


def verify(package: str | os.PathLike, files: Iterable[str] | None = None, *, store: Any = None,
           public_key: str | os.PathLike | None = None) -> dict[str, Any]:
    """Check a package version before anything in it is loaded or run, and return its manifest.

    1. Every file listed in MANIFEST.json (or only ``files``) against its SHA-256 and size.
    2. The trust anchor: when the store (``store``, default the one the package was exported
       from) recorded this version's manifest, the MANIFEST.json on disk must be the latest one
       recorded (else each file that differs from the recorded manifest is named) and the package
       root's settings.json the one sealed with it. Where no store records the package, its
       ``SIGNATURE`` must verify (:mod:`mlops_nb.deploy.trust`).
    3. A pinned key (``public_key``, else ``$MLOPS_NB_PUBLIC_KEY``): the package must be signed by it.

    Raises :class:`ChecksumError` naming each file that is missing or differs.
    """
    folder = package_dir(package)
    manifest = read_manifest(folder)
    check_files(folder, manifest, files)
    check_anchor(folder, manifest, store=store, public_key=public_key)
    return manifest


def check_files(folder: Path, manifest: Mapping[str, Any], files: Iterable[str] | None = None) -> None:
    """Every file listed in ``manifest`` (or only ``files``) against its SHA-256 and size."""
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


def anchor_of(folder: Path) -> tuple[str, str, Path | None]:
    """``(package, version_dir, root)`` naming a version in the ``manifests`` table: the package
    root and ``v0003``; a version folder on its own is its own package (and has no settings)."""
    folder = Path(folder)
    if folder.parent.name == VERSIONS_DIR:
        root = folder.parent.parent
        return str(root), folder.name, root
    return str(folder), folder.name, None


def _anchor_store(store: Any, manifest: Mapping[str, Any]) -> Any:
    """The store to look the package up in, opened read-only, or None when there is none."""
    from mlops_nb.store import Store, open_store

    if isinstance(store, Store):
        return store
    path = store or manifest.get("store")
    if not path or not Path(path).is_file():
        return None
    try:
        return open_store(path, readonly=True)
    except MlopsError:
        return None


def _record_of(folder: Path, manifest: Mapping[str, Any], store: Any) -> tuple[Any, dict[str, Any] | None]:
    """The store recording version ``folder`` and its latest row: ``store`` (the caller's, such as a
    retraining job's), else the store the package was exported from; ``(None, None)`` when neither."""
    for candidate in (store, None) if store is not None else (None,):
        opened = _anchor_store(candidate, manifest)
        row = recorded(opened, folder)
        if row is not None:
            return opened, row
    return None, None


def recorded(store: Any, folder: Path) -> dict[str, Any] | None:
    """The latest ``manifests`` row of version ``folder`` in ``store`` (None when none, or when the
    store predates the table)."""
    if store is None:
        return None
    package, version_dir, _ = anchor_of(folder)
    try:
        rows = store.manifests(package, version_dir)
    except Exception:  # a store from before the trust anchor: no record to compare with
        return None
    return rows[0] if rows else None


def recorded_manifest(store: Any, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The manifest a ``manifests`` row recorded, parsed (None when its bytes are gone)."""
    artifact = store.artifact(row["artifact_id"]) if row.get("artifact_id") else None
    path = store.artifact_path(artifact["path"]) if artifact else None
    if path is None or not path.is_file():
        return None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != row["sha256"]:
        return None
    return json.loads(data)


def _differences(folder: Path, manifest: Mapping[str, Any], skip: Iterable[str] = ()) -> list[str]:
    listed = manifest.get("files") or {}
    skip = set(skip)
    found = []
    for relative in sorted(set(listed) | {p.relative_to(folder).as_posix() for p in folder.rglob("*")
                                          if p.is_file() and p.name not in _UNLISTED}):
        if relative in skip:
            continue
        entry, path = listed.get(relative), folder / relative
        if entry is None:
            found.append(f"{relative} (not in the recorded manifest)")
        elif not path.is_file():
            found.append(f"{relative} (missing)")
        elif file_digest(path)[0] != entry.get("sha256"):
            found.append(f"{relative} (differs from the recorded manifest)")
    return found


def _when(row: Mapping[str, Any]) -> str:
    return f"{row['reason']} on {time.strftime('%Y-%m-%d %H:%M', time.localtime(row['time']))}"


def _settings_changed(root: Path | None, how: str) -> ChecksumError:
    return ChecksumError(
        f"{root / SETTINGS_FILE if root else SETTINGS_FILE} differs from the settings {how}; "
        f"if you edited it, run `mlops-nb reseal {root}` to accept your edit")


def check_anchor(folder: Path, manifest: Mapping[str, Any], *, store: Any = None,
                 public_key: str | os.PathLike | None = None, skip: Iterable[str] = (),
                 check_settings: bool = True) -> str:
    """Compare version ``folder`` with its record in the store, else with its signature (see
    :func:`verify`); return how it was trusted, in words. ``skip``: files being re-sealed."""
    from mlops_nb.deploy import trust

    package, version_dir, root = anchor_of(folder)
    manifest_sha = file_digest(folder / MANIFEST)[0]
    pinned = trust.pinned_key(public_key)
    pinned_id = trust.key_id(pinned) if pinned is not None else None
    opened, row = _record_of(folder, manifest, store)
    if row is not None:
        if manifest_sha != row["sha256"]:
            original = recorded_manifest(opened, row)
            differ = _differences(folder, original, skip) if original is not None else []
            if differ or not skip:
                raise ChecksumError(
                    f"package {folder} does not match the manifest recorded at {_when(row)} in {opened.path}: "
                    f"{'; '.join(differ) or f'{MANIFEST} was rewritten'}. Export the model again, or "
                    f"`mlops-nb reseal {root or folder}` if you changed it on purpose")
        if pinned_id is not None and row.get("key_id") != pinned_id:
            raise ChecksumError(f"package {folder} was sealed with key {row.get('key_id')}, not the pinned key "
                                f"{pinned_id}; export it again where the pinned key's store is")
        if check_settings and row.get("signature") and root is not None:
            pem = pinned if pinned is not None else _public_pem(folder, opened, row.get("key_id"))
            if pem is None or not trust.signature_valid(pem, row["signature"], row["sha256"],
                                                        trust.settings_digest(root)):
                raise _settings_changed(root, f"recorded at {_when(row)}")
        return f"matches the manifest recorded at {_when(row)} in {opened.path}"
    document, public = trust.read_signature(folder)
    signer = trust.key_id(public)
    if pinned_id is not None and signer != pinned_id:
        raise ChecksumError(f"package {folder} is signed by key {signer}, not the pinned key {pinned_id}; "
                            f"use a package exported where the pinned key's store is")
    if document.get("manifest_sha256") != manifest_sha:
        raise ChecksumError(f"package {folder}: {MANIFEST} is not the manifest its {trust.SIGNATURE_FILE} signs; "
                            f"export the model again")
    if not trust.signature_valid(pinned or public, document["signature"], manifest_sha,
                                 document.get("settings_sha256")):
        raise ChecksumError(f"package {folder}: its {trust.SIGNATURE_FILE} does not verify; export the model again")
    if check_settings and root is not None and trust.settings_digest(root) != document.get("settings_sha256"):
        raise _settings_changed(root, "signed with this version")
    return f"signed by key {signer}" + (" (pinned)" if pinned_id else " (no key pinned)")


def _public_pem(folder: Path, store: Any, wanted: str | None) -> bytes | None:
    """The public key with id ``wanted``: the package's own, else the one beside the store."""
    from mlops_nb.deploy import trust

    for path in (folder / trust.PUBLIC_KEY_FILE, trust.keys_dir(store.path) / trust.PUBLIC_KEY_FILE):
        if path.is_file():
            pem = path.read_bytes()
            try:
                if trust.key_id(pem) == wanted:
                    return pem
            except ChecksumError:
                continue
    return None


def reseal(package: str | os.PathLike, files: Sequence[str] = (SCRIPT_FILE,), *, store: Any = None,
           record: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Accept edits made on purpose: record new checksums for ``files`` (default retrain.py; the
    package root's settings.json is accepted as it is), after checking that every other file
    still matches the recorded manifest; sign the version again with the key beside the store.
    The package root's other versions are signed again with the accepted settings too (each one
    that still matches its recorded manifest). ``record(manifest_bytes, seal, package=,
    version_dir=, quiet=)`` records each (the CLI records through tracking; ``quiet`` for the other
    versions). Returns the new manifest."""
    from mlops_nb.deploy import trust
    from mlops_nb.deploy.settings import read_settings

    folder = package_dir(package)
    package_name, version_dir, root = anchor_of(folder)
    # Settings are accepted only when they are valid: what is sealed is what a job can run with
    # (a refused edit stays refused, exit 78, and nothing is signed or recorded).
    if root is not None:
        read_settings(root)
    files = [f for f in files if f != SETTINGS_FILE]
    manifest = read_manifest(folder)
    opened, row = _record_of(folder, manifest, store)
    if row is not None:
        manifest = recorded_manifest(opened, row) or manifest
    check_files(folder, manifest, [f for f in manifest["files"] if f not in files])
    check_anchor(folder, manifest, store=opened, skip=files, check_settings=False)
    for relative in files:
        if relative not in manifest["files"]:
            raise PackageError(f"{relative} is not a file of package {folder}")
        sha, size = file_digest(folder / relative)
        manifest["files"][relative] = {"sha256": sha, "size": size}
    manifest["resealed"] = {"time": time.time(), "files": list(files) or [SETTINGS_FILE]}
    write_atomic(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
    store_path = getattr(store, "path", None) or store or manifest.get("store")
    seal = trust.sign(folder, root, store_path)
    if record is not None:
        record((folder / MANIFEST).read_bytes(), seal, package=package_name, version_dir=version_dir)
    # settings.json belongs to the whole root: the other versions (a rollback's targets) are sealed
    # with the accepted settings too, each only if it still matches its own recorded manifest.
    for _, other in versions(root) if root is not None else []:
        if other == folder:
            continue
        try:
            other_manifest = read_manifest(other)
            check_files(other, other_manifest)
            check_anchor(other, other_manifest, store=opened, check_settings=False)
        except MlopsError:
            continue  # it stays refused: it did not verify before the edit either
        other_seal = trust.sign(other, root, store_path)
        if record is not None:
            record((other / MANIFEST).read_bytes(), other_seal, package=package_name, version_dir=other.name,
                   quiet=True)
    return manifest


def version_mismatches(package: str | os.PathLike) -> list[str]:
    """Each pin of the package's requirements.txt that the installed libraries do not meet, as
    ``"scikit-learn==1.8.0 is pinned, 1.9.1 is installed"`` (empty when everything matches)."""
    from mlops_nb.tracking.environment import installed_version

    path = package_dir(package) / "requirements.txt"
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, pinned = line.strip().partition("==")
        if not sep or line.lstrip().startswith("#"):
            continue
        installed = installed_version(name)
        if installed != pinned:
            found.append(f"{name}=={pinned} is pinned, {installed or 'nothing'} is installed")
    return found
