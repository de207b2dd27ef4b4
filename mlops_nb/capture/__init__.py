"""What a cell produced: Python objects from a notebook namespace -> JSON-safe records.

Pure functions only. Nothing here opens the store; the caller records what these functions
return. Importing this package is cheap: pandas, numpy, scikit-learn and skops are imported inside
the function that needs them, after a type check on the object that costs nothing (the dvclive
way), so a notebook that never touches pandas never pays for it.

The flow for one ``%%stage`` cell::

    before = snapshot(user_ns)          # pre_run_cell: ids and cheap version tokens, no hashing
    ...the cell runs...
    for name in changed(before, user_ns):
        record = describe(name, user_ns[name], profile=stage in ("data", "eda"))

Where things live (import the public names from here, ``mlops_nb.capture``):

``kinds``         cheap type checks: :func:`is_pandas`, :func:`is_estimator`, :func:`is_search`, :func:`class_path`;
``namespace``     the namespace diff: :func:`snapshot`, :func:`changed`;
``values``        :func:`json_safe` and :func:`scalar_metrics`;
``fingerprints``  :func:`fingerprint`, the content hash of a DataFrame or Series;
``frames``        :func:`describe_dataframe`, :func:`profile_dataframe`, :func:`column_kind`;
``estimators``    :func:`describe_estimator`, :func:`describe_search`, :func:`flat_params`;
``skops``         :func:`dump_model` and :func:`untrusted_reason` (can the model file be loaded safely).
"""

from __future__ import annotations

from mlops_nb.capture.estimators import (
    MAX_CANDIDATES,
    RUNTIME_PARAMS,
    describe_estimator,
    describe_search,
    flat_params,
)
from mlops_nb.capture.fingerprints import fingerprint
from mlops_nb.capture.frames import (
    HISTOGRAM_BINS,
    MAX_PROFILE_CELLS,
    PROFILE_SAMPLE_ROWS,
    QUANTILES,
    TOP_VALUES,
    column_kind,
    describe_dataframe,
    profile_dataframe,
)
from mlops_nb.capture.kinds import class_path, is_estimator, is_pandas, is_search
from mlops_nb.capture.namespace import IGNORED_NAMES, changed, snapshot
from mlops_nb.capture.skops import dump_model, untrusted_reason
from mlops_nb.capture.values import MAX_ITEMS, MAX_REPR, json_safe, one_line, scalar_metrics

__all__ = [
    "HISTOGRAM_BINS",
    "IGNORED_NAMES",
    "MAX_CANDIDATES",
    "MAX_ITEMS",
    "MAX_PROFILE_CELLS",
    "MAX_REPR",
    "PROFILE_SAMPLE_ROWS",
    "QUANTILES",
    "RUNTIME_PARAMS",
    "TOP_VALUES",
    "changed",
    "class_path",
    "column_kind",
    "describe",
    "describe_dataframe",
    "describe_estimator",
    "describe_search",
    "dump_model",
    "fingerprint",
    "flat_params",
    "is_estimator",
    "is_pandas",
    "is_search",
    "json_safe",
    "profile_dataframe",
    "scalar_metrics",
    "snapshot",
    "untrusted_reason",
]


def describe(name: str, obj: object, *, profile: bool = False) -> dict | None:
    """Describe whatever ``obj`` is, or return ``None`` when it is nothing mlops-nb records.

    Tries, in order: a fitted hyperparameter search (:func:`describe_search`; a search is also
    an estimator, so it comes first), a fitted estimator (:func:`describe_estimator`), a
    DataFrame or Series (:func:`describe_dataframe`, profiled when ``profile``). Never raises:
    if describing fails, returns ``{"kind": "skipped", "name", "reason"}`` with a one-line reason.
    """
    try:
        if is_estimator(obj):
            if is_search(obj):
                return describe_search(name, obj)
            return describe_estimator(name, obj)
        if is_pandas(obj):
            return describe_dataframe(name, obj, profile=profile)
        return None
    except Exception as exc:
        return {"kind": "skipped", "name": name, "reason": one_line(exc)}
