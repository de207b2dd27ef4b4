"""Rows sent to a package for prediction: raw rows (as the notebook's data stage produced them,
without the target) or rows of the model's input, told apart by their columns, read from CSV,
Parquet or JSON and coerced to the dtypes schema.json recorded before they are checked.

Text formats lose dtypes: a CSV or JSON reader makes the categories ``"1"``, ``"2"``, ``"3"`` int64.
Here a column the schema records as text is read as text, and numbers, booleans and dates are
parsed from text only where the schema says so; a value that does not parse is left for the schema
check to name."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlops_nb.errors import BadData, DataNotFound, PackageError, SchemaMismatch

if TYPE_CHECKING:
    import pandas

INPUTS = ("auto", "raw", "model")
_TEXT_KINDS = ("categorical",)


def schema_columns(schema: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """The schema's columns of ``kind``: ``raw`` rows or the ``model``'s input."""
    section = schema.get("raw") if kind == "raw" else schema.get("input")
    return list((section or {}).get("columns") or [])


def detect(columns: Sequence[Any], schema: Mapping[str, Any], wanted: str = "auto") -> str:
    """``raw`` or ``model``: which rows ``columns`` belong to. With ``auto``: the rows whose columns
    are all there; when both are, model input only if it has columns raw rows lack (features.py
    added them), else raw. :class:`SchemaMismatch` naming the missing columns when neither fits."""
    if wanted not in INPUTS:
        raise SchemaMismatch(f"--input {wanted}: use raw, model or auto", [])
    has_raw = bool(schema.get("raw"))
    if wanted == "raw" and not has_raw:
        raise SchemaMismatch("this package takes only the model's input (it has no features.py): "
                             "send rows with the model's input columns, or export it again", [])
    if wanted != "auto":
        return wanted
    present = {str(c) for c in columns}
    raw = [c["name"] for c in schema_columns(schema, "raw")]
    model = [c["name"] for c in schema_columns(schema, "model")]
    raw_missing = [c for c in raw if c not in present]
    model_missing = [c for c in model if c not in present]
    if has_raw and not raw_missing:
        return "model" if not model_missing and set(model) - set(raw) else "raw"
    if not model_missing:
        return "model"
    kind, missing = ("raw", raw_missing) if has_raw and len(raw_missing) <= len(model_missing) else (
        "model", model_missing)
    problems = [f"column {c!r} is missing" for c in missing]
    what = ("raw rows (the data stage's columns without the target, as in input_example.json)" if kind == "raw"
            else "the model's input")
    listed = SchemaMismatch.listing(problems)
    raise SchemaMismatch(f"the input does not match the package's schema for {what}: {listed}", problems)


def coerce(frame: pandas.DataFrame, columns: Sequence[Mapping[str, Any]]) -> pandas.DataFrame:
    """``frame`` with each schema column converted to its recorded dtype where that is lossless:
    text columns stay (or become) text, numbers and booleans parse from text, ints that arrived as
    floats become ints again. A column that does not convert is left as it is for the schema check."""
    import pandas as pd

    out = frame.copy(deep=False)  # columns are replaced, never written in place: the caller's frame stays as it was
    for column in columns:
        name, dtype = column["name"], str(column.get("dtype") or "")
        if name not in out.columns or not dtype:
            continue
        values = out[name]
        if str(values.dtype) == dtype:
            continue
        try:
            out[name] = _convert(pd, values, dtype, column.get("kind"))
        except (TypeError, ValueError, OverflowError):
            continue
    return out


def _convert(pd: Any, values: Any, dtype: str, kind: str | None) -> Any:
    import numpy as np

    present = values.notna()
    if kind in _TEXT_KINDS and dtype in ("object", "string", "str", "category"):
        def text(v: Any) -> Any:  # 1.0, read from a CSV column with gaps, is the category "1"
            if not isinstance(v, str) and pd.isna(v):
                return np.nan
            return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)

        converted = values.astype(object).map(text)
        return converted.astype(dtype) if dtype in ("string", "category", "str") else converted
    if kind == "boolean" and values.dtype == object:
        mapping = {"true": True, "false": False, "1": True, "0": False}
        mapped = values.map(lambda v: mapping.get(str(v).strip().lower(), v) if isinstance(v, str) else v)
        return mapped.astype(dtype) if present.all() else mapped
    if kind == "numeric":
        textual = values.dtype == object or isinstance(values.dtype, pd.StringDtype)  # pandas 3 reads text as str
        numbers = pd.to_numeric(values) if textual else values
        if dtype.startswith(("int", "uint")) and present.all() and (numbers % 1 == 0).all():
            return numbers.astype(dtype)
        return numbers.astype(dtype) if dtype.startswith("float") else numbers
    if kind == "datetime":
        return pd.to_datetime(values)
    return values


_FORMATS = {".csv": "CSV", ".tsv": "CSV", ".parquet": "Parquet", ".pq": "Parquet", ".json": "JSON",
            ".jsonl": "JSON lines", ".ndjson": "JSON lines"}


def check_input_file(path: str | os.PathLike) -> str:
    """The format of the file at ``path``: :class:`DataNotFound` (exit 66) when it is missing or
    empty, :class:`PackageError` (78) when its name says no format predict reads."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataNotFound(f"no data at {path}: no such file")
    ending = next((e for e in _FORMATS if path.lower().removesuffix(".gz").endswith(e)), None)
    if ending is None:
        raise PackageError(f"cannot read {path}: use .csv, .tsv, .parquet, .json or .jsonl files")
    if os.path.getsize(path) == 0:
        raise DataNotFound(f"{path} holds no rows (the file is empty)")
    return ending


def read_rows(path: str | os.PathLike, schema: Mapping[str, Any], wanted: str = "auto"
              ) -> tuple[pandas.DataFrame, str]:
    """The rows of ``path`` (CSV, TSV, Parquet, JSON records, JSON in pandas' or MLflow's ``split``
    orientation, JSON lines) coerced to the dtypes of the rows they are (``raw`` or ``model``,
    :func:`detect`), and which they are. :class:`DataNotFound` for a missing or empty file,
    :class:`BadData` for one that is not a table."""
    import pandas as pd

    path = os.fspath(path)
    ending = check_input_file(path)
    sep = "\t" if ending == ".tsv" else ","
    try:
        if _FORMATS[ending] == "CSV":
            frame = pd.read_csv(path, sep=sep)
        elif _FORMATS[ending] == "Parquet":
            frame = pd.read_parquet(path)
        else:
            frame = json_rows(path, lines=_FORMATS[ending] == "JSON lines")
    except BadData as exc:
        raise BadData(f"cannot read {path} as a table: {exc}", []) from None
    except (UnicodeDecodeError, ValueError, TypeError, OSError, KeyError, IndexError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise BadData(f"cannot read {path} as a table ({type(exc).__name__}: {first}); check that it is a "
                      f"{_FORMATS[ending]} file", []) from None
    if frame.empty:
        raise DataNotFound(f"{path} holds no rows")
    kind = detect(frame.columns, schema, wanted)
    if _FORMATS[ending] == "CSV":  # text columns the parser made numbers: read them again as text
        text = [c["name"] for c in schema_columns(schema, kind) if c.get("kind") in _TEXT_KINDS
                and c["name"] in frame.columns and frame[c["name"]].dtype.kind in "biuf"]
        if text:
            frame = pd.read_csv(path, sep=sep, dtype={c: str for c in text})
    return coerce(frame, schema_columns(schema, kind)), kind


def json_rows(path: str | os.PathLike, *, lines: bool = False) -> pandas.DataFrame:
    """A JSON file as rows, values as JSON has them (strings stay strings): records, a
    ``{"columns", "data"}`` split table, MLflow's ``dataframe_split`` / ``dataframe_records`` /
    ``instances`` / ``inputs`` payloads, or one record per line."""
    with open(path, encoding="utf-8") as f:
        document = [json.loads(line) for line in f if line.strip()] if lines else json.load(f)
    return json_frame(document)


def json_frame(document: Any) -> pandas.DataFrame:
    """Rows from a parsed JSON document (see :func:`json_rows`); :class:`BadData` for anything else."""
    import pandas as pd

    if isinstance(document, dict):
        for key in ("dataframe_split", "dataframe_records", "instances", "inputs"):
            if key in document:
                return json_frame(document[key])
        if "columns" in document and "data" in document:
            return pd.DataFrame(document["data"], columns=document["columns"])
        if document and all(isinstance(v, list) for v in document.values()):
            return pd.DataFrame(document)  # columns of values
        document = [document]
    if isinstance(document, list) and all(isinstance(r, dict) for r in document):
        return pd.DataFrame.from_records(document)
    raise BadData("the JSON holds no table of rows; give records such as [{\"a\": 1}, ...] or "
                  "{\"columns\": [...], \"data\": [[...]]}", [])


def example_json(frame: pandas.DataFrame) -> str:
    """``frame`` as input_example.json: ``{"columns", "data"}`` (pandas' ``split`` orientation) with
    every float written in full (pandas' own writer rounds to 10 digits), missing values as null,
    dates in ISO 8601."""
    from mlops_nb.format import json_safe

    return json.dumps({"columns": [str(c) for c in frame.columns],
                       "data": json_safe(frame.astype(object).values.tolist())}, allow_nan=False)
