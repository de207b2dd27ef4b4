"""An exported package at run time: verify it, load its model safely, check data against its
schema, read fresh data, predict, and run its ``retrain.py``.

This is what a server with no notebook uses (``mlops-nb predict``, the exported ``retrain.py``, the
retraining runtime). It never trusts the package for what may be loaded: the manifest's checksums
are verified first, and the model is loaded with skops trusting only :data:`TRUSTED_TYPES`, a
fixed list written here. The package layout is described in :mod:`mlops_nb.deploy.export`.

``retrain.py`` calls :func:`main`, which hands over to the retraining runtime
(``mlops_nb.deploy.retrain.run_package``).

Versions. The folder a user names (``deploy/churn``, the *package root*) holds whole package
versions side by side and a ``current`` symlink to the one that serves::

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
renamed), :func:`switch_current` swaps ``current``, :func:`prune_versions` keeps the last three.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import importlib
import importlib.util
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_nb.errors import (
    ChecksumError,
    DataNotFound,
    PackageError,
    PackageLocked,
    SchemaMismatch,
    UntrustedTypes,
)

if TYPE_CHECKING:
    import pandas

FORMAT_VERSION = 1
MANIFEST = "MANIFEST.json"
MODEL_FILE = "model.skops"
SCHEMA_FILE = "schema.json"
PIPELINE_FILE = "pipeline.json"
SCRIPT_FILE = "retrain.py"
PROFILE_FILE = "reference/profile.json"
VERSIONS_DIR = "versions"
CURRENT = "current"
SETTINGS_FILE = "settings.json"
#: Package versions kept after a promotion (the current one is always kept as well).
KEEP_VERSIONS = 3
#: Rows of training data kept in ``reference/`` for the small-reference drift tests.
SAMPLE_ROWS = 10_000
#: Set to a number of seconds, retraining pauses that long at each step where a crash matters
#: (fit, each file written, the swap, each store write) and says so on stderr: the fault-injection
#: tests use it to kill the job at known moments. Never set in production.
FAULT_DELAY_ENV = "MLOPS_NB_FAULT_DELAY"
_VERSION_NAME = re.compile(r"^v(\d{4,})$")

#: Exit statuses of retraining and prediction (sysexits, plus the project's own), DESIGN.md section 4.
EXIT_PROMOTED = 0
EXIT_BAD_DATA = 65
EXIT_NO_DATA = 66
EXIT_BUG = 70
EXIT_LOCKED = 75
EXIT_CONFIG = 78
EXIT_BELOW_REQUIREMENT = 80
EXIT_DRIFT = 81
EXIT_INTEGRITY = 82
EXIT_KEPT = 99

#: The types (beyond skops' own defaults) that :func:`load_model` lets skops load. Fixed here, in
#: code, never read from a package: a package that needs anything else is refused, naming the type.
#: Each was seen in skops 0.16 dumps of common scikit-learn models (see tests/test_export.py).
TRUSTED_TYPES: tuple[str, ...] = (
    # decision trees and every forest / boosting ensemble built on them
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # univariate feature selection scores (SelectKBest, SelectPercentile, ...)
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.feature_selection._univariate_selection.f_regression",
    "sklearn.feature_selection._univariate_selection.r_regression",
    "sklearn.feature_selection._univariate_selection.chi2",
    "sklearn.feature_selection._mutual_info.mutual_info_classif",
    "sklearn.feature_selection._mutual_info.mutual_info_regression",
    # MLP solvers, voting/stacking named estimators, PCA/KBinsDiscretizer dtypes
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.utils._bunch.Bunch",
    "numpy.dtype",
    # ColumnTransformer(make_column_selector(dtype_include=np.number)), CalibratedClassifierCV
    "sklearn.compose._column_transformer.make_column_selector",
    "numpy.number",
    "numpy.integer",
    "numpy.floating",
    "sklearn.utils.validation.check_array",
    "functools.partial",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)

#: Modules whose classes and functions :func:`rebuild_estimator` may import from pipeline.json.
REBUILD_MODULES: tuple[str, ...] = ("sklearn", "numpy", "scipy")

#: Column kinds a schema column accepts (``capture._column_kind`` of the fresh column's dtype).
_COMPATIBLE = {
    "numeric": {"numeric", "boolean"},
    "boolean": {"boolean", "numeric"},
    "categorical": {"categorical"},
    "datetime": {"datetime"},
    "other": {"numeric", "boolean", "categorical", "datetime", "other"},
}


# -- manifest -------------------------------------------------------------------------------------


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


# -- versions, the current link, the lock -------------------------------------------------------


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


def fault_point(name: str) -> None:
    """Pause for ``$MLOPS_NB_FAULT_DELAY`` seconds at a moment where a crash matters, saying so on
    stderr (the fault-injection tests kill the job there). Does nothing when the variable is unset."""
    delay = os.environ.get(FAULT_DELAY_ENV)
    if delay:
        print(f"mlops-nb fault point: {name}", file=sys.stderr, flush=True)
        time.sleep(float(delay))


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
        fault_point(f"write {relative}")
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
    fault_point("swap")
    os.replace(tmp, root / CURRENT)
    fsync_dir(root)
    fault_point("swapped")
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


# -- the reference for drift checks ---------------------------------------------------------------


def model_scores(model: Any, X: Any) -> tuple[str, Any] | None:
    """What prediction drift compares: ``(description, values)``. A binary classifier's probability
    of its second class, a regressor's predictions (numbers), another classifier's predicted labels
    (as text); None when the model cannot score ``X``."""
    import numpy as np

    classes = getattr(model, "classes_", None)
    try:
        if classes is not None and len(classes) == 2 and hasattr(model, "predict_proba"):
            with contextlib.suppress(Exception):
                return f"probability of class {classes[1]}", np.asarray(model.predict_proba(X))[:, 1]
        predicted = np.asarray(model.predict(X))
    except Exception:
        return None
    if classes is not None:
        return "predicted label", predicted.astype(str)
    return "prediction", predicted.astype("float64")


def scores_profile(model: Any, X: Any) -> dict[str, Any] | None:
    """The drift profile of ``model_scores(model, X)`` (numeric or categorical), with ``score``
    describing what was scored; None when the model cannot score ``X``."""
    from mlops_nb import drift

    scored = model_scores(model, X) if model is not None and X is not None else None
    if scored is None:
        return None
    description, values = scored
    profile = drift.categorical_profile(values) if values.dtype.kind in "OUS" else drift.numeric_profile(values)
    return {**profile, "score": description}


def reference_files(table: Any, *, model: Any = None, inputs: Any = None) -> dict[str, bytes]:
    """``reference/profile.json`` and ``reference/sample.parquet`` (``.csv`` without pyarrow) of a
    training table: :func:`mlops_nb.drift.reference_profile` and :func:`~mlops_nb.drift.reference_sample`
    of ``table``, plus under ``scores`` the profile of ``model``'s scores on its input ``inputs``
    (:func:`scores_profile`) and under ``sample`` the sample's file name."""
    import pandas as pd

    from mlops_nb import drift

    frame = table if table is not None else pd.DataFrame()
    profile = drift.reference_profile(frame, sample_rows=SAMPLE_ROWS)
    profile["scores"] = scores_profile(model, inputs)
    sample = drift.reference_sample(frame, sample_rows=SAMPLE_ROWS)
    buffer = io.BytesIO()
    if importlib.util.find_spec("pyarrow") is not None:
        name = "reference/sample.parquet"
        sample.to_parquet(buffer, index=False)
    else:
        name = "reference/sample.csv"
        sample.to_csv(buffer, index=False)
    profile["sample"] = name
    text = json.dumps(profile, separators=(",", ":"), allow_nan=False, default=_json_default) + "\n"  # 20k numbers
    return {PROFILE_FILE: text.encode(), name: buffer.getvalue()}


def read_reference(package: str | os.PathLike, *, with_sample: bool = True) -> tuple[dict[str, Any], Any]:
    """The package's drift reference: the profile and (when ``with_sample`` and it is there) the sample."""
    folder = package_dir(package)
    profile = read_json(folder, PROFILE_FILE)
    sample = None
    name = profile.get("sample")
    if with_sample and name and (folder / name).is_file():
        import pandas as pd

        sample = pd.read_parquet(folder / name) if name.endswith(".parquet") else pd.read_csv(folder / name)
    return profile, sample


def _json_default(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


# -- the model ------------------------------------------------------------------------------------


def load_model(package: str | os.PathLike, *, extra_trusted: Sequence[str] = (), verify_files: bool = True) -> Any:
    """Load the fitted model of an exported package, safely.

    Verifies every checksum of MANIFEST.json first (:class:`ChecksumError` names any file that
    changed), then loads ``model.skops`` with skops trusting only :data:`TRUSTED_TYPES` plus
    ``extra_trusted`` (type names your own code vouches for; never taken from the package). A
    model needing any other type is refused with :class:`UntrustedTypes` naming it.
    """
    import skops.io as sio

    folder = package_dir(package)
    if verify_files:
        verify(folder)
    path = folder / MODEL_FILE
    trusted = [*TRUSTED_TYPES, *extra_trusted]
    try:
        needed = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise PackageError(f"{path} is not a skops model file ({exc})") from None
    refused = sorted(set(needed) - set(trusted))
    if refused:
        raise UntrustedTypes(
            f"refusing to load {path}: it needs {len(refused)} type{'s' if len(refused) != 1 else ''} outside "
            f"mlops-nb's allow-list: {', '.join(refused)}. Loading them could run arbitrary code; if you "
            f"trust them, pass load_model(..., extra_trusted=[...]) from your own code")
    return sio.load(path, trusted=trusted)


def untrusted_types(data: bytes) -> list[str]:
    """The types of a skops dump that :func:`load_model` would refuse."""
    import skops.io as sio

    return sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))


def _import_path(path: str, allowed: Sequence[str]) -> Any:
    """Import ``module.attr`` (the longest importable module prefix) when its root is allowed."""
    root = path.split(".", 1)[0]
    if root not in allowed:
        raise PackageError(
            f"pipeline.json names {path}, outside the modules mlops-nb rebuilds from ({', '.join(allowed)}); "
            f"pass allowed_modules=[...] from your own code if you trust it")
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        return obj
    raise PackageError(f"pipeline.json names {path}, which cannot be imported here; check requirements.txt")


def rebuild_estimator(spec: Mapping[str, Any], *, allowed_modules: Sequence[str] = ()) -> Any:
    """An unfitted estimator built from a pipeline.json spec (``{"class", "params"}``, nested for
    pipelines): the same class and parameters as the exported model, ready to fit on fresh data.
    Only classes and functions from :data:`REBUILD_MODULES` (plus ``allowed_modules``) are imported."""
    allowed = (*REBUILD_MODULES, *allowed_modules)
    cls = _import_path(spec["class"], allowed)
    params = {key: _decode(value, allowed) for key, value in spec.get("params", {}).items()}
    return cls(**params)


def _decode(value: Any, allowed: Sequence[str]) -> Any:
    if isinstance(value, list):
        return [_decode(v, allowed) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise PackageError(f"pipeline.json has a value it cannot read: {json.dumps(value)[:200]}")
    (tag, inner), = value.items()
    if tag in ("estimator", "object"):
        return rebuild_estimator(inner, allowed_modules=tuple(m for m in allowed if m not in REBUILD_MODULES))
    if tag == "tuple":
        return tuple(_decode(v, allowed) for v in inner)
    if tag == "dict":
        return {k: _decode(v, allowed) for k, v in inner.items()}
    if tag == "float":
        return float(inner)
    if tag == "ndarray":
        import numpy as np

        return np.asarray(inner["data"], dtype=inner["dtype"])
    if tag in ("type", "callable"):
        return _import_path(inner, allowed)
    if tag == "partial":
        func = _import_path(inner["func"], allowed)
        return functools.partial(func, *_decode(inner["args"], allowed), **_decode(inner["keywords"], allowed))
    if tag == "unrebuildable":
        raise PackageError(f"pipeline.json cannot rebuild a parameter value {inner}; retrain from model.skops instead")
    raise PackageError(f"pipeline.json has an unknown value tag {tag!r}")


# -- data and schema ------------------------------------------------------------------------------


def read_schema(package: str | os.PathLike) -> dict[str, Any]:
    return read_json(package, SCHEMA_FILE)


def read_table(source: str | os.PathLike) -> pandas.DataFrame:
    """Read CSV (``.csv``, ``.tsv``, optionally ``.gz``), Parquet (``.parquet``, ``.pq``) or JSON
    (``.json`` records, ``.jsonl``/``.ndjson`` lines) from a path or a glob; several matching files
    are concatenated in name order. :class:`DataNotFound` when nothing matches or no row is there."""
    import pandas as pd

    text = os.path.expanduser(os.fspath(source))
    if "://" in text and not text.startswith("file://"):
        raise PackageError(f"{text} is not a file path or glob; SQL sources are read by the retraining runtime")
    text = text.removeprefix("file://")
    paths = sorted(glob.glob(text)) if glob.has_magic(text) else ([text] if os.path.exists(text) else [])
    paths = [p for p in paths if os.path.isfile(p)]
    if not paths:
        raise DataNotFound(f"no data at {text}: no file matches it")
    frames = []
    for path in paths:
        name = path.lower().removesuffix(".gz")
        if os.path.getsize(path) == 0:
            continue  # an empty file (a writer that has not started): no rows, no columns
        if name.endswith(".csv"):
            frames.append(pd.read_csv(path))
        elif name.endswith(".tsv"):
            frames.append(pd.read_csv(path, sep="\t"))
        elif name.endswith((".parquet", ".pq")):
            frames.append(pd.read_parquet(path))
        elif name.endswith((".jsonl", ".ndjson")):
            frames.append(pd.read_json(path, lines=True))
        elif name.endswith(".json"):
            frames.append(pd.read_json(path))
        else:
            raise PackageError(f"cannot read {path}: use .csv, .tsv, .parquet, .json or .jsonl files")
    table = frames[0] if len(frames) == 1 else (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())
    if table.empty:
        raise DataNotFound(f"the data at {text} holds no rows ({len(paths)} file{'s' if len(paths) != 1 else ''})")
    return table


def check_frame(frame: pandas.DataFrame, columns: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """Compare ``frame`` with schema ``columns``; return ``(problems, notes)``, each naming its column.

    Problems: a missing column; a column whose dtype kind differs (text where numbers were, say);
    missing values in a column that had none in the training data. Notes (not errors): extra
    columns, which are dropped, and category values never seen in training.
    """
    from mlops_nb.capture import _column_kind

    problems, notes = [], []
    expected = {c["name"] for c in columns}
    for column in columns:
        name = column["name"]
        if name not in frame.columns:
            problems.append(f"column {name!r} is missing (expected {column['dtype']})")
            continue
        values = frame[name]
        missing = int(values.isna().sum())
        kind = _column_kind(values.dtype)
        dates_as_text = column["kind"] == "datetime" and kind == "categorical" and _parses_as_dates(values)
        accepted = _COMPATIBLE.get(column["kind"], {column["kind"]})
        if missing < len(values) and kind not in accepted and not dates_as_text:
            problems.append(f"column {name!r} has dtype {values.dtype} ({kind}); the model expects "
                            f"{column['dtype']} ({column['kind']})")
            continue
        if missing and not column.get("nullable", True):
            problems.append(f"column {name!r} has {missing} missing value{'s' if missing != 1 else ''}; "
                            f"the training data had none")
        domain = column.get("categories")
        if domain is not None and kind in ("categorical", "boolean"):
            unseen = set(values.dropna().astype(str).unique()) - {str(v) for v in domain}
            if unseen:
                shown = ", ".join(sorted(unseen)[:5])
                notes.append(f"column {name!r} has {len(unseen)} value{'s' if len(unseen) != 1 else ''} never "
                             f"seen in training: {shown}")
    extra = [str(c) for c in frame.columns if c not in expected]
    if extra:
        notes.append(f"ignoring {len(extra)} column{'s' if len(extra) != 1 else ''} not in the schema: "
                     f"{', '.join(extra[:10])}")
    return problems, notes


def _parses_as_dates(values: pandas.Series) -> bool:
    import pandas as pd

    present = values.dropna()
    try:
        return bool(pd.to_datetime(present, errors="coerce").notna().all())
    except (TypeError, ValueError):
        return False


def conform(frame: pandas.DataFrame, columns: Sequence[Mapping[str, Any]], *, what: str = "the data"
            ) -> pandas.DataFrame:
    """``frame`` reduced to the schema's ``columns`` in their order (dates parsed from text where
    the schema has dates); :class:`SchemaMismatch` listing every problem, each naming its column."""
    import pandas as pd

    problems, _ = check_frame(frame, columns)
    if problems:
        raise SchemaMismatch(f"{what} does not match the package's schema: {'; '.join(problems)}", problems)
    out = frame[[c["name"] for c in columns]]
    for column in columns:
        if column["kind"] == "datetime" and not pd.api.types.is_datetime64_any_dtype(out[column["name"]]):
            out = out.assign(**{column["name"]: pd.to_datetime(out[column["name"]])})
    return out


def bind(table: pandas.DataFrame, schema: Mapping[str, Any]) -> dict[str, Any]:
    """Fresh data as the frames the notebook's data stage produced, by name (``schema["data"]``):
    the whole table under one name, or its input columns and its target under two."""
    data = schema.get("data")
    if not data:
        raise PackageError("this package records no data stage, so fresh data cannot be bound; export it again")
    frame = conform(table, data["columns"], what="the fresh data")
    binding = data["binding"]
    if binding["mode"] == "frame":
        return {binding["frame"]: frame}
    target = schema["target"]
    return {binding["X"]: frame.drop(columns=[target]), binding["y"]: frame[target]}


def predict(package: str | os.PathLike, frame: pandas.DataFrame, *, model: Any = None) -> pandas.DataFrame:
    """Predictions of the package's model for the rows of ``frame`` (checked against the model's
    input columns in schema.json first): a ``prediction`` column, plus ``probability_<class>``
    columns when the model gives probabilities."""
    import pandas as pd

    folder = package_dir(package)
    model = load_model(folder) if model is None else model
    schema = read_schema(folder)
    inputs = conform(frame, schema["input"]["columns"], what="the input")
    out = pd.DataFrame({"prediction": model.predict(inputs)}, index=frame.index)
    if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
        try:
            proba = model.predict_proba(inputs)
        except Exception:  # e.g. SVC(probability=False) exposes the method but cannot answer
            proba = None
        if proba is not None:
            for i, label in enumerate(model.classes_):
                out[f"probability_{label}"] = proba[:, i]
    return out


# -- retrain.py -----------------------------------------------------------------------------------


def load_script(package: str | os.PathLike) -> types.ModuleType:
    """The package's retrain.py as a module (its ``prepare``, ``notebook_data``, ``DATA_FRAMES``...),
    without running its ``__main__`` block and without writing ``__pycache__`` into the package."""
    path = package_dir(package) / SCRIPT_FILE
    module = types.ModuleType(f"mlops_nb_package_{abs(hash(str(path)))}")
    module.__file__ = str(path)
    source = path.read_text(encoding="utf-8")
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - the package's own script
    return module


Prepare = Callable[[dict[str, Any]], tuple[Any, Any]]
NotebookData = Callable[[], dict[str, Any]]


def main(script_file: str | os.PathLike, *, prepare: Prepare, notebook_data: NotebookData | None = None,
         argv: Sequence[str] | None = None) -> int:
    """What an exported ``retrain.py`` runs: the retraining runtime on the package version the script
    belongs to (:func:`mlops_nb.deploy.retrain.run_package`). Returns the exit status."""
    from mlops_nb.deploy.retrain import run_package

    folder = Path(script_file).resolve().parent
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_package(folder, prepare=prepare, notebook_data=notebook_data, argv=argv)


@contextlib.contextmanager
def working_dir(path: str | os.PathLike):
    """Run a block from folder ``path`` (the notebook's), then come back: retrain.py runs the
    notebook's data step this way, so its relative paths mean what they meant in the notebook."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield Path(path)
    finally:
        os.chdir(before)


def _shape(frames: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {getattr(f, 'shape', ('?',))[0]} rows" for name, f in frames.items())
