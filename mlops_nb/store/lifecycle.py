"""Reads of a run's lifecycle: stages and outside cells (the events integrity judges), captures,
the requirement and gates, integrity warnings, child runs, and the aggregated lifecycle reads of
the widgets. A mixin of :class:`mlops_nb.store.reader.Store`; nothing here writes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from mlops_nb.store.values import nan


class LifecycleReads:
    """Lifecycle queries. Needs ``conn``, ``rows()``, ``run()`` (:class:`~mlops_nb.store.runs.RunReads`)
    and ``drift()`` (:class:`~mlops_nb.store.registry.RegistryReads`) from the class it is mixed into."""

    conn: sqlite3.Connection

    def run_details(self, run_id: int) -> dict[str, Any]:
        """Everything recorded about one run, for ``mlops-nb show`` and the widgets."""
        run = self.run(run_id)
        run["environment"] = json.loads(run["environment"] or "{}")
        run["params"] = {r["key"]: r["value"] for r in self.rows(
            "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run_id,))}
        # The run's own latest rows, through the (run_id, key) index: the ``latest_metrics`` view groups
        # the whole table first, so its cost grew with every run in the store.
        run["metrics"] = {r["key"]: nan(r["value"]) for r in self.rows(
            "SELECT key, value FROM metrics WHERE rowid IN"
            " (SELECT max(rowid) FROM metrics WHERE run_id = ? GROUP BY key) ORDER BY key", (run_id,))}
        run["tags"] = {r["key"]: r["value"] for r in self.rows(
            "SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", (run_id,))}
        run["artifacts"] = self.rows(
            "SELECT id, name, kind, sha256, size, path, created FROM artifacts WHERE run_id = ? ORDER BY id",
            (run_id,))
        run["stages"] = self.rows(
            "SELECT id, seq, stage, attempt, cell_id, execution_count, source_sha256, start_time, duration,"
            " status, error, variables FROM stages WHERE run_id = ? ORDER BY seq", (run_id,))
        run["requirement"] = next(iter(self.rows("SELECT * FROM requirements WHERE run_id = ?", (run_id,))), None)
        run["gates"] = self.rows("SELECT * FROM gates WHERE run_id = ? ORDER BY id", (run_id,))
        run["warnings"] = self.rows(
            "SELECT kind, stage, message FROM warnings WHERE run_id = ? ORDER BY id", (run_id,))
        run["drift"] = self.drift(run_id)
        return run

    def events(self, run_id: int, after: int = 0) -> list[dict[str, Any]]:
        """The run's stage attempts, outside cells and restarts in execution order (for integrity);
        ``after``: only those with a greater ``seq`` (what an incremental judge has not seen)."""
        return self.rows(
            "SELECT seq, 'stage' AS kind, stage, source_sha256, source, execution_count, cell_id, status"
            " FROM stages WHERE run_id = ? AND seq > ?"
            " UNION ALL SELECT seq, kind, NULL, source_sha256, source, execution_count, cell_id, status"
            " FROM cells WHERE run_id = ? AND seq > ? ORDER BY seq",
            (run_id, after, run_id, after),
        )


    def warnings(self, run_id: int) -> list[dict[str, Any]]:
        """The run's current integrity warnings (``kind``, ``stage``, ``message``), as last judged."""
        return self.rows("SELECT kind, stage, message FROM warnings WHERE run_id = ? ORDER BY id", (run_id,))

    def requirement(self, run_id: int) -> dict[str, Any] | None:
        """The requirement stated for the run (``%mlops require``), or None."""
        rows = self.rows("SELECT * FROM requirements WHERE run_id = ?", (run_id,))
        return rows[0] if rows else None

    def requirement_metrics(self, run_ids: Iterable[int]) -> list[str]:
        """The metrics the requirements of ``run_ids`` name, each once, most used first."""
        ids = list(run_ids)
        counts: dict[str, int] = {}
        for start in range(0, len(ids), 900):  # SQLite's bound on one statement's parameters
            chunk = ids[start:start + 900]
            for row in self.rows(f"SELECT metric, COUNT(*) AS n FROM requirements WHERE run_id IN "
                                 f"({','.join('?' * len(chunk))}) GROUP BY metric", chunk):
                counts[row["metric"]] = counts.get(row["metric"], 0) + row["n"]
        return sorted(counts, key=lambda metric: (-counts[metric], metric))

    def resumable_run(self, kernel: str) -> dict[str, Any] | None:
        """The latest notebook run of ``kernel`` (a kernel id, stable across restarts) that its
        process left unfinished: a restarted kernel carries on with it."""
        rows = self.rows(
            "SELECT runs.id, runs.status, runs.end_reason, runs.name, projects.name AS project FROM runs"
            " JOIN projects ON projects.id = runs.project_id"
            " WHERE runs.kernel = ? AND runs.kind = 'notebook' ORDER BY runs.id DESC LIMIT 1",
            (kernel,),
        )
        if rows and rows[0]["end_reason"] in ("kernel exit", "process gone"):
            return rows[0]
        return None


    def captures(self, run_id: int) -> list[dict[str, Any]]:
        """The run's capture records, oldest first, with their stage's ``stage``, ``seq`` and
        ``stage_status``; ``summary`` is parsed."""
        rows = self.rows(
            "SELECT captures.id, captures.stage_id, captures.name, captures.kind, captures.fingerprint,"
            " captures.summary, captures.artifact_id, stages.stage, stages.seq, stages.status AS stage_status"
            " FROM captures LEFT JOIN stages ON stages.id = captures.stage_id"
            " WHERE captures.run_id = ? ORDER BY captures.id",
            (run_id,),
        )
        for row in rows:
            row["summary"] = json.loads(row["summary"])
        return rows


    def gates(self, run_id: int) -> list[dict[str, Any]]:
        """The run's gate results, oldest first, with the ``seq`` of the stage that produced each."""
        return self.rows(
            "SELECT gates.*, stages.seq FROM gates LEFT JOIN stages ON stages.id = gates.stage_id"
            " WHERE gates.run_id = ? ORDER BY gates.id",
            (run_id,),
        )


    def stage_captures(self, run_id: int) -> list[dict[str, Any]]:
        """A short description of everything the run's stages captured, without the heavy parts of
        the summaries (profiles, candidates): ``stage_id``, ``name``, ``kind``, ``fingerprint``,
        ``rows``, ``n_columns``, ``class``, ``n_candidates``, ``best_score``, ``unloadable``."""
        return self.rows(
            "SELECT stage_id, name, kind, fingerprint, json_extract(summary, '$.rows') AS rows,"
            " json_array_length(summary, '$.columns') AS n_columns, json_extract(summary, '$.class') AS class,"
            " json_extract(summary, '$.n_candidates') AS n_candidates,"
            " json_extract(summary, '$.best_score') AS best_score,"
            " json_extract(summary, '$.unloadable') AS unloadable"
            " FROM captures WHERE run_id = ? ORDER BY id",
            (run_id,),
        )


    def stage_sources(self, run_ids: Iterable[int]) -> dict[int, dict[str, dict[str, Any]]]:
        """For each run, each stage's latest attempt: ``{run_id: {stage: {"source", "status",
        "attempt", "source_sha256"}}}`` (runs that recorded no stage are absent)."""
        ids = [int(r) for r in run_ids]
        found: dict[int, dict[str, dict[str, Any]]] = {}
        if not ids:
            return found
        marks = ", ".join("?" for _ in ids)
        for row in self.conn.execute(
            "SELECT run_id, stage, source, status, attempt, source_sha256 FROM stages WHERE id IN"
            f" (SELECT max(id) FROM stages WHERE run_id IN ({marks}) GROUP BY run_id, stage) ORDER BY seq",
            ids,
        ):
            found.setdefault(row["run_id"], {})[row["stage"]] = {
                "source": row["source"], "status": row["status"], "attempt": row["attempt"],
                "source_sha256": row["source_sha256"],
            }
        return found

    def data_fingerprints(self, run_ids: Iterable[int]) -> dict[int, dict[str, str | None]]:
        """For each run, the DataFrames and Series its latest successful ``data`` stage produced:
        ``{run_id: {name: fingerprint}}`` (runs without one are absent)."""
        ids = [int(r) for r in run_ids]
        found: dict[int, dict[str, str | None]] = {}
        if not ids:
            return found
        marks = ", ".join("?" for _ in ids)
        for row in self.conn.execute(
            "SELECT run_id, name, fingerprint FROM captures WHERE kind IN ('dataframe', 'series') AND stage_id IN"
            f" (SELECT max(id) FROM stages WHERE run_id IN ({marks}) AND stage = 'data' AND status = 'ok'"
            " GROUP BY run_id) ORDER BY id",
            ids,
        ):
            found.setdefault(row["run_id"], {})[row["name"]] = row["fingerprint"]
        return found


    def stage_frames(self, run_id: int, stages: Iterable[str]) -> list[dict[str, Any]]:
        """The DataFrames and Series that the latest successful attempt of each of ``stages``
        captured: ``stage``, ``name``, ``kind``, ``fingerprint``, ``rows`` and ``columns`` (names)."""
        names = list(stages)
        marks = ", ".join("?" for _ in names)
        rows = self.rows(
            "SELECT stages.stage, captures.name, captures.kind, captures.fingerprint,"
            " json_extract(captures.summary, '$.rows') AS rows,"
            " json_extract(captures.summary, '$.columns') AS columns"
            " FROM captures JOIN stages ON stages.id = captures.stage_id"
            " WHERE captures.kind IN ('dataframe', 'series') AND captures.stage_id IN"
            f" (SELECT max(id) FROM stages WHERE run_id = ? AND status = 'ok' AND stage IN ({marks}) GROUP BY stage)"
            " ORDER BY stages.seq, captures.id",
            (run_id, *names),
        )
        for row in rows:
            columns = json.loads(row["columns"]) if row["columns"] else []
            row["columns"] = [c.get("name") if isinstance(c, dict) else c for c in columns]
        return rows

    def child_runs(self, run_id: int, kind: str | None = "retraining") -> list[dict[str, Any]]:
        """The runs whose parent is ``run_id`` (of ``kind``; None for any), oldest first, each with
        its ``tags`` and latest ``metrics`` as dicts."""
        kind_sql, args = ("AND kind = ?", [run_id, kind]) if kind else ("", [run_id])
        children = self.rows(
            "SELECT id, name, kind, status, start_time, end_time, error FROM runs"
            f" WHERE parent_id = ? {kind_sql} ORDER BY id",
            args,
        )
        for child in children:
            child["tags"] = {r["key"]: r["value"] for r in self.rows(
                "SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", (child["id"],))}
            child["metrics"] = {r["key"]: nan(r["value"]) for r in self.rows(
                "SELECT key, value FROM metrics WHERE rowid IN (SELECT max(rowid) FROM metrics WHERE run_id = ?"
                " GROUP BY key) ORDER BY key", (child["id"],))}
        return children

