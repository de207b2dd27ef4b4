"""Predictions of a package's model for new rows, checked against its input schema first."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_nb.deploy.layout import package_dir
from mlops_nb.deploy.model import load_model
from mlops_nb.deploy.schema import conform, read_schema
from mlops_nb.errors import PackageError

if TYPE_CHECKING:
    import pandas


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
