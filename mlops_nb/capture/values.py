"""Any Python value -> something ``json.dumps`` accepts, bounded in size; and the scalar metrics of a namespace."""

from __future__ import annotations

import datetime
import math
import numbers
import sys
from collections.abc import Iterable, Mapping

from mlops_nb.capture.kinds import class_path, is_estimator

#: Sequences and arrays are cut to this many items by :func:`json_safe`.
MAX_ITEMS = 1000

#: ``repr`` fallbacks of :func:`json_safe` are cut to this many characters.
MAX_REPR = 200


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
    if is_estimator(value):
        return class_path(value)
    if isinstance(value, type):
        return class_path(value)
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


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` of an exception, cut to ``MAX_REPR`` characters."""
    text = str(exc).strip().splitlines()
    message = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return message if len(message) <= MAX_REPR else message[: MAX_REPR - 3] + "..."


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
