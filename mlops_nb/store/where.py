"""The ``where`` language to SQL: a tree from :mod:`mlops_nb.filters` becomes a condition over
``runs`` in which user values are only ever parameters. Also the keys a filter may name."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from mlops_nb.errors import FilterError

#: The SQL of each base column of a run (the ``where`` language's and the sidebar's sort keys).
BASE_SQL = {
    "run_id": "runs.id",
    "project": "(SELECT name FROM projects WHERE projects.id = runs.project_id)",
    "name": "runs.name",
    "kind": "runs.kind",
    "status": "runs.status",
    "start_time": "runs.start_time",
    "end_time": "runs.end_time",
    "duration": "(runs.end_time - runs.start_time)",
}
#: The SQL of ``<namespace>.<key>`` for a run; every ``?`` is the key. An ended run's latest metric
#: is one primary-key probe of ``ended_metrics``; only running runs look through their metric rows.
NAMESPACE_SQL = {
    "params": "(SELECT value FROM params WHERE params.run_id = runs.id AND params.key = ?)",
    "metrics": "(CASE WHEN runs.status = 'running' THEN (SELECT value FROM metrics WHERE metrics.run_id = runs.id"
               " AND metrics.key = ? ORDER BY metrics.rowid DESC LIMIT 1) ELSE (SELECT value FROM ended_metrics"
               " WHERE ended_metrics.run_id = runs.id AND ended_metrics.key = ?) END)",
    "tags": "(SELECT value FROM tags WHERE tags.run_id = runs.id AND tags.key = ?)",
}
_OPS = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "like": "LIKE"}


def project_scope(project: str | None) -> tuple[str, list]:
    """A ``WHERE`` over ``runs JOIN projects`` keeping ``project``'s runs (nothing for None)."""
    return ("WHERE projects.name = ?", [project]) if project else ("", [])


def known_keys(conn: sqlite3.Connection, project: str | None = None) -> dict[str, list[str]]:
    """The param, metric and tag keys present (in ``project``), for filters and column pickers."""
    scope, args = project_scope(project)
    keys: dict[str, list[str]] = {}
    for namespace in ("params", "metrics", "tags"):
        keys[namespace] = [r[0] for r in conn.execute(
            f"SELECT DISTINCT key FROM {namespace} WHERE run_id IN (SELECT runs.id FROM runs"
            f" JOIN projects ON projects.id = runs.project_id {scope}) ORDER BY key", args)]
    return keys


def key_exists(conn: sqlite3.Connection, namespace: str, key: str, project: str | None = None) -> bool:
    """Whether a run (of ``project``) has ``key`` in ``namespace``: runs are visited newest first
    and each is one index probe, stopping at the first that has it (a key in use is found at once;
    :func:`known_keys` reads every row, 180 ms on a million metric rows)."""
    scope, args = project_scope(project)
    return bool(conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM runs JOIN projects ON projects.id = runs.project_id {scope}"
        f" {'AND' if scope else 'WHERE'} EXISTS (SELECT 1 FROM {namespace} WHERE {namespace}.run_id = runs.id"
        f" AND {namespace}.key = ?) ORDER BY runs.id DESC)", [*args, key]).fetchone()[0])


def compile_where(
    conn: sqlite3.Connection, expression: str, project: str | None = None,
    known: Mapping[str, Iterable[str]] | None = None,
) -> tuple[str, list]:
    """Turn a ``where`` expression into SQL over ``runs`` and its parameters.

    ``known``: the param, metric and tag keys per namespace (as :func:`known_keys` returns them),
    when the caller already has them; saves that query. An unknown column raises
    :class:`FilterError` listing the columns there are.
    """
    from mlops_nb import filters

    tree = filters.parse(expression)
    for column in filters.columns(tree):
        if column.namespace is None:
            continue
        if known is None:
            present = key_exists(conn, column.namespace, column.key, project)
        else:
            present = column.key in known[column.namespace]
        if not present:
            known = known_keys(conn, project) if known is None else known
            existing = [f"{ns}.{k}" for ns, keys in known.items() for k in keys]
            raise FilterError(
                f"unknown column '{column.namespace}.{column.key}'; the columns are: "
                f"{', '.join([*filters.BASE_COLUMNS, *existing])}",
                expression=expression, position=column.position,
            )
    args: list = []
    return compile_tree(tree, args), args


def compile_tree(node: Any, args: list) -> str:
    """SQL for a parsed tree; appends its parameters to ``args`` in order."""
    from mlops_nb import filters

    if isinstance(node, filters.And):
        return f"({compile_tree(node.left, args)} AND {compile_tree(node.right, args)})"
    if isinstance(node, filters.Or):
        return f"({compile_tree(node.left, args)} OR {compile_tree(node.right, args)})"
    if isinstance(node, filters.Not):
        return f"(NOT {compile_tree(node.operand, args)})"
    column = node.column
    if column.namespace is None:
        sql = BASE_SQL[column.key]
    else:
        sql = NAMESPACE_SQL[column.namespace]
        args.extend([column.key] * sql.count("?"))
    if node.op == "in":
        values = [_literal(column, v) for v in node.value]
        args.extend(values)
        return f"{sql} IN ({', '.join('?' for _ in values)})"
    args.append(_literal(column, node.value))
    return f"{sql} {_OPS[node.op]} ?"


def _literal(column: Any, value: Any) -> Any:
    """Dates written as text compare with the epoch-second time columns."""
    if column.namespace is None and column.key in ("start_time", "end_time") and isinstance(value, str):
        from datetime import datetime, timezone

        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise FilterError(f"{value!r} is not a date; write times like '2026-11-26' or "
                              f"'2026-11-26T15:00'", expression=value) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return value
