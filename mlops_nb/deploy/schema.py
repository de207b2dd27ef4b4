"""What data must look like for a package's model: schema.json's columns, built from frames at
export and checked against fresh frames at retraining and prediction time."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlops_nb.capture import column_kind, json_safe
from mlops_nb.deploy.layout import SCHEMA_FILE, read_json
from mlops_nb.errors import PackageError, SchemaMismatch

if TYPE_CHECKING:
    import pandas

#: Category domains longer than this are not recorded in schema.json.
MAX_CATEGORIES = 1_000
#: Column kinds a schema column accepts (``capture.column_kind`` of the fresh column's dtype).
_COMPATIBLE = {
    "numeric": {"numeric", "boolean"},
    "boolean": {"boolean", "numeric"},
    "categorical": {"categorical"},
    "datetime": {"datetime"},
    "other": {"numeric", "boolean", "categorical", "datetime", "other"},
}


def read_schema(package: str | os.PathLike) -> dict[str, Any]:
    return read_json(package, SCHEMA_FILE)


def columns(frame: Any) -> list[dict[str, Any]]:
    """Schema entries (name, dtype, kind, nullable, categories) of a DataFrame's (or Series') columns."""
    if getattr(frame, "ndim", 2) == 1:
        frame = frame.to_frame()
    out = []
    for name in frame.columns:
        values = frame[name]
        kind = column_kind(values.dtype)
        entry = {"name": str(name), "dtype": str(values.dtype), "kind": kind, "nullable": bool(values.isna().any())}
        if kind in ("categorical", "boolean"):
            unique = values.dropna().unique()
            if len(unique) <= MAX_CATEGORIES:
                entry["categories"] = sorted((json_safe(v) for v in unique), key=str)
        out.append(entry)
    return out


def check_frame(frame: pandas.DataFrame, columns: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """Compare ``frame`` with schema ``columns``; return ``(problems, notes)``, each naming its column.

    Problems: a missing column; a column whose dtype kind differs (text where numbers were, say);
    missing values in a column that had none in the training data. Notes (not errors): extra
    columns, which are dropped, and category values never seen in training.
    """
    from mlops_nb.capture import column_kind

    problems, notes = [], []
    expected = {c["name"] for c in columns}
    for column in columns:
        name = column["name"]
        if name not in frame.columns:
            problems.append(f"column {name!r} is missing (expected {column['dtype']})")
            continue
        values = frame[name]
        missing = int(values.isna().sum())
        kind = column_kind(values.dtype)
        dates_as_text = column["kind"] == "datetime" and kind == "categorical" and _parses_as_dates(values)
        accepted = _COMPATIBLE.get(column["kind"], {column["kind"]})
        if missing < len(values) and kind not in accepted and not dates_as_text:
            problems.append(f"column {name!r} has dtype {values.dtype} ({kind}); the model expects "
                            f"{column['dtype']} ({column['kind']})")
            continue
        infinite = _infinite(values) if kind == "numeric" else 0
        if infinite:
            problems.append(f"column {name!r} has {infinite} infinite value{'s' if infinite != 1 else ''} "
                            f"(inf); a model cannot use them: replace them or drop those rows")
        allowed = column.get("max_missing", 0.0)
        if missing and not column.get("nullable", True) and missing > allowed * len(values):
            problems.append(f"column {name!r} has {missing} missing value{'s' if missing != 1 else ''}; "
                            + ("the training data had none" if not allowed else
                               f"more than the {allowed:.0%} the pipeline's imputer is trusted with "
                               f"(\"max_missing\" in settings.json)"))
        domain = column.get("categories")
        if domain is not None and kind in ("categorical", "boolean"):
            unseen = set(values.dropna().astype(str).unique()) - {str(v) for v in domain}
            if unseen:
                shown = ", ".join(sorted(unseen)[:5])
                notes.append(f"column {name!r} has {len(unseen)} value{'s' if len(unseen) != 1 else ''} never "
                             f"seen in training: {shown}")
    extra = [str(c) for c in frame.columns if c not in expected]
    if extra:
        notes.append(f"ignoring {len(extra)} column{'s' if len(extra) != 1 else ''} not in the schema: "
                     f"{', '.join(extra[:10])}")
    return problems, notes


def imputes(pipeline: Mapping[str, Any]) -> bool:
    """Whether a pipeline.json document fills missing values itself: an imputer step anywhere in it,
    or an estimator that takes missing values natively (histogram gradient boosting)."""
    import json

    text = json.dumps(pipeline)
    return "Imputer" in text or "HistGradientBoosting" in text


def allow_missing(schema: dict[str, Any], rate: float, imputed: bool) -> dict[str, Any]:
    """``schema`` with each column that had no missing values in training accepting up to ``rate``
    of them when the pipeline ``imputed`` them (columns that had some accept them as before)."""
    if not imputed or rate <= 0:
        return schema

    def widen(columns: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [{**c, "max_missing": rate} for c in columns]

    out = dict(schema)
    out["frames"] = {name: {**frame, "columns": widen(frame.get("columns") or [])}
                     for name, frame in (schema.get("frames") or {}).items()}
    for key in ("data", "input"):
        if schema.get(key):
            out[key] = {**schema[key], "columns": widen(schema[key].get("columns") or [])}
    return out


def _infinite(values: pandas.Series) -> int:
    import numpy as np

    try:
        return int(np.isinf(values.to_numpy(dtype=float, na_value=np.nan)).sum())
    except (TypeError, ValueError):
        return 0


def _parses_as_dates(values: pandas.Series) -> bool:
    import pandas as pd

    present = values.dropna()
    try:
        return bool(pd.to_datetime(present, errors="coerce").notna().all())
    except (TypeError, ValueError):
        return False


def conform(frame: pandas.DataFrame, columns: Sequence[Mapping[str, Any]], *, what: str = "the data"
            ) -> pandas.DataFrame:
    """``frame`` reduced to the schema's ``columns`` in their order (dates parsed from text where
    the schema has dates); :class:`SchemaMismatch` listing every problem, each naming its column."""
    import pandas as pd

    problems, _ = check_frame(frame, columns)
    if problems:
        listed = SchemaMismatch.listing(problems)
        raise SchemaMismatch(f"{what} does not match the package's schema: {listed}", problems)
    out = frame[[c["name"] for c in columns]]
    for column in columns:
        if column["kind"] == "datetime" and not pd.api.types.is_datetime64_any_dtype(out[column["name"]]):
            out = out.assign(**{column["name"]: pd.to_datetime(out[column["name"]])})
    return out


def bind(table: pandas.DataFrame, schema: Mapping[str, Any]) -> dict[str, Any]:
    """Fresh data as the frames the notebook's data stage produced, by name (``schema["data"]``):
    the whole table under one name, or its input columns and its target under two."""
    data = schema.get("data")
    if not data:
        raise PackageError("this package records no data stage, so fresh data cannot be bound; export it again")
    frame = conform(table, data["columns"], what="the fresh data")
    binding = data["binding"]
    if binding["mode"] == "frame":
        return {binding["frame"]: frame}
    target = schema["target"]
    return {binding["X"]: frame.drop(columns=[target]), binding["y"]: frame[target]}


def bound_table(frames: Mapping[str, Any], schema: Mapping[str, Any]) -> Any:
    """The fresh data as one table (the shape the reference profile describes)."""
    import pandas as pd

    binding = (schema.get("data") or {}).get("binding")
    if binding is None:
        raise PackageError("this package records no data stage, so there is no table to check; export it again")
    if binding["mode"] == "frame":
        return frames[binding["frame"]]
    return pd.concat([frames[binding["X"]], frames[binding["y"]].rename(schema["target"])], axis=1)
