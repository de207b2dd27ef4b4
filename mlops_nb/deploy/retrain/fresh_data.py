"""The fresh data of a retraining job: read from ``--data`` (or the export's source, or the
notebook's own data step), bound to the data stage's frames, validated against schema.json, and
made into the model's X and y by retrain.py's ``prepare``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops_nb.deploy.schema import bind, bound_table, check_frame, conform
from mlops_nb.deploy.sources import describe_source, read_source
from mlops_nb.errors import DataNotFound, SchemaMismatch


@dataclass
class Fresh:
    """Fresh data: the ``table`` (the shape the reference describes), the ``frames`` bound to the
    data stage's names, its ``fingerprint``, and where it came from (``source``, passwords hidden)."""

    table: Any
    frames: dict[str, Any]
    fingerprint: str
    source: str


def read_fresh(schema: dict[str, Any], *, source: str | None, query: str | None,
               notebook_data: Callable[[], dict[str, Any]] | None, min_rows: int,
               step: Callable[[str, str], None]) -> Fresh:
    """Read and validate the fresh data, saying what was read through ``step("data", ...)``.
    :class:`DataNotFound` when there is none (or fewer than ``min_rows`` rows),
    :class:`SchemaMismatch` naming each column that does not match."""
    from mlops_nb.capture import fingerprint

    if source:
        table = read_source(source, query)
        where = describe_source(source)
        data_fp = fingerprint(table)
        step("data", f"read {len(table):,} rows x {table.shape[1]} columns from {where}")
        try:
            frames = bind(table, schema)
        except SchemaMismatch as exc:
            raise SchemaMismatch(f"{where}: {exc}", exc.problems) from None
        table = bound_table(frames, schema)
    else:
        if notebook_data is None:
            raise DataNotFound("no data source: pass --data SOURCE (the package was exported without one)")
        try:
            with contextlib.redirect_stdout(sys.stderr):  # what the cells print goes to the job's log
                frames = notebook_data()
        except FileNotFoundError as exc:
            raise DataNotFound(f"the notebook's data step found no data: {exc}") from None
        where = "the notebook's data step"
        problems = []
        for name, frame in frames.items():
            columns = (schema.get("frames", {}).get(name) or {}).get("columns")
            if columns:
                problems += check_frame(frame, columns)[0]
        if problems:
            raise SchemaMismatch(f"the notebook's data step: {SchemaMismatch.listing(problems)}", problems)
        table = bound_table(frames, schema)
        data_fp = fingerprint(table)
        step("data", f"ran the notebook's data step: {len(table):,} rows x {table.shape[1]} columns")
    if table is None or len(table) == 0:
        raise DataNotFound("the fresh data holds no rows")
    if len(table) < min_rows:
        raise DataNotFound(f"only {len(table)} rows of fresh data; retraining needs at least "
                           f"{min_rows} (\"min_rows\" in settings.json)")
    return Fresh(table, frames, data_fp, where)


def prepare_inputs(prepare: Callable[[dict[str, Any]], tuple[Any, Any]], frames: dict[str, Any],
                   schema: dict[str, Any]) -> tuple[Any, Any]:
    """The model's X (conformed to the schema's input columns) and y (a Series aligned with X)
    that retrain.py's ``prepare`` makes of ``frames``."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            X, y = prepare(dict(frames))
    except Exception as exc:
        raise RuntimeError(f"retrain.py's features/selection steps failed on the fresh data: "
                           f"{type(exc).__name__}: {exc}") from exc
    X = conform(X, schema["input"]["columns"], what="the prepared model input")
    if not hasattr(y, "isna") and len(y) == len(X):  # an array: a Series aligned with X
        import numpy as np
        import pandas as pd

        y = pd.Series(np.asarray(y).ravel(), index=X.index, name=schema.get("target"))
    if len(y) != len(X):
        raise SchemaMismatch(f"the prepared X has {len(X)} rows but y has {len(y)}", [])
    if hasattr(y, "isna") and bool(y.isna().any()):
        raise SchemaMismatch(f"the target has {int(y.isna().sum())} missing values", [])
    return X, y
