"""Values as the store holds them: params (native numbers, else JSON text), metrics (floats, NaN as
NULL) and the JSON of the store's JSON columns. Pure functions; the writer and the reads share them."""

from __future__ import annotations

import json
import math
from typing import Any

from mlops_nb.errors import InvalidValue

#: A param longer than this (as JSON text) belongs in an artifact.
MAX_PARAM_CHARS = 65536


def param_value(key: str, value: Any) -> Any:
    """A param as SQLite will hold it: str, int and float natively (so filters compare numbers as
    numbers), everything else JSON text. Unserialisable values raise InvalidValue."""
    if value is None or isinstance(value, (str, float)) or type(value) is int:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalar
        return param_value(key, value.item())
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    try:
        text = json.dumps(value, default=_json_default, allow_nan=True)
    except (TypeError, ValueError):
        raise InvalidValue(
            f"param {key!r} is a {type(value).__name__}, which cannot be stored; "
            f"log a string, number, bool, list or dict instead (for example str(value))"
        ) from None
    if len(text) > MAX_PARAM_CHARS:
        raise InvalidValue(f"param {key!r} is {len(text)} characters long; log it as an artifact instead")
    return text


def metric_value(key: str, value: Any) -> float | None:
    """A metric value as a float (None stands for NaN in SQLite); anything else is InvalidValue."""
    if isinstance(value, (bool, str, bytes)):
        raise InvalidValue(
            f"metric {key!r} must be a number, got {type(value).__name__} {value!r}; log a float or int"
        )
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float: refused, as the magic refuses its text
        raise InvalidValue(f"metric {key!r} is {len(str(value))} digits long, too large for a float; "
                           f"log it scaled (for example as a logarithm) or as a tag") from None
    except (TypeError, ValueError):
        raise InvalidValue(
            f"metric {key!r} must be a number, got {type(value).__name__}; log a float or int"
        ) from None
    return None if math.isnan(number) else number


def dumps(value: Any) -> str:
    """JSON text for the store's JSON columns (numpy values converted)."""
    return json.dumps(value, default=_json_default, allow_nan=True)


def nan(value: float | None) -> float:
    """A metric read back: NULL is NaN."""
    return math.nan if value is None else value


def _json_default(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(type(value).__name__)
