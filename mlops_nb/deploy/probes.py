"""Probe rows that prove a compiled transform (:mod:`mlops_nb.deploy.transforms`) against
scikit-learn: the package's example rows as model input, and rows that change one column of the
first at a time to each value that takes another path through a transformer (every recorded
category, an unknown one, a missing value, zero, negative, huge and tiny numbers)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas

UNKNOWN = "mlops-nb probe: a category never seen"
_FLOATS = (float("nan"), 0.0, -1.5, 1e300, -1e-300)
_INTS = (0, -7, 10**6)


def probe_frames(folder: Path, schema: Mapping[str, Any], to_model_input: Callable[[Any, str], Any]
                 ) -> list[pandas.DataFrame]:
    """The example rows as model input (all of them, then the first alone) and the one-column
    variations of the first (together in one frame); [] when the version has no usable example."""
    from mlops_nb.deploy.rows import read_rows, schema_columns

    path = folder / "input_example.json"
    if not path.is_file():
        return []
    try:
        rows, kind = read_rows(path, schema)
        example = to_model_input(rows, kind).reset_index(drop=True)
    except Exception:  # an example the version cannot score: no proof, so no compiled transform
        return []
    if example.empty:
        return []
    varied = variations(example.iloc[[0]].reset_index(drop=True), schema_columns(schema, "model"))
    return [example, example.iloc[[0]].reset_index(drop=True), *([varied] if varied is not None else [])]


def variations(first: pandas.DataFrame, columns: Sequence[Mapping[str, Any]]) -> pandas.DataFrame | None:
    """One row per probe value: ``first`` with a single column changed."""
    import pandas as pd

    rows = []
    for column in columns:
        name = column["name"]
        if name not in first.columns:
            continue
        dtype = first[name].dtype
        for value in _values(column, dtype):
            row = first.copy()
            try:
                row[name] = pd.array([value], dtype=dtype)
            except (TypeError, ValueError):  # a value this dtype cannot hold
                continue
            rows.append(row)
    return pd.concat(rows, ignore_index=True) if rows else None


def _values(column: Mapping[str, Any], dtype: Any) -> list[Any]:
    kind = getattr(dtype, "kind", "O")
    if kind == "f":
        return [*_FLOATS, *[float(c) for c in column.get("categories") or [] if _number(c)]]
    if kind in "iu":
        return [*_INTS, *[int(c) for c in column.get("categories") or [] if _number(c) and float(c).is_integer()]]
    if kind in "O" or str(dtype) in ("str", "string"):
        return [*[str(c) for c in column.get("categories") or []], UNKNOWN, None]
    return []


def _number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
