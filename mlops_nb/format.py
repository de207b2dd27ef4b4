"""How every front end writes values: durations, numbers, sizes, times, and JSON-safe data. Pure: stdlib only.

The status widget, ``%mlops status --text``, ``mlops-nb`` and the server all format through here, so a
duration reads the same in each; ``extension/src/format.ts`` mirrors these rules for the sidebar
(keep the two in step). Missing values (None, NaN, pandas' NA/NaT) format as an empty string: each
caller decides what an empty cell shows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

#: ``mlops-nb`` tables and ``show``: seconds matter there (runs are often shorter than a minute).
SECONDS_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Widgets: a run's start to the minute.
MINUTES_FORMAT = "%Y-%m-%d %H:%M"


def is_missing(value: Any) -> bool:
    """None, NaN and pandas' NA/NaT (without importing pandas)."""
    if value is None or type(value).__name__ == "NAType":  # pandas.NA refuses bool()
        return True
    try:
        return bool(value != value)  # NaN, NaT and NA compare unequal to themselves
    except (TypeError, ValueError):
        return False


def duration(seconds: Any) -> str:
    """``<0.01 s``, ``3.50 s``, ``12.3 s``, ``2m 05s``, ``1h 02m``; empty for missing or negative."""
    if is_missing(seconds):
        return ""
    seconds = float(seconds)
    if not math.isfinite(seconds) or seconds < 0:
        return ""
    if seconds < 0.005:
        return "<0.01 s"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def number(value: Any, digits: int = 4) -> str:
    """A metric, param or count: floats to ``digits`` significant digits, large integers with thousands
    separators, infinities as ``∞``; text as it is; empty for missing."""
    if is_missing(value):
        return ""
    if isinstance(value, bool):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # a numpy scalar
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.{digits}g}"
    return str(value)


def size(n_bytes: Any) -> str:
    """``512 B``, ``1.5 KB``, ``3.2 MB``, ``1.0 GB``; empty for missing."""
    if is_missing(n_bytes):
        return ""
    amount = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{int(amount)} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return ""  # pragma: no cover  (the loop returns at GB)


def as_datetime(value: Any) -> datetime | None:
    """An aware UTC datetime from epoch seconds, a datetime or a pandas Timestamp; None for missing."""
    if is_missing(value):
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime(warn=False)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(float(value), tz=timezone.utc)


def local_time(value: Any, fmt: str = SECONDS_FORMAT) -> str:
    """``value`` (epoch seconds or a datetime) in the machine's time zone; empty for missing."""
    moment = as_datetime(value)
    return "" if moment is None else moment.astimezone().strftime(fmt)


def short_time(value: Any) -> str:
    """Local ``Nov 26 16:13`` this year, ``2024-11-26`` another year; empty for missing."""
    moment = as_datetime(value)
    if moment is None:
        return ""
    local = moment.astimezone()
    if local.year != datetime.now().astimezone().year:
        return local.strftime("%Y-%m-%d")
    return local.strftime("%b %d %H:%M")


def iso(value: Any) -> str | None:
    """ISO 8601 in UTC (``2025-01-02T03:04:05.600000+00:00``); None for missing."""
    moment = as_datetime(value)
    return None if moment is None else moment.isoformat()


def json_safe(value: Any) -> Any:
    """``value`` as data ``json.dumps(allow_nan=False)`` accepts: NaN and infinities as None, numpy
    scalars as Python numbers, datetimes and pandas Timestamps (NaT as None) as ISO 8601, tuples and
    sets as lists, mapping keys as strings. Other objects are left for the caller's encoder."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):  # numpy's float64 too (a float subclass)
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime) or hasattr(value, "to_pydatetime"):
        return iso(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return json_safe(value.item())  # numpy scalar (a 0-d array too)
    if is_missing(value):
        return None  # pandas NA
    return value


def short_class(path: Any) -> str:
    """``sklearn.ensemble._forest.RandomForestClassifier`` -> ``RandomForestClassifier``."""
    return str(path or "").rsplit(".", 1)[-1]
