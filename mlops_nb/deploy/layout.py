"""The package on disk: its file names, the package root with its versions and ``current`` link,
the lock, and durable writes.

The folder a user names (``deploy/churn``, the *package root*) holds whole package versions side by
side and a ``current`` symlink to the one that serves::

    deploy/churn/
        current -> versions/v0003     swapped atomically (os.replace of a new symlink)
        versions/v0001/ ...           each a complete package: MANIFEST.json, model.skops, ...
        versions/v0002/ ...
        versions/v0003/ ...
        settings.json                 retraining settings (not checksummed: yours to edit)
    deploy/.churn.lock                the lock retraining, export and rollback take (fcntl.flock)

Every function here that takes a package accepts the root (it follows ``current`` once, so one
call reads one version even while a promotion swaps it), ``current``, a version folder, or a file
inside one. :func:`write_version` adds a version (written and fsynced under a temporary name, then
renamed), :func:`switch_current` swaps ``current``, :func:`prune_versions` keeps the newest few.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_nb.errors import PackageError, PackageLocked

FORMAT_VERSION = 1
MANIFEST = "MANIFEST.json"
MODEL_FILE = "model.skops"
SCHEMA_FILE = "schema.json"
PIPELINE_FILE = "pipeline.json"
SCRIPT_FILE = "retrain.py"
#: The row-wise part of the features and selection cells: raw rows -> the model's input (predict, serve).
FEATURES_FILE = "features.py"
PROFILE_FILE = "reference/profile.json"
#: skops' default estimator list as export computed it, so a job need not import all of scikit-learn
#: to compute it again (:mod:`mlops_nb.deploy.skops_scan`).
SKOPS_DEFAULTS_FILE = "skops_defaults.json"
VERSIONS_DIR = "versions"
CURRENT = "current"
SETTINGS_FILE = "settings.json"
#: Package versions kept after a promotion (the current one is always kept as well).
KEEP_VERSIONS = 3
#: Rows of training data kept in ``reference/`` for the small-reference drift tests.
SAMPLE_ROWS = 10_000
_VERSION_NAME = re.compile(r"^v(\d{4,})$")


def file_digest(path: str | os.PathLike) -> tuple[str, int]:
    """SHA-256 (hex) and size in bytes of the file at ``path``."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def package_dir(package: str | os.PathLike) -> Path:
    """The folder of one package version: for a package root, the version ``current`` points at
    (resolved once); a version folder, ``current`` or a file inside one (retrain.py) work too."""
    path = Path(package).expanduser().absolute()
    if path.is_file():
        path = path.parent
    if (path / CURRENT / MANIFEST).is_file():
        return (path / CURRENT).resolve()
    if (path / MANIFEST).is_file():
        return path.resolve() if path.is_symlink() else path
    if (path / VERSIONS_DIR).is_dir():
        raise PackageError(
            f"{path} has package versions but no valid `{CURRENT}` link to one; point it at a version with "
            f"`mlops-nb rollback {path}`, or export the model again")
    raise PackageError(
        f"{path} is not an mlops-nb package (no {MANIFEST}); export one with "
        f"`%mlops export NAME --to DIR` or `mlops-nb export NAME --to DIR`")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(package: str | os.PathLike, name: str) -> Any:
    path = package_dir(package) / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackageError(f"package {path.parent} has no {name}; export it again") from None


def package_root(package: str | os.PathLike) -> Path:
    """The package root (the folder holding ``versions/`` and ``current``) of the root itself,
    ``current``, a version folder or a file inside one. :class:`PackageError` otherwise (a
    version folder copied somewhere else is a package, but not one that can take new versions)."""
    path = Path(package).expanduser().absolute()
    if path.is_file():
        path = path.parent
    if (path / VERSIONS_DIR).is_dir():
        return path
    if path.name == CURRENT and (path.parent / VERSIONS_DIR).is_dir():
        return path.parent
    if path.parent.name == VERSIONS_DIR and _VERSION_NAME.match(path.name):
        return path.parent.parent
    if (path / MANIFEST).is_file():
        raise PackageError(
            f"{path} is a single package version without a package root ({VERSIONS_DIR}/ and {CURRENT}); "
            f"retraining and rollback need the folder export wrote: export the model again with --to DIR")
    raise PackageError(f"{path} is not an mlops-nb package; export one with `mlops-nb export NAME --to DIR`")


def retrain_script(package: str | os.PathLike) -> Path:
    """The retrain.py a scheduler runs for a package: ``ROOT/current/retrain.py``, through the link,
    so the path always names the serving version's script (run it from anywhere: it finds its root)."""
    path = package_root(package) / CURRENT / SCRIPT_FILE
    if not path.is_file():
        raise PackageError(f"{path} is missing; the package's `{CURRENT}` link points at no complete version")
    return path


def versions(root: str | os.PathLike) -> list[tuple[int, Path]]:
    """The complete versions of package root ``root`` as ``(number, folder)``, oldest first."""
    folder = Path(root) / VERSIONS_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _VERSION_NAME.match(path.name)
        if match and (path / MANIFEST).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def current_version(root: str | os.PathLike) -> Path | None:
    """The version folder ``current`` points at (resolved), or None when it points nowhere valid."""
    link = Path(root) / CURRENT
    if not (link / MANIFEST).is_file():
        return None
    return link.resolve()


def version_number(folder: str | os.PathLike) -> int | None:
    """3 for ``.../versions/v0003``; None for a folder that is not a numbered version."""
    match = _VERSION_NAME.match(Path(folder).name)
    return int(match.group(1)) if match else None


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a folder's entries (a rename, a new file) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_files(folder: Path, files: Mapping[str, bytes], manifest: Mapping[str, Any]) -> dict[str, dict]:
    """Write ``files`` (relative path -> bytes) into ``folder``, each fsynced, then MANIFEST.json
    (``manifest`` plus every file's SHA-256 and size) last; fsync the folders. Returns the listing."""
    listed = {}
    for relative, data in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_synced(path, data)
        listed[relative] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    document = {**manifest, "files": dict(sorted(listed.items()))}
    write_synced(folder / MANIFEST, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())
    for sub in {(folder / r).parent for r in files} | {folder}:
        fsync_dir(sub)
    os.chmod(folder, 0o755)
    return listed


def write_version(root: str | os.PathLike, files: Mapping[str, bytes], manifest: Mapping[str, Any]
                  ) -> tuple[Path, dict[str, dict]]:
    """Add the next version ``versions/vNNNN`` to package root ``root``: written and fsynced under a
    temporary name, then renamed whole (a crash leaves a temporary folder that :func:`prune_versions`
    removes, never half a version). ``manifest`` gets ``package_version``. Returns the folder and
    the listing of its files. Call with the package's lock held (:func:`locked`)."""
    folder = Path(root) / VERSIONS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    taken = [int(m.group(1)) for p in folder.iterdir() if (m := _VERSION_NAME.match(p.name))]
    number = max(taken, default=0) + 1
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".v{number:04d}.tmp-"))
    try:
        listed = write_files(tmp, files, {**manifest, "package_version": number})
        final = folder / f"v{number:04d}"
        os.rename(tmp, final)
        fsync_dir(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, listed


def switch_current(root: str | os.PathLike, version: str | os.PathLike) -> Path:
    """Point ``current`` of package root ``root`` at version folder ``version``, atomically: a new
    relative symlink under a temporary name replaces ``current`` with ``os.replace``, then the
    root is fsynced. A reader sees the old version or the new one, never neither."""
    root = Path(root)
    target = Path(version)
    if not (target / MANIFEST).is_file():
        raise PackageError(f"{target} is not a complete package version; not switching {root / CURRENT} to it")
    tmp = root / f".{CURRENT}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target.absolute(), root.absolute()), tmp)
    os.replace(tmp, root / CURRENT)
    fsync_dir(root)
    return target


def prune_versions(root: str | os.PathLike, keep: int = KEEP_VERSIONS) -> list[Path]:
    """Delete all but the ``keep`` newest versions (never the current one), and the leftovers of
    crashed jobs (temporary version folders and links). Call with the lock held. Returns what went."""
    root = Path(root)
    current = current_version(root)
    found = versions(root)
    newest = {path for _, path in found[-keep:]} if keep > 0 else set()
    removed = []
    for _, path in found:
        if path not in newest and path != current:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    folder = root / VERSIONS_DIR
    for path in list(folder.iterdir()) if folder.is_dir() else []:
        if path.name.startswith(".") and ".tmp-" in path.name:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    for path in root.glob(f".{CURRENT}.tmp-*"):
        path.unlink(missing_ok=True)
        removed.append(path)
    if removed and folder.is_dir():
        fsync_dir(folder)
    return removed


def lock_path(root: str | os.PathLike) -> Path:
    """The lock file of package root ``root``: ``.<name>.lock`` in its parent folder."""
    root = Path(root).absolute()
    return root.parent / f".{root.name}.lock"


@contextlib.contextmanager
def locked(root: str | os.PathLike, purpose: str = "retraining"):
    """Hold the package's lock (``fcntl.flock``, non-blocking) for the block.

    :class:`PackageLocked` at once, naming the holder, when another process holds it. The kernel
    releases the lock when its holder exits, however it exits (kill -9 included), so a crashed job
    never leaves the package locked.
    """
    import fcntl

    path = lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 300, 0).decode("utf-8", "replace").strip() or "another process"
            raise PackageLocked(f"{Path(root)} is busy: {holder} holds {path}") from None
        note = f"{purpose} (pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')})"
        os.ftruncate(fd, 0)
        os.pwrite(fd, note.encode(), 0)
        yield path
    finally:
        os.close(fd)
