"""A scikit-learn pipeline's transformers run from their fitted attributes, for small requests.

Why: for one row, a ``ColumnTransformer`` of imputers, a scaler and a one-hot encoder spends about
4 ms in scikit-learn's input handling (each column converted from pandas, the dataframe library
detected, dtypes and finiteness checked, eight times over) around a few microseconds of arithmetic.
That was two thirds of a mixed-type package's single-row scoring, in the server and in ``predict``.
The arithmetic itself is elementwise: put a statistic where a value is missing, subtract a mean,
divide by a scale, look a category up. Done from the fitted attributes with the same numpy
operations, it gives the same bits, so the same predictions.

Only these are compiled, each in the configurations listed at its function: ``Pipeline``,
``ColumnTransformer`` (dense output), ``SimpleImputer``, ``StandardScaler``, ``OneHotEncoder``,
the identity ``FunctionTransformer`` a ``"passthrough"`` becomes, ``VarianceThreshold`` and the
univariate selectors (``SelectKBest`` and its kin). A pipeline with any other
transformer, or another configuration, is transformed by scikit-learn as before; the final
estimator always is scikit-learn's own ``predict``.

Two guards keep the answers scikit-learn's:

- **At compile**, probe rows (the package's example rows, and variations of one column at a time:
  every recorded category, an unknown one, a missing value, extreme numbers) go through both. The
  compiled transform is used only if, wherever scikit-learn answers, it gives the identical matrix
  (type, shape, dtype, memory layout and values) and the final estimator the identical output,
  and wherever scikit-learn raises, it declines.
- **Per request**, anything it was not built for (a value of another type, an infinite number, an
  unknown category where the encoder raises, a column dtype it does not convert) makes it decline,
  and scikit-learn transforms that request: errors and warnings stay scikit-learn's.

No maintained library does this: ONNX converters compute in float32 or reorder sums, and the pure
Python predictors are unmaintained and not bit-exact. ``MLOPS_NB_SKLEARN_TRANSFORM=1`` turns it off.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

#: Requests of up to this many rows use the compiled transform (its category look-ups are Python
#: loops; above this scikit-learn's vectorised ones win, and the validation cost is spread anyway).
FAST_ROWS = 2048
OFF_VAR = "MLOPS_NB_SKLEARN_TRANSFORM"

#: Numbers beyond this are declined: numpy and Python compare large integers with floats differently.
_EXACT_INT = 2**53

Step = Callable[[Any], Any]


class Decline(Exception):
    """This request is transformed by scikit-learn (raised inside a compiled step)."""


class Unsupported(Exception):
    """This estimator or configuration is not compiled (raised while compiling)."""


def compile_transform(steps: Sequence[Any], final: Any, probes: Sequence[Any]) -> Step | None:
    """A function from a model-input frame to the matrix ``steps``' transforms give (or None: let
    scikit-learn do it), proven on ``probes`` (frames of model input) against scikit-learn and
    ``final``'s methods; None when the steps are not all compiled or a probe disagrees."""
    if os.environ.get(OFF_VAR) == "1" or not steps:
        return None
    try:
        compiled = [_compile(step) for step in steps]
    except (Unsupported, AttributeError, TypeError, ValueError):  # an attribute another version lacks
        return None

    def transform(frame: Any) -> Any:
        if len(frame) > FAST_ROWS or not _default_output():
            return None
        try:
            out = frame
            for step in compiled:
                out = step(out)
        except Exception:  # Decline, or a defect, which must not fail a request scikit-learn can answer
            return None
        return out if hasattr(out, "dtype") else None

    return transform if _agrees(transform, steps, final, probes) else None


def _default_output() -> bool:
    from sklearn import get_config

    return get_config().get("transform_output", "default") == "default"


# --- the proof --------------------------------------------------------------------------------


def _agrees(transform: Step, steps: Sequence[Any], final: Any, probes: Sequence[Any]) -> bool:
    """Whether ``transform`` gives scikit-learn's matrices and outputs on every probe."""
    accepted = 0
    queue = list(probes)
    while queue:
        frame = queue.pop(0)
        try:
            expected: Any = frame
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                warnings.simplefilter("error", UserWarning)  # a probe scikit-learn warns about: ours must decline
                for step in steps:
                    expected = step.transform(expected)
        except Exception:
            expected = None
        got = transform(frame)
        if got is None and expected is None and len(frame) > 1:
            # one refused row refuses the batch: each row alone, so the others are still proven
            queue.extend(frame.iloc[[i]] for i in range(len(frame)))
            continue
        if got is None:
            continue  # declined: scikit-learn answers this one
        if expected is None or not _same_matrix(got, expected) or not _same_outputs(final, got, expected):
            return False
        accepted += 1
    return accepted > 0  # a transform that declines every probe would only cost time


def _same_matrix(a: Any, b: Any) -> bool:
    import numpy as np

    if type(a) is not type(b) or not isinstance(a, np.ndarray):
        return False
    if a.shape != b.shape or a.dtype != b.dtype or a.flags.c_contiguous != b.flags.c_contiguous \
            or a.flags.f_contiguous != b.flags.f_contiguous:
        return False
    if a.dtype.kind == "O":
        return all(_same_value(x, y) for x, y in zip(a.ravel().tolist(), b.ravel().tolist(), strict=True))
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _same_value(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return type(x) is type(y) and x == y


def _same_outputs(final: Any, got: Any, expected: Any) -> bool:
    import numpy as np

    for method in ("predict", "predict_proba", "decision_function"):
        function = getattr(final, method, None)
        if function is None:
            continue
        try:
            want = function(expected)
        except Exception:
            continue
        try:
            have = function(got)
        except Exception:
            return False
        if not np.array_equal(np.asarray(have), np.asarray(want)):
            return False
    return True


# --- compiling one estimator ------------------------------------------------------------------


def _compile(estimator: Any) -> Step:
    """The compiled step for a fitted transformer; Unsupported for anything not listed here."""
    if _output_configured(estimator):
        raise Unsupported
    name = type(estimator).__module__ + "." + type(estimator).__qualname__
    compilers = {
        "sklearn.pipeline.Pipeline": _pipeline,
        "sklearn.compose._column_transformer.ColumnTransformer": _column_transformer,
        "sklearn.impute._base.SimpleImputer": _simple_imputer,
        "sklearn.preprocessing._data.StandardScaler": _standard_scaler,
        "sklearn.preprocessing._encoders.OneHotEncoder": _one_hot_encoder,
        "sklearn.preprocessing._function_transformer.FunctionTransformer": _identity,
        **{f"sklearn.feature_selection._univariate_selection.{n}": _selector for n in _UNIVARIATE},
        "sklearn.feature_selection._variance_threshold.VarianceThreshold": _selector,
    }
    compiler = compilers.get(name)  # exact classes: a subclass may transform differently
    if compiler is None:
        raise Unsupported
    return compiler(estimator)


_UNIVARIATE = ("SelectKBest", "SelectPercentile", "SelectFpr", "SelectFdr", "SelectFwe", "GenericUnivariateSelect")


def _output_configured(estimator: Any) -> bool:
    """Whether ``set_output`` asked this estimator for anything but numpy output."""
    config = getattr(estimator, "_sklearn_output_config", None) or {}
    return config.get("transform", "default") != "default"


def _pipeline(pipeline: Any) -> Step:
    steps = [_compile(step) for _, step in pipeline.steps if step is not None and step != "passthrough"]

    def run(x: Any) -> Any:
        for step in steps:
            x = step(x)
        return x

    return run


def _identity(transformer: Any) -> Step:
    """The ``FunctionTransformer()`` that ``"passthrough"`` becomes: its input, unchanged (a
    ``ColumnTransformer``'s columns as ``np.hstack`` then reads them: numbers in their common dtype,
    text as objects)."""
    import numpy as np

    if transformer.func is not None or transformer.validate:
        raise Unsupported

    def run(x: Any) -> Any:
        if not isinstance(x, Block):
            return x
        if all(kind in "fi" for kind in x.kinds):
            return np.column_stack(x.values)
        return _objects(x, x.names, len(x.names))

    return run


def _selector(selector: Any) -> Step:
    """A fitted feature selector on a dense array of finite numbers: the kept columns, ``X[:, mask]``."""
    import numpy as np

    mask = np.asarray(selector.get_support())
    if mask.dtype != bool or not mask.any():
        raise Unsupported  # nothing kept: scikit-learn warns and returns no columns

    def run(x: Any) -> Any:
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != len(mask) or x.dtype.kind not in "fi" \
                or x.dtype.kind == "f" and not np.isfinite(x).all():
            raise Decline
        return x[:, mask]

    return run


def _column_transformer(ct: Any) -> Step:
    """Dense output (``sparse_output_`` False), fitted on a frame, no weights: each transformer on
    its columns (by name), the outputs side by side as ``np.hstack`` puts them."""
    import numpy as np

    if getattr(ct, "sparse_output_", True) or ct.transformer_weights or not hasattr(ct, "feature_names_in_"):
        raise Unsupported
    names = list(ct.feature_names_in_)
    parts: list[tuple[list[str], Step]] = []
    for name, transformer, columns in ct.transformers_:
        if isinstance(transformer, str):
            if transformer == "drop":
                continue
            raise Unsupported
        if isinstance(columns, str) or (hasattr(columns, "ndim") and columns.ndim == 0):
            raise Unsupported  # a scalar selection hands the transformer a Series
        indices = list(ct._transformer_to_input_indices.get(name, []))
        if not indices:
            continue  # an empty selection is skipped
        parts.append(([names[i] for i in indices], _compile(transformer)))
    needed = frozenset(names)

    def run(frame: Any) -> Any:
        if not hasattr(frame, "columns") or not needed.issubset(frame.columns):
            raise Decline
        converted: dict[str, tuple[str, Any]] = {}  # each column converted once, whichever parts use it
        outputs = []
        for columns, step in parts:
            for name in columns:
                if name not in converted:
                    converted[name] = _column(frame[name])
            out = step(Block(columns, [converted[name] for name in columns], len(frame)))
            if hasattr(out, "toarray"):
                out = out.toarray()
            outputs.append(out)
        if not outputs:
            raise Decline
        return np.hstack(outputs)

    return run


class Block:
    """The columns a ``ColumnTransformer`` hands one of its transformers, each converted once
    (:func:`_column`): what its ``_safe_indexing`` would make a frame of, without the frame."""

    def __init__(self, names: list[str], columns: list[tuple[str, Any]], rows: int) -> None:
        self.names = names
        self.kinds = [kind for kind, _ in columns]
        self.values = [values for _, values in columns]
        self.rows = rows


def _column(series: Any) -> tuple[str, Any]:
    """A frame's column as ``(kind, values)``: ``f`` float64 or ``i`` int64 numpy values, ``O`` an
    object array of ``str`` and NaN for text, ``x`` for anything else (declined where used)."""
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    if _wide_number(dtype):
        return dtype.kind, series.to_numpy()
    text = isinstance(dtype, pd.StringDtype) and dtype.na_value is not pd.NA  # pandas' str, missing as NaN
    if text or isinstance(dtype, np.dtype) and dtype.kind == "O":
        values = series.to_numpy(dtype=object, na_value=np.nan)
        if all(type(v) is str or _is_nan(v) for v in values.tolist()):
            return "O", values
    return "x", None


def _standard_scaler(scaler: Any) -> Step:
    """Dense float64 input: ``X -= mean_``, then ``X /= scale_``, in place on a copy, as scikit-learn does."""
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None
    if mean is not None and mean.dtype.name != "float64" or scale is not None and scale.dtype.name != "float64":
        raise Unsupported
    width = scaler.n_features_in_
    names = _fitted_names(scaler)

    def run(x: Any) -> Any:
        values = _floats(x, names, width)
        if mean is not None:
            values -= mean
        if scale is not None:
            values /= scale
        return values

    return run


def _simple_imputer(imputer: Any) -> Step:
    """``missing_values`` NaN, no indicator, no column without a statistic: each missing value
    replaced by its column's statistic (numbers as float64 for mean and median, or kept as given
    for most_frequent and constant; text as objects)."""
    import numpy as np

    missing = imputer.missing_values
    if not (isinstance(missing, float) and math.isnan(missing)) or imputer.add_indicator:
        raise Unsupported
    statistics = imputer.statistics_
    fitted = imputer._fit_dtype
    width = imputer.n_features_in_
    names = _fitted_names(imputer)
    if fitted.kind == "O":
        fills = statistics.tolist()
        if any(_is_nan(v) or v is None for v in fills):
            raise Unsupported

        def text(x: Any) -> Any:
            values = _objects(x, names, width)
            rows, cols = values.shape
            for j in range(cols):
                for i in range(rows):
                    if _is_nan(values[i, j]):
                        values[i, j] = fills[j]
            return values

        return text
    if fitted.kind != "f" or fitted.itemsize != 8 or statistics.dtype.kind != "f" or np.isnan(statistics).any():
        raise Unsupported
    to_float = imputer.strategy in ("mean", "median")

    def numbers(x: Any) -> Any:
        values = _floats(x, names, width) if to_float else _numbers(x, names, width)
        if values.dtype.kind == "f":
            holes = np.isnan(values)
            if holes.any():
                values[holes] = np.broadcast_to(statistics, values.shape)[holes]
        return values

    return numbers


def _one_hot_encoder(encoder: Any) -> Step:
    """No ``drop``, no infrequent categories, unknown categories ignored (or raised by
    scikit-learn: declined here), float output: each value's category found in ``categories_``."""
    import numpy as np

    if encoder.drop is not None or getattr(encoder, "_infrequent_enabled", False) \
            or encoder.handle_unknown not in ("ignore", "error", "infrequent_if_exist"):
        raise Unsupported
    dtype = np.dtype(encoder.dtype)
    if dtype.kind != "f":
        raise Unsupported
    sparse_out = bool(encoder.sparse_output)
    width = encoder.n_features_in_
    names = _fitted_names(encoder)
    ignore = encoder.handle_unknown != "error"
    lookups = []
    for categories in encoder.categories_:
        kind = categories.dtype.kind
        if kind not in "Oifu":
            raise Unsupported
        values = categories.tolist()
        nan_at = next((i for i, v in enumerate(values) if _is_nan(v)), None)
        known = {v: i for i, v in enumerate(values) if not _is_nan(v)}
        if kind == "O" and not all(type(v) is str for v in known):
            raise Unsupported
        if kind != "O" and any(abs(v) >= _EXACT_INT for v in known):
            raise Unsupported
        lookups.append((kind == "O", known, nan_at))
    offsets = np.cumsum([0, *(len(c) for c in encoder.categories_)]).tolist()

    def run(x: Any) -> Any:
        columns = _encoder_columns(x, names, width)
        rows = len(columns[0]) if columns else 0
        out = np.zeros((rows, offsets[-1]), dtype=dtype)
        for j, (values, (text, known, nan_at)) in enumerate(zip(columns, lookups, strict=True)):
            for i, value in enumerate(values):
                if text:
                    if type(value) is str:
                        at = known.get(value)
                    elif _is_nan(value):
                        at = nan_at
                    else:
                        raise Decline
                else:
                    if isinstance(value, bool) or not isinstance(value, (int, float)):
                        raise Decline
                    if _is_nan(value):
                        at = nan_at
                    elif math.isinf(value) or abs(value) >= _EXACT_INT:
                        raise Decline
                    else:
                        at = known.get(value)
                if at is None:
                    if not ignore:
                        raise Decline  # scikit-learn raises its own error for it
                    continue
                out[i, offsets[j] + at] = 1
        if sparse_out:
            return _Dense(out)
        return out

    return run


class _Dense:
    """A one-hot block scikit-learn would return sparse: only a dense ``ColumnTransformer`` takes
    it (it calls ``toarray``); anywhere else the compiled transform declines."""

    def __init__(self, values: Any) -> None:
        self.values = values

    def toarray(self) -> Any:
        return self.values


# --- the conversions scikit-learn's input checks make -----------------------------------------


def _fitted_names(estimator: Any) -> list[str] | None:
    names = getattr(estimator, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def _frame_columns(x: Any, names: list[str] | None, width: int) -> None:
    """A frame or block must carry the fitted column names in order (scikit-learn raises otherwise)."""
    given = x.names if isinstance(x, Block) else [str(c) for c in x.columns]
    if len(given) != width or names is None or given != names:
        raise Decline


def _floats(x: Any, names: list[str] | None, width: int) -> Any:
    """A new float64 array of ``x``'s numbers (int64 and float64 columns; NaN allowed, no infinity),
    laid out as scikit-learn's check gives it."""
    import numpy as np

    values = _numbers(x, names, width)
    return values if values.dtype.kind == "f" else values.astype(np.float64)


def _numbers(x: Any, names: list[str] | None, width: int) -> Any:
    """``x``'s numbers in a new array of their common dtype (float64 or int64), as a check without
    a dtype keeps them; no infinity."""
    import numpy as np

    if isinstance(x, Block):
        _frame_columns(x, names, width)
        if not all(kind in "fi" for kind in x.kinds):
            raise Decline
        values = np.column_stack(x.values)
    elif hasattr(x, "iloc"):
        _frame_columns(x, names, width)
        if not all(_wide_number(d) for d in x.dtypes.tolist()):
            raise Decline
        values = np.array(np.asarray(x), copy=True, order="K")  # pandas' own layout, as the check keeps it
    elif isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == width and _wide_number(x.dtype):
        values = np.array(x, copy=True, order="K")
    else:
        raise Decline
    if values.dtype.kind == "f" and np.isinf(values).any():
        raise Decline
    return values


def _objects(x: Any, names: list[str] | None, width: int) -> Any:
    """A new object array of ``x``'s text (each value a ``str`` or a missing NaN)."""
    import numpy as np

    if isinstance(x, Block):
        _frame_columns(x, names, width)
        if not all(kind == "O" for kind in x.kinds):
            raise Decline
        values = np.empty((x.rows, width), dtype=object)
        for j, column in enumerate(x.values):
            values[:, j] = column
        return values
    if hasattr(x, "iloc"):
        return _objects(_as_block(x), names, width)
    if isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == width and x.dtype.kind == "O":
        values = x.copy()
        if not all(type(v) is str or _is_nan(v) for v in values.ravel().tolist()):
            raise Decline
        return values
    raise Decline


def _encoder_columns(x: Any, names: list[str] | None, width: int) -> list[list[Any]]:
    """An encoder's input as one list of Python values per column (text as ``str`` or NaN,
    numbers as ``int`` or ``float``)."""
    import numpy as np

    if isinstance(x, Block):
        _frame_columns(x, names, width)
        if "x" in x.kinds:
            raise Decline
        return [values.tolist() for values in x.values]
    if isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == width and x.dtype.kind in "Ofi":
        return [x[:, j].tolist() for j in range(width)]
    if hasattr(x, "iloc"):
        return _encoder_columns(_as_block(x), names, width)
    raise Decline


def _as_block(frame: Any) -> Block:
    """A whole frame as a block (a pipeline whose first step takes the model's input itself)."""
    return Block([str(c) for c in frame.columns], [_column(frame[c]) for c in frame.columns], len(frame))


def _wide_number(dtype: Any) -> bool:
    """float64 or int64 (by kind and size: numpy's ``dtype.name`` is computed in Python, ~4 us a
    call, 0.1 ms for a 30-column frame)."""
    import numpy as np

    return isinstance(dtype, np.dtype) and dtype.kind in "fi" and dtype.itemsize == 8


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value
