"""MLflow's scoring protocol, so that clients written for ``mlflow models serve`` work unchanged:
a request body becomes a DataFrame, predictions become ``{"predictions": [...]}``.

As in ``mlflow/pyfunc/scoring_server`` (MLflow 3): ``application/json`` with exactly one of
``dataframe_split`` (pandas' split orient: ``columns``, ``data``, optional ``index``),
``dataframe_records`` (a list of row objects), ``instances`` (a list of row objects, or of rows
as lists) or ``inputs`` (an object of columns, or a list like ``instances``), plus an optional
``params`` object; or ``text/csv`` with a header line. Rows given as bare lists take the model's
input columns in schema.json's order. The answer is ``{"predictions": [label, ...]}`` (what an
MLflow scikit-learn model answers); ``"params": {"probabilities": true}`` asks for one record per
row instead, with the ``probability_<class>`` columns. A request that cannot be read is a
:class:`BadRequest`, answered 400 with MLflow's ``{"error_code": "BAD_REQUEST", "message"}``.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_COLUMN = re.compile(r"column '((?:[^'\\]|\\.)*)'")


class BadRequest(Exception):  # noqa: N818 - an answer, not a defect
    """A request the server answers 400: ``message`` says what is wrong, ``columns`` names the
    columns concerned (empty when the body itself cannot be read)."""

    def __init__(self, message: str, columns: Sequence[str] = (), status: int = 400):
        super().__init__(message)
        self.message = message
        self.columns = list(columns)
        self.status = status

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error_code": "BAD_REQUEST", "message": self.message}
        if self.columns:
            out["columns"] = self.columns
        return out


def columns_named(problems: Sequence[str]) -> list[str]:
    """The column names a schema check's problem lines quote (``column 'age' is missing``)."""
    names = []
    for line in problems:
        for name in _COLUMN.findall(line):
            if name not in names:
                names.append(name)
    return names


def parse(body: bytes, content_type: str | None, input_columns: Sequence[str],
          floats: frozenset[str] = frozenset()) -> tuple[pandas.DataFrame, dict]:
    """The DataFrame and the ``params`` of a request body; :class:`BadRequest` for anything else.
    ``floats`` names the columns the schema records as float64: a table of those alone, all its
    values numbers, is built as one float64 block (what pandas' own inference and the coercion to
    the schema's dtypes would give, at a tenth of the cost)."""
    import pandas as pd

    mime, charset = _media(content_type)
    if charset not in ("utf-8", "utf8"):
        raise BadRequest("the scoring server only reads UTF-8", status=415)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 ({exc})") from None
    if mime == "text/csv":
        try:
            return pd.read_csv(io.StringIO(text)), {}
        except (ValueError, pd.errors.ParserError) as exc:
            raise BadRequest(f"the body cannot be read as CSV with a header line ({exc})") from None
    if mime != "application/json":
        raise BadRequest(f"content type {mime!r} is not served; send application/json or text/csv", status=415)
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise BadRequest(f"the body must be a JSON object with exactly one of {', '.join(FORMATS)}")
    given = _formats(document)
    if len(given) != 1:
        raise BadRequest(f"the body must have exactly one of {', '.join(FORMATS)}; it has "
                         f"{', '.join(given) if given else 'none'} (keys: {', '.join(map(str, document))})")
    params = document.get("params") or {}
    if not isinstance(params, dict):
        raise BadRequest("params must be a JSON object")
    return _frame(given[0], document[given[0]], input_columns, floats), params


def _media(content_type: str | None) -> tuple[str, str]:
    """The media type and charset of a ``Content-Type`` header (JSON in UTF-8 when there is none)."""
    mime, _, options = (content_type or "application/json").partition(";")
    return mime.strip().lower(), options.partition("charset=")[2].strip().lower() or "utf-8"


def _formats(document: dict) -> list[str]:
    """Which of MLflow's payload keys a JSON body has (exactly one is valid)."""
    return [key for key in FORMATS if key in document]


def _frame(kind: str, value: Any, input_columns: Sequence[str], floats: frozenset[str] = frozenset()
           ) -> pandas.DataFrame:
    import pandas as pd

    try:
        if kind == "dataframe_split":
            if not isinstance(value, dict) or "data" not in value:
                raise BadRequest("dataframe_split must be an object with columns and data (pandas' split orient)")
            columns = value.get("columns") or list(input_columns)
            index = value.get("index")
            block = _float_block(value["data"], columns, floats) if index is None else None
            if block is not None:
                return block
            return pd.DataFrame(value["data"], columns=_index(columns), index=index)
        if kind == "dataframe_records":
            if not isinstance(value, list):
                raise BadRequest("dataframe_records must be a list of row objects")
            if value and isinstance(value[0], dict):
                block = _records_block(value, floats)
                return block if block is not None else pd.DataFrame.from_records(value)
            return _rows(value, input_columns)
        if isinstance(value, Mapping):  # inputs (or instances) as an object of columns
            columns = {k: (v if isinstance(v, list) else [v]) for k, v in value.items()}
            return pd.DataFrame(columns)
        if not isinstance(value, list):
            raise BadRequest(f"{kind} must be a list of rows or an object of columns")
        if value and all(isinstance(row, dict) for row in value):
            block = _records_block(value, floats)
            return block if block is not None else pd.DataFrame.from_records(value)
        return _rows(value, input_columns)
    except BadRequest:
        raise
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"{kind} cannot be read as a table ({exc})") from None


_NUMBERS = frozenset((float, int, type(None)))


def _float_block(data: Any, columns: Any, floats: frozenset[str]) -> pandas.DataFrame | None:
    """``data`` (rows as lists) as one float64 block when every column is one the schema records as
    float64 and every value a JSON number or null (None otherwise: pandas' general construction)."""
    if not floats or not isinstance(data, list) or not data or not isinstance(columns, list) or not columns:
        return None
    width = len(columns)
    if not all(type(row) is list and len(row) == width for row in data):
        return None
    if not floats.issuperset(columns) or len(set(columns)) != width:
        return None
    if not {type(v) for row in data for v in row} <= _NUMBERS:  # bool is not int here: type(), not isinstance
        return None
    import numpy as np
    import pandas as pd

    return pd.DataFrame(np.array(data, dtype=np.float64), columns=_index(columns), copy=False)


_INDEXES: dict[tuple, Any] = {}


def _index(columns: Any) -> Any:
    """The column labels as a pandas ``Index``, made once per set of names: building one from a list
    of strings costs more than the rest of a one-row frame (~30 us), and requests repeat their
    columns. An Index is immutable, so the frames of many requests share it."""
    import pandas as pd

    if not isinstance(columns, list) or not all(type(c) is str for c in columns):
        return columns
    key = tuple(columns)
    found = _INDEXES.get(key)
    if found is None:
        if len(_INDEXES) >= 256:  # a client inventing column sets: forget them rather than grow
            _INDEXES.clear()
        found = _INDEXES[key] = pd.Index(columns, dtype=object)  # object labels, as the scorer's (Plan.labels)
    return found


def _records_block(records: list, floats: frozenset[str]) -> pandas.DataFrame | None:
    """Row objects with the same keys in the same order as one float64 block (see :func:`_float_block`)."""
    if not floats:
        return None
    keys = list(records[0])
    if not all(type(r) is dict and list(r) == keys for r in records):
        return None
    return _float_block([list(r.values()) for r in records], keys, floats)


def _rows(rows: list, input_columns: Sequence[str]) -> pandas.DataFrame:
    """Rows given as bare lists: the model's input columns, in schema.json's order."""
    import pandas as pd

    width = {len(row) if isinstance(row, list) else -1 for row in rows}
    if width and width != {len(input_columns)}:
        raise BadRequest(f"rows given as lists must each have the model's {len(input_columns)} input values "
                         f"({', '.join(input_columns)}); send row objects to name the columns", input_columns)
    return pd.DataFrame(rows, columns=_index(list(input_columns)))


def tables(requests: Sequence[tuple[bytes, str | None]], input_columns: Sequence[str],
           floats: frozenset[str] = frozenset()) -> list[pandas.DataFrame]:
    """The frames of many request bodies (``(body, content_type)`` pairs that :func:`parse` read
    before) as one table per set of columns, nearly always one: the monitor's sampled requests.
    JSON rows of the common shapes (``dataframe_split`` without an index, row objects) are gathered
    as Python lists and made into one DataFrame per set of columns, so pandas infers each column's
    dtype once for all of them; a thousand one-row frames built and concatenated would cost a
    hundred times more. Other bodies (CSV, an ``index``, columns as an object, bare-list rows) go
    through :func:`parse` and are concatenated with the tables of their columns. A body that no
    longer reads is skipped."""
    import pandas as pd

    gathered: dict[tuple, list[list[Any]]] = {}
    whole: dict[tuple, list[pandas.DataFrame]] = {}
    for body, content_type in requests:
        found = _json_rows(body, content_type)
        if found is not None:
            gathered.setdefault(found[0], []).extend(found[1])
            continue
        try:
            frame = parse(body, content_type, input_columns, floats)[0]
        except BadRequest:
            continue
        whole.setdefault(tuple(frame.columns.tolist()), []).append(frame)
    out = []
    for columns in dict.fromkeys([*gathered, *whole]):  # in the order the bodies came
        parts = [pd.DataFrame(gathered[columns], columns=list(columns))] if columns in gathered else []
        parts += whole.get(columns, [])
        out.append(parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True))
    return out


def _json_rows(body: bytes, content_type: str | None) -> tuple[tuple, list[list[Any]]] | None:
    """The column names and rows (as lists) of a JSON body of the common shapes; None for anything
    else (which :func:`parse` reads)."""
    if _media(content_type)[0] != "application/json":
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict) or len(_formats(document)) != 1:
        return None
    value = document.get("dataframe_split")
    if isinstance(value, dict):
        columns, data = value.get("columns"), value.get("data")
        if "index" in value or not isinstance(columns, list) or not isinstance(data, list):
            return None
        names = tuple(columns)
        if not all(type(c) is str for c in names) or len(set(names)) != len(names):
            return None
        return (names, data) if all(type(r) is list and len(r) == len(names) for r in data) else None
    records = next((document[k] for k in FORMATS[1:] if k in document), None)
    if not isinstance(records, list) or not records or type(records[0]) is not dict:
        return None
    names = tuple(records[0])
    if not all(type(c) is str for c in names) or not all(type(r) is dict and tuple(r) == names for r in records):
        return None
    return names, [list(r.values()) for r in records]


def answer(predictions: Any, probabilities: Any, names: Sequence[str], params: Mapping[str, Any]) -> bytes:
    """The response body for the model's ``predictions`` (an array) and ``probabilities`` (rows of
    one value per name in ``names``, or None): MLflow's ``{"predictions": [...]}``, or one record
    per row with its ``probability_<class>`` values when ``params`` asks for ``probabilities``."""
    labels = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
    if params.get("probabilities"):
        if probabilities is None:
            values: Any = [{"prediction": label} for label in labels]
        else:
            values = [{"prediction": label, **dict(zip(names, row, strict=True))}
                      for label, row in zip(labels, probabilities.tolist(), strict=True)]
    else:
        values = labels
    return json.dumps({"predictions": values}, default=_default).encode()


def _default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
