"""Reads of what scoring servers recorded (the ``serving`` table, one row per server process per
minute). A mixin of :class:`mlops_nb.store.reader.Store`; nothing here writes."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

_JSON = ("predictions", "drift", "drifted")


class ServingReads:
    """Serving queries. Needs ``conn`` and ``rows()`` from the class it is mixed into."""

    conn: sqlite3.Connection

    def serving_minutes(self, *, package: str | None = None, run_id: int | None = None, since: float | None = None,
                        limit: int = 1440) -> list[dict[str, Any]]:
        """The newest ``limit`` serving rows (of package root ``package`` and/or notebook run
        ``run_id``, from ``since`` on), oldest first, JSON columns parsed."""
        where, args = [], []
        for column, value in (("package", package), ("run_id", run_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("minute >= ?")
            args.append(since)
        sql = "SELECT * FROM serving" + (f" WHERE {' AND '.join(where)}" if where else "")
        rows = self.rows(f"SELECT * FROM ({sql} ORDER BY minute DESC, id DESC LIMIT ?) ORDER BY minute, id",
                         [*args, int(limit)])
        for row in rows:
            for key in _JSON:
                row[key] = json.loads(row[key]) if row[key] else None
        return rows

    def served_packages(self) -> list[dict[str, Any]]:
        """Every package root a server recorded minutes for: ``package``, ``model_name``, ``run_id``,
        ``first`` and ``last`` minute, total ``requests``."""
        return self.rows(
            "SELECT package, max(model_name) AS model_name, max(run_id) AS run_id, min(minute) AS first,"
            " max(minute) AS last, sum(requests) AS requests FROM serving GROUP BY package ORDER BY last DESC")
