"""The reference side of drift: profile the training frame once, at export time.

:func:`reference_profile` reduces each column to what later checks need (decile edges and bin
fractions, a quantile-block sketch, category frequencies), so a retraining run never reads the
training data again; :func:`reference_sample` keeps the bounded sample the small-reference tests
run on. pandas is only touched through the frame passed in (and :func:`column_kind`'s dtype checks).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from mlops_nb.drift.columns import (
    as_float_array,
    bin_counts,
    block_means,
    category_counts,
    decile_edges,
    map_columns,
    sorted_finite,
)
from mlops_nb.drift.decide import DEFAULT_CONFIG
from mlops_nb.errors import InvalidValue

FORMAT = 1
"""Version of the profile layout written by :func:`reference_profile`."""

SKETCH_SIZE = 1000
"""Number of equal-probability blocks in a numeric column's quantile sketch."""

PARALLEL_ROWS = 20_000
"""Rows from which :func:`reference_profile` profiles columns in threads (below, threads cost more than they save)."""

TOP_CATEGORIES = 100
"""Categories kept by name in a categorical profile; the rest are pooled in :data:`OTHER`."""

OTHER = "__other__"
"""The pooled category: reference categories beyond the top ones, and fresh categories never profiled."""


def column_kind(dtype: Any) -> str:
    """``"numeric"`` (ints, floats, datetimes, timedeltas), ``"categorical"`` (bool, object,
    category, string) or ``"unsupported"`` (complex, anything else) for a pandas/numpy dtype."""
    from pandas import CategoricalDtype
    from pandas.api import types as ptypes

    if ptypes.is_bool_dtype(dtype):
        return "categorical"
    if ptypes.is_complex_dtype(dtype):
        return "unsupported"
    if ptypes.is_numeric_dtype(dtype) or ptypes.is_datetime64_any_dtype(dtype) or ptypes.is_timedelta64_dtype(dtype):
        return "numeric"
    if isinstance(dtype, CategoricalDtype) or ptypes.is_object_dtype(dtype) or ptypes.is_string_dtype(dtype):
        return "categorical"
    return "unsupported"


def reference_profile(
    frame: Any,
    *,
    columns: Iterable[str] | None = None,
    sample_rows: int = 10_000,
    seed: int = 0,
    threads: int | None = None,
) -> dict[str, Any]:
    """Profile the training frame once, for every later drift check. JSON-safe.

    ``frame`` is a pandas DataFrame; ``columns`` restricts the profile to those columns (default:
    all). Returns ``{"format", "n_rows", "sketch_size", "sample_rows", "seed", "columns"}`` where
    ``columns`` maps each column name (as ``str``) to :func:`numeric_profile` or
    :func:`categorical_profile` output, or ``{"kind": "unsupported", "dtype", "n"}`` for dtypes
    drift cannot compare (complex numbers, say), which :func:`dataset_drift` skips.

    Columns are profiled in ``threads`` threads (default: drift's ``threads`` setting) when the frame has
    at least :data:`PARALLEL_ROWS` rows.
    ``sample_rows`` and ``seed`` are recorded for :func:`reference_sample`, which draws the bounded
    sample the small-reference tests use; call it with the same arguments and store it beside the
    profile (``reference/sample.parquet``, say).
    """
    names = _resolve_columns(frame, columns)

    def profile(key: str) -> dict[str, Any]:
        series = frame[names[key]]
        kind = column_kind(series.dtype)
        if kind == "numeric":
            return numeric_profile(series)
        if kind == "categorical":
            return categorical_profile(series)
        return {"kind": "unsupported", "dtype": str(series.dtype), "n": len(series)}

    # columns in ``threads`` threads once sorting them outweighs starting threads (a retraining job
    # profiles each new version's 100,000 rows: ~0.1 s of sorting, halved on two cores)
    keys = list(names)
    threads = DEFAULT_CONFIG["threads"] if threads is None else threads
    profiles = dict(zip(keys, map_columns(profile, keys, threads if len(frame) >= PARALLEL_ROWS else 1), strict=True))
    return {
        "format": FORMAT,
        "n_rows": len(frame),
        "sketch_size": SKETCH_SIZE,
        "sample_rows": min(int(sample_rows), len(frame)),
        "seed": int(seed),
        "columns": profiles,
    }


def reference_sample(
    frame: Any, *, columns: Iterable[str] | None = None, sample_rows: int = 10_000, seed: int = 0
) -> Any:
    """A bounded random sample of the reference frame (all of it when it has at most ``sample_rows``).

    Rows are drawn without replacement with ``numpy.random.default_rng(seed)`` and kept in their
    original order; the index is reset. Column names become ``str`` as in the profile. The sample
    is what KS and chi-squared run on when the reference has at most ``small_sample`` rows, so
    keep ``sample_rows`` at least that large (the default 10,000 is).
    """
    names = _resolve_columns(frame, columns)
    sub = frame[list(names.values())]
    if len(sub) > sample_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(sub), size=int(sample_rows), replace=False))
        sub = sub.iloc[rows]
    sub = sub.reset_index(drop=True)
    sub.columns = list(names)
    return sub


def numeric_profile(values: Any, *, sketch_size: int = SKETCH_SIZE) -> dict[str, Any]:
    """Reference statistics of one numeric column (a Series or array; datetimes become epoch seconds).

    Returns ``{"kind": "numeric", "n", "missing", "mean", "std", "min", "max", "edges",
    "bin_fractions", "sketch"}``: ``n`` counts all rows and ``missing`` the NaN/NaT/infinite ones;
    the other statistics cover the finite values (``std`` with ``ddof=1``, as pandas).
    ``edges`` are the deciles (lower-value rule, so every edge is an observed value), deduplicated
    where ties make them repeat; ``bin_fractions`` is the share of finite values in each of the
    ``len(edges) + 1`` right-closed bins ``(-inf, e0], (e0, e1], ..., (e[-2], e[-1]], (e[-1], inf)``
    (the rule :func:`numeric_drift` bins fresh values with). ``sketch`` holds ``min(sketch_size, finite
    count)`` quantile-block means, sorted, for the Wasserstein approximation. All ``None`` / empty
    for a column with no finite values. Also used for the champion's scores (:func:`prediction_drift`).
    """
    s, missing = sorted_finite(as_float_array(values))
    n = s.size
    profile: dict[str, Any] = {"kind": "numeric", "n": n + missing, "missing": missing}
    if n == 0:
        profile.update(mean=None, std=None, min=None, max=None, edges=[], bin_fractions=[], sketch=[])
        return profile
    edges = decile_edges(s)
    sketch = block_means(s, min(int(sketch_size), n))
    mean = float(s.mean())
    std = float(np.std(s, ddof=1)) if n > 1 else 0.0
    profile.update(
        mean=mean,
        std=std,
        min=float(s[0]),
        max=float(s[-1]),
        edges=edges.tolist(),
        bin_fractions=(bin_counts(s, edges) / n).tolist(),
        sketch=sketch.tolist(),
    )
    return profile


def categorical_profile(values: Any, *, top: int = TOP_CATEGORIES) -> dict[str, Any]:
    """Reference statistics of one categorical column (object, category, string or bool).

    Values are compared by their ``str()`` so the profile is JSON-safe (``True`` -> ``"True"``).
    Returns ``{"kind": "categorical", "n", "missing", "distinct", "frequencies"}``:
    ``frequencies`` maps the ``top`` most frequent categories (ties by name) to their share of the
    non-missing values, plus :data:`OTHER` for the rest (0.0 when every category fits).
    """
    counts, missing, total = category_counts(values)
    valid = total - missing
    ordered = sorted(((k, c) for k, c in counts.items() if k != OTHER), key=lambda kv: (-kv[1], kv[0]))
    kept = ordered[:top]
    other = valid - sum(c for _, c in kept)
    frequencies = {k: c / valid for k, c in kept}
    frequencies[OTHER] = other / valid if valid else 0.0
    return {"kind": "categorical", "n": total, "missing": missing, "distinct": len(counts), "frequencies": frequencies}


def _resolve_columns(frame: Any, columns: Iterable[str] | None) -> dict[str, Any]:
    """``{str(name): frame label}`` for the requested columns, with a clear error for unknown ones."""
    labels = {str(c): c for c in frame.columns}
    if columns is None:
        return labels
    wanted = [str(c) for c in columns]
    unknown = [c for c in wanted if c not in labels]
    if unknown:
        raise InvalidValue(
            f"column(s) {', '.join(map(repr, unknown))} not in the frame; its columns: {', '.join(labels)}"
        )
    return {c: labels[c] for c in wanted}
