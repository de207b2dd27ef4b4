"""Each ended run's params, latest metrics and tags packed into one row of ``run_summaries`` (m007).

``runs()`` over 100,000 runs of 10 params and 10 metrics would otherwise read two million rows,
one Python tuple each, which alone takes longer than its one-second budget. An ended run's values
change rarely (its metrics never; params and tags when set afterwards, which re-packs the row), so
the writer packs them once, when the run ends, and the reader decodes a whole column of runs at a
time: one ``json.loads`` for all the params (or tags) of the runs that share one set of keys, one
``numpy.frombuffer`` for their metrics. Running runs have no row and are read from the tables.

The packed form, three columns: ``keys``, a JSON array of the sorted param, metric and tag keys
(three arrays); ``texts``, a JSON array of two arrays, the param and the tag values in key order
(Python's ``json``, so floats round-trip exactly and NaN survives); ``metrics``, the metric values
in key order as little-endian float64 bytes (NaN where the value is NULL).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any

#: The columns of ``run_summaries`` after ``run_id``, in the order :func:`pack` returns them.
COLUMNS = ("keys", "texts", "metrics")
#: The namespaces of a frame, in the order of ``keys``.
NAMESPACES = ("params", "metrics", "tags")


def pack(params: Iterable[Sequence], metrics: Iterable[Sequence], tags: Iterable[Sequence]) -> tuple:
    """One run's ``(key, value)`` rows of each namespace -> the values of :data:`COLUMNS`."""
    params, metrics, tags = sorted(map(tuple, params)), sorted(map(tuple, metrics)), sorted(map(tuple, tags))
    values = [math.nan if v is None else v for _, v in metrics]
    keys = json.dumps([[k for k, _ in params], [k for k, _ in metrics], [k for k, _ in tags]])
    texts = json.dumps([[v for _, v in params], [v for _, v in tags]], allow_nan=True)
    return keys, texts, struct.pack(f"<{len(values)}d", *values)


def unpack_columns(
    keys: Sequence[str | None], texts: Sequence[str | None], metrics: Sequence[bytes | None], n: int,
    into: dict[str, dict[str, Any]], *, common: str = "", memo: dict | None = None,
) -> None:
    """Decode the packed rows of many runs into ``into`` (namespace -> key -> a column of ``n``).

    The three sequences are the packed columns, one item per run in frame order (None for a run
    without a summary). A metric column is a float64 array, NaN where missing; a param or tag column
    an object array (None where missing) or, when every run has the key, a tuple. Each group of
    runs sharing one key set is decoded in one call; usually all runs share one. ``''`` in ``keys``
    stands for ``common`` (the reader sends the most common key set once). Repeated strings share
    one object, memoised in ``memo`` (pass one dict for all the chunks of a frame).
    """
    import numpy as np

    memo = {} if memo is None else memo
    if n and keys[0] is not None and keys.count(keys[0]) == n:
        groups = {keys[0]: list(range(n))}
    else:
        groups = {}
        for i, text in enumerate(keys):
            if text is not None:
                found = groups.get(text)
                if found is None:
                    groups[text] = [i]
                else:
                    found.append(i)
    for text, rows in groups.items():
        p_names, m_names, t_names = json.loads(text or common)
        every = len(rows) == n
        where = None if every else np.asarray(rows, dtype=np.int64)
        parsed = json.loads("[" + ",".join([texts[i] for i in rows]) + "]") if p_names or t_names else []
        for namespace, names in (("params", p_names), ("tags", t_names)):
            if names:
                slot = 0 if namespace == "params" else 1
                parts = [shared(part, memo) for part in zip(*[run[slot] for run in parsed], strict=True)]
                _place(into[namespace], names, parts, n, where, numeric=False)
                del parts
        del parsed
        if m_names:
            table = np.frombuffer(b"".join([metrics[i] for i in rows]), dtype="<f8").reshape(len(rows), len(m_names))
            _place(into["metrics"], m_names, [table[:, j] for j in range(len(m_names))], n, where, numeric=True)


def merge_chunks(chunks: Sequence[tuple[int, int, dict[str, dict[str, Any]]]], n: int) -> dict[str, dict[str, Any]]:
    """The blocks :func:`unpack_columns` filled for consecutive chunks of runs (``(start, size,
    blocks)`` each) as one block per namespace over all ``n`` runs: a metric column a float64 array
    (NaN where missing), a param or tag column an object array (None where missing). One chunk's
    blocks are returned as they are."""
    import numpy as np

    if len(chunks) == 1:
        return chunks[0][2]
    merged: dict[str, dict[str, Any]] = {namespace: {} for namespace in NAMESPACES}
    for start, size, blocks in chunks:
        for namespace, block in blocks.items():
            into = merged[namespace]
            numeric = namespace == "metrics"
            for key, part in block.items():
                column = into.get(key)
                if column is None:
                    column = into[key] = np.full(n, np.nan) if numeric else np.full(n, None, dtype=object)
                column[start:start + size] = part if numeric or not isinstance(part, tuple) else _objects(part)
    return merged


def shared(values: Sequence[Any], memo: dict) -> Sequence[Any]:
    """``values`` with each string replaced by one shared object per distinct string (``memo`` holds
    them across calls): a column of 100,000 runs mostly repeats a few strings, each copy ~55 bytes.
    Values of other types are kept as they are (``1``, ``1.0`` and ``True`` stay apart); a column
    of mostly distinct values, or whose first value is not a string, is returned unchanged.
    C-level passes only (~60 ns a value)."""
    first = next((v for v in values if v is not None), None)
    if type(first) is not str:  # numbers are not shared: hashing 100,000 of them only to find that costs 5 ms
        return values
    try:
        distinct = set(values)
    except TypeError:  # an unhashable value (a list): nothing to share
        return values
    if len(distinct) * 4 > len(values):
        return values
    lookup = {v: memo.setdefault(v, v) for v in distinct if type(v) is str}
    return tuple(map(lookup.get, values, values)) if lookup else values


def _place(block: dict[str, Any], names: list[str], parts: list, n: int, where: Any, numeric: bool) -> None:
    import numpy as np

    for name, part in zip(names, parts, strict=True):
        column = block.get(name)
        if column is None and where is None:
            block[name] = np.array(part) if numeric else part
            continue
        if column is None:
            column = block[name] = np.full(n, np.nan) if numeric else np.full(n, None, dtype=object)
        elif isinstance(column, tuple):
            column = block[name] = _objects(column)
        column[np.arange(n) if where is None else where] = part if numeric else _objects(part)


def _objects(values: Sequence[Any]) -> Any:
    """``values`` as a 1-D object array (never a 2-D one, whatever the items are)."""
    import numpy as np

    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def typed(column: Any) -> Any:
    """A param or tag column as pandas would type the same values given as a list: int64 when
    every value is an int, float64 when they are floats (None as NaN); anything else (text, mixed
    types) goes back as a list for pandas to infer, as it always has."""
    import numpy as np

    kinds = set(map(type, column))
    try:
        if kinds == {int}:
            return np.array(column, dtype=np.int64)
        if float in kinds and kinds <= {float, type(None)}:
            return np.array(column, dtype=np.float64)
    except OverflowError:  # an int beyond int64: pandas keeps objects
        pass
    return list(column)
