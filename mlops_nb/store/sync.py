"""Reads of what the store pushed to an MLflow tracking server, and of the store's settings. A mixin
of :class:`mlops_nb.store.reader.Store`; nothing here writes (``tracking/sync_state.py`` does).

The sync compares these with the record to find what is new without asking the server anything, so
a re-sync with nothing new costs a few local queries."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any


class SyncReads:
    """Settings and sync bookkeeping. Needs ``conn`` and ``rows()`` from the class it is mixed into."""

    conn: sqlite3.Connection

    def setting(self, key: str) -> str | None:
        """The store setting ``key`` (``mlflow_uri``, ``store_uuid``), or None when unset."""
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def settings(self) -> dict[str, str]:
        """Every store setting."""
        return dict(self.conn.execute("SELECT key, value FROM settings ORDER BY key").fetchall())

    def sync_runs(self, target: str) -> dict[int, dict[str, Any]]:
        """What was pushed of each run to ``target``: ``{run_id: {remote_id, metric_rowid, ...}}``."""
        return {r["run_id"]: r for r in self.rows("SELECT * FROM sync_runs WHERE target = ?", (target,))}

    def sync_items(self, target: str, kind: str) -> dict[str, str | None]:
        """Items of ``kind`` (``experiment``, ``artifact``, ``model_version``, ``alias``) pushed to
        ``target``: ``{key: remote}``."""
        return dict(self.conn.execute(
            "SELECT key, remote FROM sync_items WHERE target = ? AND kind = ?", (target, kind)).fetchall())

    def runs_to_sync(self, projects: Iterable[str] | None = None, since: int | None = None) -> list[dict[str, Any]]:
        """The runs a sync considers (of ``projects``, from run ``since`` on), oldest first, each with
        its project name and ``max_rowid``, the last metric row it has."""
        where, args = ["1 = 1"], []
        names = list(projects or [])
        if names:
            where.append(f"projects.name IN ({', '.join('?' for _ in names)})")
            args += names
        if since is not None:
            where.append("runs.id >= ?")
            args.append(int(since))
        return self.rows(
            "SELECT runs.id, runs.name, runs.kind, runs.parent_id, runs.status, runs.start_time, runs.end_time,"
            " runs.error, runs.environment, runs.notebook, runs.git_commit, projects.name AS project,"
            " (SELECT max(rowid) FROM metrics WHERE metrics.run_id = runs.id) AS max_rowid"
            " FROM runs JOIN projects ON projects.id = runs.project_id"
            f" WHERE {' AND '.join(where)} ORDER BY runs.id", args)

    def metric_rows(self, run_id: int, after: int, limit: int,
                    upto: int | None = None) -> list[tuple[int, str, int, float | None, float]]:
        """Up to ``limit`` metric rows of the run after rowid ``after`` (and up to rowid ``upto``), in the
        order they were logged: ``(rowid, key, step, value, time)`` (value None for NaN)."""
        return self.conn.execute(
            "SELECT rowid, key, step, value, time FROM metrics WHERE run_id = ? AND rowid > ? AND rowid <= ?"
            " ORDER BY rowid LIMIT ?", (run_id, after, 2**63 - 1 if upto is None else upto, limit)).fetchall()

    def run_params_tags(self, run_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The run's params and tags, by key."""
        params = dict(self.conn.execute("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run_id,)))
        tags = dict(self.conn.execute("SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", (run_id,)))
        return params, tags

    def all_params_tags(self, run_ids: Iterable[int]) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
        """:meth:`run_params_tags` of many runs in two queries."""
        ids = list(run_ids)
        out: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {i: ({}, {}) for i in ids}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            marks = ", ".join("?" for _ in part)
            for run_id, key, value in self.conn.execute(
                    f"SELECT run_id, key, value FROM params WHERE run_id IN ({marks})", part):
                out[run_id][0][key] = value
            for run_id, key, value in self.conn.execute(
                    f"SELECT run_id, key, value FROM tags WHERE run_id IN ({marks})", part):
                out[run_id][1][key] = value
        return out

    def lifecycle_digest(self, run_ids: Iterable[int]) -> dict[int, str]:
        """A cheap token per run that changes whenever its stages, captures, warnings, gates or
        artifacts do: the sync regenerates the run's ``mlops-nb/`` artifacts only then."""
        ids = list(run_ids)
        out: dict[int, str] = {}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            marks = ", ".join("?" for _ in part)
            counts: dict[int, list[int]] = {i: [] for i in part}
            for table in ("stages", "captures", "warnings", "gates", "artifacts"):
                found = dict(self.conn.execute(
                    f"SELECT run_id, max(rowid) * 1000003 + count(*) FROM {table}"
                    f" WHERE run_id IN ({marks}) GROUP BY run_id", part).fetchall())
                for i in part:
                    counts[i].append(found.get(i) or 0)
            status = dict(self.conn.execute(
                f"SELECT id, coalesce((SELECT group_concat(status || ':' || coalesce(duration, ''), ',')"
                f" FROM stages WHERE stages.run_id = runs.id), '') FROM runs WHERE id IN ({marks})", part).fetchall())
            for i in part:
                out[i] = ".".join(str(c) for c in counts[i]) + "|" + str(status.get(i, ""))
        return out
