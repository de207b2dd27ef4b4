"""Predictions of a package's model for new rows: raw rows (as the notebook's data stage produced
them, without the target) go through the package's features.py to become the model's input; rows of
the model's input go straight to the model. Both are coerced to schema.json's dtypes and checked
against it first. :func:`load_model` (``mnb.load_model``) gives the estimator with this path as its
``predict`` and ``predict_proba``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_nb.deploy import model as package_model
from mlops_nb.deploy.layout import package_dir
from mlops_nb.deploy.scorer import Scorer, compile_version, features_module, scorer_for
from mlops_nb.errors import PackageError

if TYPE_CHECKING:
    import pandas

__all__ = ["PackageMethod", "check_output", "features_module", "load_model", "model_input", "predict"]


def model_input(package: str | os.PathLike, frame: pandas.DataFrame, *, input: str = "auto",
                verified: bool = False) -> pandas.DataFrame:
    """The model's input for ``frame``: raw rows through features.py, or model input as it is
    (``input`` ``raw``, ``model`` or ``auto``: told apart by the columns), coerced to schema.json's
    dtypes and checked against it. :class:`SchemaMismatch` names every column that does not fit."""
    from mlops_nb.deploy.schema import read_schema

    folder = package_dir(package)
    return Scorer(folder, None, read_schema(folder), features_module(folder, verified=verified)).model_input(
        frame, input)


def predict(package: str | os.PathLike, frame: pandas.DataFrame, *, model: Any = None,
            input: str = "auto") -> pandas.DataFrame:
    """Predictions of the package's model for the rows of ``frame``: raw rows or rows of the model's
    input (``input``: ``raw``, ``model``, or ``auto`` to tell by the columns), coerced and checked
    against schema.json first. A ``prediction`` column, plus ``probability_<class>`` columns when the
    model gives probabilities, on ``frame``'s index. ``package`` is a package root or one version's
    folder; ``model``, when given, is that package's model already loaded (and verified). The version
    is compiled once (:mod:`mlops_nb.deploy.scorer`) and kept for the next call with the same model."""
    folder = package_dir(package)
    if model is None:
        return compile_version(folder, package_model.load_model(folder), verified=True).predict(frame, input)
    attached = model.__dict__.get("predict") if hasattr(model, "__dict__") else None
    if isinstance(attached, PackageMethod) and attached.folder == str(folder):
        return attached.scorer().predict(frame, input)
    return scorer_for(folder, model, verified=True).predict(frame, input)


class PackageMethod:
    """``predict`` or ``predict_proba`` of a model from :func:`load_model`: a DataFrame with the
    columns of raw rows or of the model's input goes through the package's inference path (its
    compiled :class:`~mlops_nb.deploy.scorer.Scorer`); anything else (arrays, lists, other frames)
    goes to the estimator's own method unchanged."""

    def __init__(self, estimator: Any, folder: str, method: str, compiled: Scorer | None = None) -> None:
        self.estimator, self.folder, self.method = estimator, folder, method
        self._compiled = compiled

    def scorer(self) -> Scorer:
        if self._compiled is None:  # unpickled: compiled again (features.py was verified with the model)
            self._compiled = compile_version(Path(self.folder), self.estimator, verified=True)
        return self._compiled

    def original(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(type(self.estimator), self.method).__get__(self.estimator)(X, *args, **kwargs)

    def __call__(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        if hasattr(X, "columns") and hasattr(X, "iloc"):
            scorer = self.scorer()
            if scorer.fits(X.columns):  # a frame that has neither's columns goes on as it always did
                X = scorer.model_input(X)
        return self.original(X, *args, **kwargs)

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
    # compiled now, with the model just verified (features.py included): one inference path for both methods
    compiled = compile_version(folder, estimator, verified=verify_files) if verify_files else None
    for method in ("predict", "predict_proba"):
        if hasattr(type(estimator), method):
            try:
                getattr(estimator, method)
            except AttributeError:  # a pipeline whose last step lacks it
                continue
            setattr(estimator, method, PackageMethod(estimator, str(folder), method, compiled))
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
