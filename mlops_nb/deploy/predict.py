"""Predictions of a package's model for new rows: raw rows (as the notebook's data stage produced
them, without the target) go through the package's features.py to become the model's input; rows of
the model's input go straight to the model. Both are coerced to schema.json's dtypes and checked
against it first. :func:`load_model` (``mnb.load_model``) gives the estimator with this path as its
``predict`` and ``predict_proba``."""

from __future__ import annotations

import os
import threading
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_nb.deploy import model as package_model
from mlops_nb.deploy.layout import FEATURES_FILE, MANIFEST, package_dir
from mlops_nb.deploy.rows import coerce, detect, schema_columns
from mlops_nb.deploy.schema import conform, read_schema
from mlops_nb.deploy.script.load import load_script_file
from mlops_nb.deploy.verify import verify
from mlops_nb.errors import PackageError, SchemaMismatch

if TYPE_CHECKING:
    import pandas

_features: dict[tuple[str, bytes], types.ModuleType | None] = {}
_features_lock = threading.Lock()


def features_module(folder: Path, *, verified: bool = False) -> types.ModuleType | None:
    """The package version's features.py as a module (None when it has none), loaded once per version
    and manifest: the version is verified first unless the caller just did (``verified=True``)."""
    key = (str(folder), (folder / MANIFEST).read_bytes())
    with _features_lock:
        if key not in _features:
            if not verified:
                verify(folder)
            path = folder / FEATURES_FILE
            _features[key] = load_script_file(path) if path.is_file() else None
        return _features[key]


def model_input(package: str | os.PathLike, frame: pandas.DataFrame, *, input: str = "auto",
                verified: bool = False) -> pandas.DataFrame:
    """The model's input for ``frame``: raw rows through features.py, or model input as it is
    (``input`` ``raw``, ``model`` or ``auto``: told apart by the columns), coerced to schema.json's
    dtypes and checked against it. :class:`SchemaMismatch` names every column that does not fit."""
    folder = package_dir(package)
    schema = read_schema(folder)
    kind = detect(frame.columns, schema, input)
    columns = schema_columns(schema, kind)
    rows = conform(coerce(frame, columns), columns, what="the raw rows" if kind == "raw" else "the input")
    if kind == "raw":
        features = features_module(folder, verified=verified)
        if features is None:
            raise SchemaMismatch("this package has no features.py to make the model's input from raw rows; "
                                 "send rows of the model's input", [])
        made = features.model_input(rows.reset_index(drop=True))
        if len(made) != len(rows):
            raise SchemaMismatch(f"features.py kept {len(made)} of the {len(rows)} rows; send rows the notebook's "
                                 f"features cells keep", [])
        made.index = rows.index
        rows = made
    model_columns = schema_columns(schema, "model")
    return conform(coerce(rows, model_columns), model_columns, what="the model's input")


def predict(package: str | os.PathLike, frame: pandas.DataFrame, *, model: Any = None,
            input: str = "auto") -> pandas.DataFrame:
    """Predictions of the package's model for the rows of ``frame``: raw rows or rows of the model's
    input (``input``: ``raw``, ``model``, or ``auto`` to tell by the columns), coerced and checked
    against schema.json first. A ``prediction`` column, plus ``probability_<class>`` columns when the
    model gives probabilities, on ``frame``'s index. ``package`` is a package root or one version's
    folder; ``model``, when given, is that package's model already loaded (and verified)."""
    import pandas as pd

    folder = package_dir(package)
    estimator = package_model.load_model(folder) if model is None else model
    inputs = model_input(folder, frame, input=input, verified=model is None)
    out = pd.DataFrame({"prediction": _call(estimator, "predict", inputs)}, index=frame.index)
    if hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_"):
        try:
            proba = _call(estimator, "predict_proba", inputs)
        except Exception:  # e.g. SVC(probability=False) exposes the method but cannot answer
            proba = None
        if proba is not None:
            for i, label in enumerate(estimator.classes_):
                out[f"probability_{label}"] = proba[:, i]
    return out


def _call(estimator: Any, method: str, inputs: Any) -> Any:
    """The estimator's own ``method`` (not the package path :func:`load_model` puts in front of it)."""
    own = estimator.__dict__.get(method)
    return own.original(inputs) if isinstance(own, PackageMethod) else getattr(estimator, method)(inputs)


class PackageMethod:
    """``predict`` or ``predict_proba`` of a model from :func:`load_model`: a DataFrame with the
    columns of raw rows or of the model's input goes through the package's inference path
    (:func:`model_input`); anything else (arrays, lists, other frames) goes to the estimator's own
    method unchanged."""

    def __init__(self, estimator: Any, folder: str, method: str) -> None:
        self.estimator, self.folder, self.method = estimator, folder, method

    def original(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(type(self.estimator), self.method).__get__(self.estimator)(X, *args, **kwargs)

    def __call__(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        if hasattr(X, "columns") and hasattr(X, "iloc") and self._fits(X):
            X = model_input(self.folder, X, verified=True)
        return self.original(X, *args, **kwargs)

    def _fits(self, frame: Any) -> bool:
        """Whether ``frame`` has the columns of raw rows or of the model's input; a frame that has
        neither goes to the estimator as it always did (its own checks speak)."""
        try:
            detect(frame.columns, read_schema(self.folder))
        except SchemaMismatch:
            return False
        return True

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return PackageMethod, (self.estimator, self.folder, self.method)


def load_model(package: str | os.PathLike, *, extra_trusted: Any = (), verify_files: bool = True,
               public_key: str | os.PathLike | None = None) -> Any:
    """``mnb.load_model``: the fitted model of an exported package, verified and loaded safely
    (:func:`mlops_nb.deploy.model.load_model`: checksums, the store's record or signature, the
    allow-list of types). It is the estimator itself (same class, attributes and methods), except
    that its ``predict`` and ``predict_proba`` also take a DataFrame of raw rows, as the notebook's
    data stage produced them, and turn it into the model's input with the package's features.py
    (coercing both kinds of rows to schema.json's dtypes first). They return what the estimator's
    own methods return; :func:`predict` gives the table ``mlops-nb predict`` writes."""
    estimator = package_model.load_model(package, extra_trusted=extra_trusted, verify_files=verify_files,
                                         public_key=public_key)
    folder = package_dir(package)
    if verify_files:
        features_module(folder, verified=True)  # verified with the model: features.py is loaded now
    for method in ("predict", "predict_proba"):
        if hasattr(type(estimator), method):
            try:
                getattr(estimator, method)
            except AttributeError:  # a pipeline whose last step lacks it
                continue
            setattr(estimator, method, PackageMethod(estimator, str(folder), method))
    return estimator


def check_output(output: str | os.PathLike) -> Path:
    """``output`` when predictions may be written there; :class:`PackageError` (exit 78) for a path
    inside any package (a folder holding MANIFEST.json, or a package root with ``versions/``),
    followed through symlinks, or for a folder: only export, retrain, rollback and reseal write in a
    package."""
    from mlops_nb.deploy.layout import CURRENT, MANIFEST, SETTINGS_FILE, VERSIONS_DIR

    path = Path(output).expanduser()
    real = path.resolve()
    if real.is_dir():
        raise PackageError(f"the output {path} is a folder; give a file path such as {path / 'predictions.csv'}")
    for folder in real.parents:
        root = (folder / VERSIONS_DIR).is_dir() and any((folder / f).exists() for f in (CURRENT, SETTINGS_FILE))
        if (folder / MANIFEST).is_file() or root:
            raise PackageError(f"the output {path} is inside the package {folder}; predictions never write into a "
                               f"package (that could replace its model): write them elsewhere, e.g. -o predictions.csv")
    return path
