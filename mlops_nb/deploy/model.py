"""The model of a package: loaded with skops trusting only a fixed allow-list of types, and
rebuilt unfitted from pipeline.json for retraining.

The allow-list is written here, in code, and never read from a package (a model file that names
its own trusted types is how GHSA-w582-9x45-8mpx happened): a package that needs anything else is
refused, naming the type.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from mlops_nb.deploy.layout import MODEL_FILE, package_dir
from mlops_nb.deploy.skops_scan import import_skops_io
from mlops_nb.deploy.verify import verify
from mlops_nb.errors import PackageError, UntrustedTypes

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


#: How many times :func:`load_model` follows ``current`` again when the version it resolved was
#: pruned while it read it (each retry means a promotion happened meanwhile).
LOAD_RETRIES = 5


def load_model(package: str | os.PathLike, *, extra_trusted: Sequence[str] = (), verify_files: bool = True,
               public_key: str | os.PathLike | None = None) -> Any:
    """Load the fitted model of an exported package, safely.

    Verifies every checksum of MANIFEST.json first (:class:`ChecksumError` names any file that
    changed), then loads ``model.skops`` with skops trusting only :data:`TRUSTED_TYPES` plus
    ``extra_trusted`` (type names your own code vouches for; never taken from the package). A
    model needing any other type is refused with :class:`UntrustedTypes` naming it.

    Given a package root (or its ``current``), the version ``current`` points at is resolved once;
    when a promotion swaps ``current`` and prunes that version while it is being read (with
    ``keep_versions`` 1), the load starts again on the new ``current``.
    """
    for attempt in range(LOAD_RETRIES + 1):
        folder = package_dir(package)
        try:
            return _load(folder, extra_trusted, verify_files, public_key)
        except UntrustedTypes:
            raise
        except Exception:
            if attempt == LOAD_RETRIES or not _moved_on(package, folder):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _moved_on(package: str | os.PathLike, folder: Any) -> bool:
    """True when ``package`` now resolves to another version than ``folder`` (a promotion swapped
    ``current`` and may have pruned ``folder`` mid-read)."""
    try:
        return package_dir(package) != folder
    except Exception:
        return False


def _load(folder: Any, extra_trusted: Sequence[str], verify_files: bool,
          public_key: str | os.PathLike | None) -> Any:
    if verify_files:  # checksums, the store's record or the signature, and a pinned key
        verify(folder, public_key=public_key)
    sio = import_skops_io(folder)  # verified: its record of skops' estimator list may be used
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
    sio = import_skops_io()

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
