"""What a cell produced: Python objects from a notebook namespace -> JSON-safe records.

Pure functions only. Nothing here opens the store; the caller (``tracking``) records what these
functions return. Importing this module is cheap: pandas, numpy, scikit-learn and skops are imported
inside the function that needs them, after a type check on the object that costs nothing (the
dvclive way), so a notebook that never touches pandas never pays for it.

The flow for one ``%%stage`` cell::

    before = snapshot(user_ns)          # pre_run_cell: ids and cheap version tokens, no hashing
    ...the cell runs...
    for name in changed(before, user_ns):
        record = describe(name, user_ns[name], profile=stage in ("data", "eda"))
"""

from __future__ import annotations

import datetime
import hashlib
import math
import numbers
import os
import sys
import types
from collections.abc import Iterable, Mapping

#: Names IPython puts in the user namespace that are never a cell's output.
IGNORED_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})

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

#: Sequences and arrays are cut to this many items by :func:`json_safe`.
MAX_ITEMS = 1000

#: ``repr`` fallbacks of :func:`json_safe` are cut to this many characters.
MAX_REPR = 200

#: A search with more candidates than this is recorded with its first ``MAX_CANDIDATES`` only.
MAX_CANDIDATES = 10_000

_FINGERPRINT_VERSION = b"mlops-nb fingerprint v1"
# Above this many bytes of numeric data, columns are hashed on several threads (hashlib releases
# the GIL on large buffers), which is what keeps a 1,000,000 x 20 float64 frame under 100 ms.
_PARALLEL_BYTES = 32 * 1024 * 1024


# --------------------------------------------------------------------------------------------
# Cheap type checks (never import anything)


def _has_class(obj: object, module_prefix: str, names: frozenset[str] | tuple[str, ...]) -> bool:
    """True if ``obj``'s type, or a base class, is ``module_prefix*.NAME`` for one of ``names``."""
    try:
        mro = type(obj).__mro__
    except Exception:
        return False
    return any(c.__name__ in names and str(getattr(c, "__module__", "")).startswith(module_prefix) for c in mro)


def _is_pandas(obj: object) -> bool:
    """A pandas DataFrame or Series (or a subclass of one)."""
    return "pandas" in sys.modules and _has_class(obj, "pandas", _PANDAS_NAMES)


_PANDAS_NAMES = frozenset({"DataFrame", "Series"})


def _is_estimator(obj: object) -> bool:
    """Duck-typed scikit-learn estimator instance: its *class* has ``fit`` and ``get_params``.

    Looking the attributes up on the type never runs an instance's ``__getattr__``, so a mock or
    proxy object that answers every attribute is not mistaken for an estimator.
    """
    if isinstance(obj, type):
        return False
    cls = type(obj)
    return callable(getattr(cls, "fit", None)) and callable(getattr(cls, "get_params", None))


def _class_path(obj_or_type: object) -> str:
    """``module.QualName`` of a class, or of an instance's class."""
    cls = obj_or_type if isinstance(obj_or_type, type) else type(obj_or_type)
    return f"{cls.__module__}.{cls.__qualname__}"


# --------------------------------------------------------------------------------------------
# Namespace diff


def _dataframe_token(obj: object) -> object:
    """A version token for a pandas object: shape, columns and the identity of its data blocks.

    Replacing, adding, dropping or retyping a column (``df["x"] = ...``, ``inplace=True``
    methods) changes the token. Writing single values into an existing array in place
    (``df.loc[0, "x"] = 1``) does not: detecting that needs hashing, which this must not do.
    """
    shape = obj.shape  # type: ignore[attr-defined]
    columns = tuple(obj.columns) if hasattr(type(obj), "columns") else getattr(obj, "name", None)
    try:  # internal, best effort: pandas has had ``_mgr.blocks`` since 1.0
        blocks = tuple(id(b.values) for b in obj._mgr.blocks)  # type: ignore[attr-defined]
    except Exception:
        blocks = None
    return (shape, columns, blocks)


def _estimator_token(est: object, depth: int = 0) -> object:
    """A version token for an estimator: identity of every public attribute value.

    Fitting sets or replaces attributes ending in ``_`` (``coef_``...), ``set_params`` replaces
    parameter values; both change the token. Nested estimators (pipeline steps, ``estimator=``)
    are followed a few levels down, since fitting a Pipeline fits its steps in place.
    """
    try:
        attrs = vars(est)
    except TypeError:
        return None
    token = []
    for key, value in attrs.items():
        if key.startswith("_"):
            continue
        if depth < 4 and _is_estimator(value):
            token.append((key, id(value), _estimator_token(value, depth + 1)))
        elif depth < 4 and isinstance(value, list | tuple):
            nested = tuple(
                _estimator_token(part, depth + 1)
                for item in value
                if isinstance(item, tuple)
                for part in item
                if _is_estimator(part)
            )
            token.append((key, id(value), nested))
        else:
            token.append((key, id(value)))
    return tuple(token)


# Types whose instances never need a version token: checked first, to keep snapshots cheap.
_PLAIN_TYPES = frozenset({int, float, complex, bool, str, bytes, list, tuple, dict, set, frozenset, type(None), type})


def _token(obj: object) -> object:
    if type(obj) in _PLAIN_TYPES or isinstance(obj, types.FunctionType):
        return None
    if _is_estimator(obj):
        return _estimator_token(obj)
    if _is_pandas(obj):
        return _dataframe_token(obj)
    return None


_IMPORTED_KINDS = (type, types.FunctionType, types.BuiltinFunctionType)


def _imported(obj: object) -> bool:
    """A class or function that an import bound: not something the cell produced."""
    return isinstance(obj, _IMPORTED_KINDS) and getattr(obj, "__module__", "__main__") != "__main__"


def _watched(namespace: Mapping[str, object]) -> Iterable[tuple[str, object]]:
    for name, obj in namespace.items():
        if name.startswith("_") or name in IGNORED_NAMES or isinstance(obj, types.ModuleType) or _imported(obj):
            continue
        yield name, obj


def snapshot(namespace: Mapping[str, object]) -> dict[str, tuple[int, object]]:
    """Record, for every variable of ``namespace``, its identity and a cheap version token.

    ``namespace`` is a notebook's user namespace (``shell.user_ns``). Names starting with ``_``,
    modules and IPython's ``In``, ``Out``, ``exit``, ``quit`` and ``get_ipython`` are left out.
    The value kept per name is ``(id(obj), token)``: the token is ``None`` for ordinary objects, and
    for DataFrames/Series and estimators a small tuple that changes when they are modified in
    place (see :func:`changed`). No data is hashed and no reference to the objects is kept, so
    this costs microseconds per name and does not keep memory alive.
    """
    result = {}
    for name, obj in _watched(namespace):
        try:
            token = _token(obj)
        except Exception:
            token = None
        result[name] = (id(obj), token)
    return result


def changed(before: Mapping[str, tuple[int, object]], namespace: Mapping[str, object]) -> list[str]:
    """Names of ``namespace`` created or changed since ``before`` was taken by :func:`snapshot`.

    A name counts as changed when it is new, when it was rebound to another object (``df =
    df.dropna()``), or when a DataFrame, Series or fitted estimator was modified in place: a
    column added, dropped, replaced or retyped; an estimator fitted again or given new params.
    Single values written into an existing column in place are not detected. Deleted names are
    not reported. The result is in the namespace's order.
    """
    now = snapshot(namespace)
    return [name for name, entry in now.items() if before.get(name) != entry]


# --------------------------------------------------------------------------------------------
# JSON-safe values


def json_safe(value: object) -> object:
    """Turn ``value`` into something ``json.dumps`` accepts, bounded in size.

    - ``None``, ``bool``, ``int`` and ``str`` are kept; floats too, except NaN and infinities,
      which become ``None`` (JSON has no such numbers);
    - numpy scalars become the matching Python scalar; numpy arrays become lists, cut to their
      first ``MAX_ITEMS`` items (arrays of more than one dimension are flattened first);
    - lists, tuples and sets become lists (sets sorted), dicts become dicts with string keys, both
      cut to ``MAX_ITEMS`` items;
    - an estimator becomes its class path (``sklearn.linear_model._logistic.LogisticRegression``),
      a class becomes its path, a function or other callable its qualified name
      (``__main__.<lambda>``);
    - dates and times become ISO strings, pandas' ``NA``/``NaT`` become ``None``;
    - anything else becomes its ``repr``, cut to ``MAX_REPR`` characters.
    Never raises.
    """
    try:
        return _json_safe(value, 0)
    except Exception:
        return _short_repr(value)


def _short_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<unrepresentable {type(value).__name__}>"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def _json_safe(value: object, depth: int) -> object:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if depth > 20:
        return _short_repr(value)
    cls = type(value)
    module = getattr(cls, "__module__", "") or ""
    if cls.__name__ in ("NAType", "NaTType") and module.startswith("pandas"):
        return None
    if module == "numpy" or module.startswith("numpy."):
        np = sys.modules.get("numpy")
        if np is not None:
            if isinstance(value, np.generic):
                return _json_safe(value.item(), depth + 1)
            if isinstance(value, np.ndarray):
                flat = value.ravel() if value.ndim != 1 else value
                return [_json_safe(v, depth + 1) for v in flat[:MAX_ITEMS].tolist()]
            if isinstance(value, np.dtype):
                return str(value)
    if isinstance(value, Mapping):
        out = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= MAX_ITEMS:
                break
            out[key if isinstance(key, str) else str(json_safe(key))] = _json_safe(item, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_json_safe(item, depth + 1) for item in value[:MAX_ITEMS]]
    if isinstance(value, set | frozenset):
        items = sorted(value, key=repr)[:MAX_ITEMS]
        return [_json_safe(item, depth + 1) for item in items]
    if _is_estimator(value):
        return _class_path(value)
    if isinstance(value, type):
        return _class_path(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if callable(value):
        return _callable_name(value)
    return _short_repr(value)


def _callable_name(func: object) -> str:
    """``module.qualname`` of a function; a ``functools.partial`` or callable object's repr."""
    qualname = getattr(func, "__qualname__", None)
    module = getattr(func, "__module__", None)
    if isinstance(qualname, str):
        return f"{module}.{qualname}" if module else qualname
    return _short_repr(func)


# --------------------------------------------------------------------------------------------
# DataFrames


def _feed(h: hashlib._Hash, data: bytes | str) -> None:
    """Feed a length-prefixed field, so that field boundaries cannot be confused."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def _dtype_desc(dtype: object) -> str:
    desc = str(dtype)
    if getattr(dtype, "name", None) == "category":
        # str() of a categorical dtype is just "category": add its categories and order.
        desc += f" ordered={dtype.ordered} " + _values_digest(dtype.categories).hex()  # type: ignore[attr-defined]
    return desc


def _values_digest(values: object) -> bytes:
    """SHA-256 of the values of a Series or Index (not its name or index)."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype  # type: ignore[attr-defined]
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        arr = values.to_numpy()  # type: ignore[attr-defined]
        if arr.dtype.kind in "mM":
            arr = arr.view("i8")
        arr = np.ascontiguousarray(arr)
        return hashlib.sha256(memoryview(arr.reshape(-1).view(np.uint8))).digest()
    try:
        hashed = pd.util.hash_pandas_object(values, index=False, categorize=True).to_numpy()
        return hashlib.sha256(memoryview(np.ascontiguousarray(hashed).view(np.uint8))).digest()
    except TypeError:  # unhashable values (lists, dicts) in an object column
        h = hashlib.sha256()
        for item in values:  # type: ignore[attr-defined]
            _feed(h, f"{type(item).__name__}:{item!r}")
        return h.digest()


def _index_digest(index: object) -> bytes:
    import pandas as pd

    h = hashlib.sha256()
    _feed(h, type(index).__name__)
    _feed(h, repr(list(index.names)))  # type: ignore[attr-defined]
    if isinstance(index, pd.RangeIndex):
        _feed(h, repr((index.start, index.stop, index.step)))
    elif isinstance(index, pd.MultiIndex):
        _feed(h, repr([_dtype_desc(level.dtype) for level in index.levels]))
        h.update(_values_digest(index.to_flat_index()))
    else:
        _feed(h, _dtype_desc(index.dtype))  # type: ignore[attr-defined]
        h.update(_values_digest(index))
    return h.digest()


def fingerprint(df: object) -> str:
    """Content fingerprint of a pandas DataFrame (or Series), as 64 hex characters (SHA-256).

    Covers the shape, the index (values, dtype, names), and for every column in order its name,
    dtype and values. Equal frames give equal fingerprints in any process; changing any value,
    column name, column order, dtype or index label gives a different one.

    Numeric, boolean and datetime columns are hashed from their raw bytes (so ``0.0`` and
    ``-0.0`` differ, as do NaNs with different bit patterns); other columns (strings,
    categoricals, nullable and object columns) through ``pandas.util.hash_pandas_object``.
    Large frames are hashed on a few threads: a 1,000,000 x 20 float64 frame takes well under
    150 ms on two cores.
    """
    import numpy as np
    import pandas as pd

    if isinstance(df, pd.Series):
        frame = df.to_frame(name=0)
        kind, label = "Series", repr(df.name)
    elif isinstance(df, pd.DataFrame):
        frame, kind, label = df, "DataFrame", ""
    else:
        raise TypeError(f"fingerprint() takes a pandas DataFrame or Series, not {type(df).__name__}")

    columns = [frame.iloc[:, i] for i in range(frame.shape[1])]
    numeric_bytes = sum(c.to_numpy().nbytes for c in columns if isinstance(c.dtype, np.dtype))
    workers = min(4, os.cpu_count() or 1, len(columns))
    if workers > 1 and numeric_bytes >= _PARALLEL_BYTES:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            digests = list(pool.map(_values_digest, columns))
    else:
        digests = [_values_digest(c) for c in columns]

    h = hashlib.sha256()
    _feed(h, _FINGERPRINT_VERSION)
    _feed(h, kind)
    _feed(h, label)
    _feed(h, repr(frame.shape))
    _feed(h, repr(list(frame.columns.names)))
    h.update(_index_digest(frame.index))
    for column, name, digest in zip(columns, frame.columns, digests, strict=True):
        _feed(h, repr(name))
        _feed(h, _dtype_desc(column.dtype))
        h.update(digest)
    return h.hexdigest()


def _column_kind(dtype: object) -> str:
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
    kind = _column_kind(dtype)
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
            entry["error"] = _one_line(exc)
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


# --------------------------------------------------------------------------------------------
# Estimators and searches


_STEP_LISTS = ("steps", "transformers", "transformer_list", "estimators")


def _estimator_spec(est: object, depth: int = 0) -> dict:
    """``{"class", "params"}`` of an estimator, plus ``"steps"`` for the estimators it nests."""
    params = est.get_params(deep=False)  # type: ignore[attr-defined]
    spec: dict = {"class": _class_path(est), "params": json_safe(params)}
    if depth >= 5:
        return spec
    steps = []
    for key, value in params.items():
        if _is_estimator(value):
            steps.append({"name": key, **_estimator_spec(value, depth + 1)})
        elif key in _STEP_LISTS and isinstance(value, list | tuple):
            for item in value:
                if not (isinstance(item, tuple) and len(item) >= 2):
                    continue
                step_name, step = item[0], item[1]
                entry: dict = {"name": json_safe(step_name)}
                if _is_estimator(step):
                    entry.update(_estimator_spec(step, depth + 1))
                else:  # "passthrough", "drop", None
                    entry["class"] = json_safe(step)
                if len(item) > 2:  # ColumnTransformer: (name, transformer, columns)
                    entry["columns"] = json_safe(item[2])
                steps.append(entry)
    if steps:
        spec["steps"] = steps
    return spec


#: Parameters that say how an estimator runs, not what it is: left out of a run's params.
RUNTIME_PARAMS = frozenset({"memory", "verbose", "n_jobs", "transform_input", "verbose_feature_names_out", "copy"})


def flat_params(est: object) -> dict[str, str | int | float | bool]:
    """An estimator's scalar hyperparameters, nested ones included (``clf__C``), for a run's params.

    Nested estimators, callables, None and runtime switches (``n_jobs``, ``verbose``, ...) are left
    out: they are in the capture record, and as columns of a runs table they are noise.
    """
    try:
        params = est.get_params(deep=True)  # type: ignore[attr-defined]
    except Exception:
        return {}
    flat = {}
    for key, value in params.items():
        if key.rpartition("__")[2] in RUNTIME_PARAMS or value is None:
            continue
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
            value = value.item()
        if isinstance(value, (str, int, float, bool)):
            flat[key] = value
    return flat


def _is_fitted(est: object) -> bool:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(est)
    except (NotFittedError, TypeError):
        return False
    return True


def describe_estimator(name: str, est: object) -> dict | None:
    """Describe a *fitted* scikit-learn estimator bound to ``name``; ``None`` if unfitted.

    Returns ``{"kind": "estimator", "name", "class", "params", "steps"?, "feature_names_in",
    "n_features_in"}``: ``class`` is the module and qualified name
    (``sklearn.linear_model._logistic.LogisticRegression``); ``params`` is
    ``get_params(deep=False)`` made JSON-safe, nested estimators appearing as their class path;
    ``steps`` (only when the estimator nests others: Pipeline steps, ColumnTransformer
    transformers, FeatureUnion parts, an ``estimator=`` parameter) lists each by ``name`` with its
    own ``class``, ``params`` and, recursively, ``steps`` (``columns`` too, for a
    ColumnTransformer). ``feature_names_in`` is the list of input column names when the estimator
    was fitted on a DataFrame with string column names, else ``None``.
    """
    if not _is_estimator(est) or not _is_fitted(est):
        return None
    names = getattr(est, "feature_names_in_", None)
    n_features = getattr(est, "n_features_in_", None)
    return {
        "kind": "estimator",
        "name": name,
        **_estimator_spec(est),
        "feature_names_in": None if names is None else [str(n) for n in names],
        "n_features_in": None if n_features is None else int(n_features),
    }


def _is_search(obj: object) -> bool:
    return _is_estimator(obj) and hasattr(obj, "cv_results_") and hasattr(obj, "best_params_")


def describe_search(name: str, search: object) -> dict | None:
    """Describe a fitted hyperparameter search (``GridSearchCV``, ``RandomizedSearchCV``, the
    ``Halving*`` ones: anything with ``cv_results_`` and ``best_params_``); ``None`` otherwise.

    Returns ``{"kind": "search", "name", "class", "scoring", "refit_metric", "best_params",
    "best_score", "best_index", "n_candidates", "candidates"}``; each candidate is ``{"params",
    "mean_test_score", "std_test_score", "rank_test_score"}`` (plus ``"iter"`` and
    ``"n_resources"`` for successive-halving searches), in ``cv_results_`` order. With several
    scorers the columns are those of the metric named by ``refit``. At most ``MAX_CANDIDATES``
    candidates are listed; ``n_candidates`` is the full count.
    """
    if not _is_search(search):
        return None
    results = search.cv_results_  # type: ignore[attr-defined]
    refit = getattr(search, "refit", True)
    metric = refit if isinstance(refit, str) else "score"
    if f"mean_test_{metric}" not in results:
        metric = "score"
    params = list(results["params"])

    def column(key: str) -> list:
        values = results.get(key)
        return [None] * len(params) if values is None else list(values)

    means = column(f"mean_test_{metric}")
    stds = column(f"std_test_{metric}")
    ranks = column(f"rank_test_{metric}")
    extras = {key: column(key) for key in ("iter", "n_resources") if key in results}
    candidates = []
    for i, candidate in enumerate(params[:MAX_CANDIDATES]):
        entry = {
            "params": json_safe(candidate),
            "mean_test_score": json_safe(means[i]),
            "std_test_score": json_safe(stds[i]),
            "rank_test_score": json_safe(ranks[i]),
        }
        entry.update({key: json_safe(values[i]) for key, values in extras.items()})
        candidates.append(entry)
    return {
        "kind": "search",
        "name": name,
        "class": _class_path(search),
        "scoring": json_safe(getattr(search, "scoring", None)),
        "refit_metric": None if metric == "score" else metric,
        "best_params": json_safe(search.best_params_),  # type: ignore[attr-defined]
        "best_score": json_safe(getattr(search, "best_score_", None)),
        "best_index": json_safe(getattr(search, "best_index_", None)),
        "n_candidates": len(params),
        "candidates": candidates,
    }


# --------------------------------------------------------------------------------------------
# Model artifacts


def dump_model(est: object) -> tuple[bytes, list[str]]:
    """Serialise ``est`` with skops; return the bytes and the types it cannot load by default.

    The second item is ``skops.io.get_untrusted_types(data=...)``: the types ``skops.io.loads``
    must be told to trust (e.g. ``sklearn.tree._tree.Tree``). Pass it to :func:`untrusted_reason`
    to learn whether some of them can never be loaded safely (lambdas, notebook definitions).
    """
    import skops.io as sio

    data = sio.dumps(est)
    return data, list(sio.get_untrusted_types(data=data))


def _find_callable_owner(est: object, module: str, func_name: str) -> str | None:
    """``Owner(param=<name>)`` for a callable parameter of ``est`` (or a nested step)."""
    try:
        params = est.get_params(deep=True)  # type: ignore[attr-defined]
    except Exception:
        return None
    for key, value in params.items():
        if getattr(value, "__module__", None) != module:
            continue
        if getattr(value, "__name__", None) != func_name or isinstance(value, type):
            continue
        owner_key, _, param = key.rpartition("__")
        owner = params.get(owner_key, est) if owner_key else est
        return f"{type(owner).__name__}({param}={func_name})"
    return None


def untrusted_reason(types: list[str], *, est: object | None = None) -> str | None:
    """Say why a model cannot be loaded safely later, or ``None`` when it can.

    ``types`` is the list :func:`dump_model` returned. Ordinary untrusted types (a tree's
    ``sklearn.tree._tree.Tree``, ``f_classif``) are fine: a loader can allow-list them. But a
    lambda, a function defined inside another function, or anything defined in the notebook
    itself (module ``__main__``) cannot be imported by a process that did not run the notebook,
    so the model would fail to load under cron. For those this returns one line naming each
    culprit and the fix. Given the estimator as ``est``, it also says where the function sits,
    e.g. ``FunctionTransformer(func=<lambda>)``.
    """
    found: list[str] = []
    lambdas = locals_ = notebook = 0
    for type_name in types:
        module, _, short = type_name.rpartition(".")
        if "<lambda>" in type_name:
            lambdas += 1
            what = "a lambda"
        elif "<locals>" in type_name:
            locals_ += 1
            what = "a function defined inside a function"
        elif type_name.startswith("__main__."):
            notebook += 1
            what = "a function or class defined in the notebook"
        else:
            continue
        where = _find_callable_owner(est, module, short) if est is not None else None
        found.append(f"{what} ({where or type_name})")
    if not found:
        return None
    it = "it" if len(found) == 1 else "them"
    if notebook and not (lambdas or locals_):
        fix = "move the definition to an importable module (a .py file next to the notebook)"
    elif lambdas == len(found):
        fix = "use a named function defined in an importable module"
    else:
        fix = "use named functions and classes defined in an importable module"
    return f"uses {' and '.join(found)}; skops cannot load {it} safely: {fix}"


# --------------------------------------------------------------------------------------------
# Metrics and dispatch


def scalar_metrics(names: Iterable[str], namespace: Mapping[str, object]) -> dict[str, float]:
    """Of ``names``, those bound in ``namespace`` to a finite real number, as floats.

    Python ints and floats and numpy integers and floats count; booleans, complex numbers,
    NaN, infinities and anything else (arrays, strings) do not. Used to log validation metrics
    from the variables a validation cell created.
    """
    out: dict[str, float] = {}
    for name in names:
        value = namespace.get(name)
        if isinstance(value, bool) or type(value).__name__ in ("bool_", "bool"):
            continue
        if isinstance(value, numbers.Real):
            number = float(value)
            if math.isfinite(number):
                out[name] = number
    return out


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return message if len(message) <= MAX_REPR else message[: MAX_REPR - 3] + "..."


def describe(name: str, obj: object, *, profile: bool = False) -> dict | None:
    """Describe whatever ``obj`` is, or return ``None`` when it is nothing mlops-nb records.

    Tries, in order: a fitted hyperparameter search (:func:`describe_search`; a search is also
    an estimator, so it comes first), a fitted estimator (:func:`describe_estimator`), a
    DataFrame or Series (:func:`describe_dataframe`, profiled when ``profile``). Never raises:
    if describing fails, returns ``{"kind": "skipped", "name", "reason"}`` with a one-line reason.
    """
    try:
        if _is_estimator(obj):
            if _is_search(obj):
                return describe_search(name, obj)
            return describe_estimator(name, obj)
        if _is_pandas(obj):
            return describe_dataframe(name, obj, profile=profile)
        return None
    except Exception as exc:
        return {"kind": "skipped", "name": name, "reason": _one_line(exc)}
