"""DataFrames and Series -> records: schema, fingerprint, and a bounded per-column profile."""

from __future__ import annotations

import datetime

from mlops_nb.capture.fingerprints import fingerprint
from mlops_nb.capture.values import json_safe, one_line

#: Frames with more rows than this are profiled on a deterministic random sample of this many rows.
PROFILE_SAMPLE_ROWS = 100_000

#: Frames with more cells (rows x columns) than this get a fingerprint and schema, but no profile.
MAX_PROFILE_CELLS = 50_000_000

#: Quantiles reported for every numeric column of a profile.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)

#: At most this many most frequent values are reported for a categorical column.
TOP_VALUES = 20

#: At most this many histogram bins for a numeric column.
HISTOGRAM_BINS = 20


def column_kind(dtype: object) -> str:
    """``"boolean"``, ``"numeric"``, ``"datetime"`` (timedeltas too), ``"categorical"`` (object, category,
    string) or ``"other"`` for a pandas/numpy dtype: the kinds of a profile and of a package's schema.

    Not :func:`mlops_nb.drift.column_kind`, which sorts dtypes by the drift statistic they take.
    """
    from pandas import CategoricalDtype
    from pandas.api import types as ptypes

    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if ptypes.is_numeric_dtype(dtype) and not ptypes.is_complex_dtype(dtype):
        return "numeric"
    if ptypes.is_datetime64_any_dtype(dtype) or ptypes.is_timedelta64_dtype(dtype):
        return "datetime"
    if isinstance(dtype, CategoricalDtype) or ptypes.is_object_dtype(dtype) or ptypes.is_string_dtype(dtype):
        return "categorical"
    return "other"


def _profile_column(column: object) -> dict:
    import numpy as np

    dtype = column.dtype  # type: ignore[attr-defined]
    kind = column_kind(dtype)
    count = int(column.count())  # type: ignore[attr-defined]
    entry: dict = {
        "kind": kind,
        "count": count,
        "missing": int(len(column) - count),  # type: ignore[arg-type]
    }
    present = column.dropna()  # type: ignore[attr-defined]
    if kind == "numeric":
        values = present.to_numpy(dtype="float64")
        finite = values[np.isfinite(values)]
        if len(finite) < len(values):
            entry["infinite"] = int(len(values) - len(finite))
        if len(finite):
            with np.errstate(all="ignore"):
                counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS)
                entry.update(
                    mean=json_safe(finite.mean()),
                    std=json_safe(finite.std(ddof=1)) if len(finite) > 1 else None,
                    min=json_safe(finite.min()),
                    max=json_safe(finite.max()),
                    quantiles={
                        str(q): json_safe(v) for q, v in zip(QUANTILES, np.quantile(finite, QUANTILES), strict=True)
                    },
                    histogram={"counts": counts.tolist(), "edges": json_safe(edges)},
                )
        else:
            entry.update(mean=None, std=None, min=None, max=None, quantiles=None, histogram=None)
    elif kind in ("categorical", "boolean"):
        counts = present.value_counts(dropna=True)
        entry["n_unique"] = int(len(counts))
        entry["top"] = [{"value": json_safe(value), "count": int(n)} for value, n in counts.head(TOP_VALUES).items()]
    elif kind == "datetime" and len(present):
        entry["min"] = _iso(present.min())
        entry["max"] = _iso(present.max())
    return entry


def _iso(value: object) -> str:
    """ISO 8601 for a timestamp, pandas' own text for a timedelta."""
    return value.isoformat() if isinstance(value, datetime.date) else str(value)


def profile_dataframe(df: object, *, sample_rows: int = PROFILE_SAMPLE_ROWS) -> dict:
    """Per-column statistics of a DataFrame (or Series), JSON-safe.

    Returns ``{"rows": rows profiled, "sampled": n or None, "columns": [...]}``: one entry per
    column with its ``name``, ``dtype``, ``kind`` (numeric, categorical, boolean, datetime or
    other), ``count`` (non-missing) and ``missing``; numeric columns add ``mean``, ``std``
    (``ddof=1``, as pandas), ``min``, ``max``, ``quantiles`` (0.05, 0.25, 0.5, 0.75, 0.95,
    linear interpolation as pandas) and a 20-bin ``histogram``, all over the finite values, with
    ``infinite`` counting the others when there are any; categorical, string, object and
    boolean columns add ``n_unique`` and ``top``, the at most 20 most frequent values with their
    counts; datetime and timedelta columns add ``min`` and ``max`` as text (ISO 8601 for timestamps).

    The cost is bounded: a frame of more than ``sample_rows`` rows is profiled on a random
    sample of ``sample_rows`` rows, drawn with a fixed seed (the same frame always gives the same
    profile), and ``"sampled"`` records that sample size. Counts, ``n_unique`` and frequencies
    then describe the sample, not the whole frame. A column whose statistics fail (an object
    column of lists, say) gets an ``"error"`` instead of statistics.
    """
    import numpy as np
    import pandas as pd

    frame = df.to_frame() if isinstance(df, pd.Series) else df
    n_rows = len(frame)  # type: ignore[arg-type]
    sampled = None
    if n_rows > sample_rows:
        rng = np.random.default_rng(0)
        rows = np.sort(rng.choice(n_rows, size=sample_rows, replace=False))
        frame = frame.iloc[rows]  # type: ignore[attr-defined]
        sampled = sample_rows
    columns = []
    for i, name in enumerate(frame.columns):  # type: ignore[attr-defined]
        column = frame.iloc[:, i]  # type: ignore[attr-defined]
        entry: dict = {"name": _column_name(name), "dtype": str(column.dtype)}
        try:
            entry.update(_profile_column(column))
        except Exception as exc:
            entry["error"] = one_line(exc)
        columns.append(entry)
    return {"rows": len(frame), "sampled": sampled, "columns": columns}  # type: ignore[arg-type]


def _column_name(name: object) -> str:
    return name if isinstance(name, str) else str(name)


def describe_dataframe(name: str, df: object, *, profile: bool) -> dict:
    """Describe a pandas DataFrame or Series bound to ``name`` in the notebook.

    Returns ``{"kind": "dataframe" | "series", "name", "rows", "columns": [{"name", "dtype"}...],
    "fingerprint", "profile"}``. Non-string column names are rendered with ``str()``; a Series is
    treated as a one-column frame (its column named after the Series, ``"0"`` when unnamed).

    ``profile=True`` (the data and eda stages) adds :func:`profile_dataframe`'s statistics; a
    frame of more than 100,000 rows is profiled on a deterministic random sample of 100,000 rows
    and the profile says ``"sampled": 100000``. A frame of more than ``MAX_PROFILE_CELLS``
    (50 million) cells keeps its fingerprint and schema but gets no profile: ``"profile"`` is
    ``None`` and ``"profile_skipped"`` says why. ``profile=False`` leaves ``"profile"`` ``None``.
    """
    import pandas as pd

    is_series = isinstance(df, pd.Series)
    frame = df.to_frame(name=0 if df.name is None else df.name) if is_series else df
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} is a {type(df).__name__}, not a pandas DataFrame or Series")
    record: dict = {
        "kind": "series" if is_series else "dataframe",
        "name": name,
        "rows": int(frame.shape[0]),
        "columns": [
            {"name": _column_name(col), "dtype": str(dtype)}
            for col, dtype in zip(frame.columns, frame.dtypes, strict=True)
        ],
        "fingerprint": fingerprint(df),
        "profile": None,
    }
    if profile:
        cells = frame.shape[0] * frame.shape[1]
        if cells > MAX_PROFILE_CELLS:
            record["profile_skipped"] = (
                f"{frame.shape[0]:,} x {frame.shape[1]:,} = {cells:,} cells is over the "
                f"{MAX_PROFILE_CELLS:,}-cell limit for profiling"
            )
        else:
            record["profile"] = profile_dataframe(frame)
    return record
