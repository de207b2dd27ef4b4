"""The namespace diff: which variables a cell created or changed, without hashing any data.

:func:`snapshot` runs before the cell (ids and cheap version tokens), :func:`changed` after it.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping

from mlops_nb.capture.kinds import is_estimator, is_pandas

#: Names IPython puts in the user namespace that are never a cell's output.
IGNORED_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})


def _dataframe_token(obj: object) -> object:
    """A version token for a pandas object: shape, columns and the identity of its data blocks.

    Replacing, adding, dropping or retyping a column (``df["x"] = ...``, ``inplace=True``
    methods) changes the token. Writing single values into an existing array in place
    (``df.loc[0, "x"] = 1``) does not: detecting that needs hashing, which this must not do.
    """
    shape = obj.shape  # type: ignore[attr-defined]
    columns = tuple(obj.columns) if hasattr(type(obj), "columns") else getattr(obj, "name", None)
    try:  # internal, best effort: pandas has had ``_mgr.blocks`` since 1.0
        blocks = tuple(id(b.values) for b in obj._mgr.blocks)  # type: ignore[attr-defined]
    except Exception:
        blocks = None
    return (shape, columns, blocks)


def _estimator_token(est: object, depth: int = 0) -> object:
    """A version token for an estimator: identity of every public attribute value.

    Fitting sets or replaces attributes ending in ``_`` (``coef_``...), ``set_params`` replaces
    parameter values; both change the token. Nested estimators (pipeline steps, ``estimator=``)
    are followed a few levels down, since fitting a Pipeline fits its steps in place.
    """
    try:
        attrs = vars(est)
    except TypeError:
        return None
    token = []
    for key, value in attrs.items():
        if key.startswith("_"):
            continue
        if depth < 4 and is_estimator(value):
            token.append((key, id(value), _estimator_token(value, depth + 1)))
        elif depth < 4 and isinstance(value, list | tuple):
            nested = tuple(
                _estimator_token(part, depth + 1)
                for item in value
                if isinstance(item, tuple)
                for part in item
                if is_estimator(part)
            )
            token.append((key, id(value), nested))
        else:
            token.append((key, id(value)))
    return tuple(token)


# Types whose instances never need a version token: checked first, to keep snapshots cheap.
_PLAIN_TYPES = frozenset({int, float, complex, bool, str, bytes, list, tuple, dict, set, frozenset, type(None), type})


def _token(obj: object) -> object:
    if type(obj) in _PLAIN_TYPES or isinstance(obj, types.FunctionType):
        return None
    if is_estimator(obj):
        return _estimator_token(obj)
    if is_pandas(obj):
        return _dataframe_token(obj)
    return None

_IMPORTED_KINDS = (type, types.FunctionType, types.BuiltinFunctionType)


def _imported(obj: object) -> bool:
    """A class or function that an import bound: not something the cell produced."""
    return isinstance(obj, _IMPORTED_KINDS) and getattr(obj, "__module__", "__main__") != "__main__"


def _watched(namespace: Mapping[str, object]) -> Iterable[tuple[str, object]]:
    for name, obj in namespace.items():
        if name.startswith("_") or name in IGNORED_NAMES or isinstance(obj, types.ModuleType) or _imported(obj):
            continue
        yield name, obj


def snapshot(namespace: Mapping[str, object]) -> dict[str, tuple[int, object]]:
    """Record, for every variable of ``namespace``, its identity and a cheap version token.

    ``namespace`` is a notebook's user namespace (``shell.user_ns``). Names starting with ``_``,
    modules and IPython's ``In``, ``Out``, ``exit``, ``quit`` and ``get_ipython`` are left out.
    The value kept per name is ``(id(obj), token)``: the token is ``None`` for ordinary objects, and
    for DataFrames/Series and estimators a small tuple that changes when they are modified in
    place (see :func:`changed`). No data is hashed and no reference to the objects is kept, so
    this costs microseconds per name and does not keep memory alive.
    """
    result = {}
    for name, obj in _watched(namespace):
        try:
            token = _token(obj)
        except Exception:
            token = None
        result[name] = (id(obj), token)
    return result


def changed(before: Mapping[str, tuple[int, object]], namespace: Mapping[str, object]) -> list[str]:
    """Names of ``namespace`` created or changed since ``before`` was taken by :func:`snapshot`.

    A name counts as changed when it is new, when it was rebound to another object (``df =
    df.dropna()``), or when a DataFrame, Series or fitted estimator was modified in place: a
    column added, dropped, replaced or retyped; an estimator fitted again or given new params.
    Single values written into an existing column in place are not detected. Deleted names are
    not reported. The result is in the namespace's order.
    """
    now = snapshot(namespace)
    return [name for name, entry in now.items() if before.get(name) != entry]
