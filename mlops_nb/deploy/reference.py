"""The drift reference of a package: ``reference/profile.json`` (the training table's profile and
the profile of the model's scores) and ``reference/sample.*`` (a sample of training rows)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
from typing import Any

from mlops_nb.deploy.layout import PROFILE_FILE, SAMPLE_ROWS, package_dir, read_json


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
