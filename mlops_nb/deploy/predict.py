"""Predictions of a package's model for new rows, checked against its input schema first."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mlops_nb.deploy.layout import package_dir
from mlops_nb.deploy.model import load_model
from mlops_nb.deploy.schema import conform, read_schema

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
