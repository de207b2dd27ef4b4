"""Every write SQL of the store, on a :class:`Writer` bound to an open :class:`~mlops_nb.store.reader.Store`.

Only :mod:`mlops_nb.tracking` imports this module (an import-linter contract keeps it so): the
notebook, the CLI, the server and deploy write through tracking's functions, which know what a
run, a stage or a registration means. The writer reuses the store's connection and lock, so its
transactions nest with each other (savepoints) and a lone write stays one autocommit statement:
``log_metric`` is a single ``INSERT``, the hot path that ``benchmarks/bench_tracking.py`` times.

A store opened read-only cannot get a writer (and SQLite's ``query_only`` would refuse anyway).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_nb.errors import StoreError
from mlops_nb.stages import STAGE_BITS
from mlops_nb.store import artifacts, summaries
from mlops_nb.store.connection import HOST, Transaction, process_alive, process_start_token, store_error
from mlops_nb.store.values import dumps, metric_value, param_value

if TYPE_CHECKING:
    from mlops_nb.store.reader import Store

_INSERT_METRIC = "INSERT INTO metrics (run_id, key, step, value, time) VALUES (?, ?, ?, ?, ?)"
# An ended run's metrics never change again: its latest values are kept in ``ended_metrics``, so
# reading 10,000 runs does not aggregate every metric row ever logged.
_SETTLE = (
    "INSERT OR REPLACE INTO ended_metrics (run_id, key, step, value, time)"
    " SELECT run_id, key, step, value, time FROM metrics WHERE rowid IN"
    " (SELECT max(rowid) FROM metrics WHERE run_id = ? GROUP BY key)"
)


_PACK = "INSERT OR REPLACE INTO run_summaries (run_id, keys, texts, metrics) VALUES (?, ?, ?, ?)"


class Writer:
    """The writes of one open store. ``Writer(store)`` is cheap: it holds no state of its own."""

    def __init__(self, store: Store):
        if store.readonly:
            raise StoreError(f"the store {store.path} was opened read-only and cannot be written; "
                             f"open it for writing with open_store({str(store.path)!r})")
        self.store = store
        self.conn = store.conn
        self.path: Path = store.path

    def transaction(self) -> Transaction:
        """A context manager: everything inside commits together or not at all (nests)."""
        return Transaction(self.conn, self.store.lock)

    # -- low level (table and column names are ours, never user text) -------------------------------

    def _write(self, sql: str, params: Iterable = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, tuple(params))
        except sqlite3.OperationalError as exc:
            raise store_error(self.path, exc) from None

    def _insert(self, table: str, row: Mapping[str, Any]) -> int:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        return self._write(f"INSERT INTO {table} ({columns}) VALUES ({marks})", row.values()).lastrowid

    def _update(self, table: str, row_id: int, changes: Mapping[str, Any]) -> None:
        assignments = ", ".join(f"{c} = ?" for c in changes)
        self._write(f"UPDATE {table} SET {assignments} WHERE id = ?", [*changes.values(), row_id])

    # -- runs -----------------------------------------------------------------------------------------

    def _project_id(self, name: str) -> int:
        row = self.conn.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()
        if row:
            return row[0]
        self._write("INSERT OR IGNORE INTO projects (name, created) VALUES (?, ?)", (name, time.time()))
        return self.conn.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()[0]

    def create_run(
        self, project: str, *, name: str | None, kind: str = "notebook", parent_id: int | None = None,
        notebook: str | None = None, kernel: str | None = None, environment: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert a ``running`` run for this process (host, pid and the pid's start token, so a
        later open can tell when the process is gone) and return its id."""
        env = dict(environment or {})
        git = env.get("git") or {}
        pid = os.getpid()
        if parent_id is not None:
            self.store.run(parent_id)  # RunNotFound names the fix
        with self.transaction():
            project_id = self._project_id(project)
            cursor = self._write(
                "INSERT INTO runs (project_id, name, kind, parent_id, start_time, host, pid, pid_start,"
                " notebook, kernel, git_commit, git_dirty, environment)"
                " VALUES (?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (project_id, kind, parent_id, time.time(), HOST, pid, process_start_token(pid),
                 notebook, kernel, git.get("commit"), git.get("dirty"), dumps(env)),
            )
            run_id = cursor.lastrowid
            self._write("UPDATE runs SET name = ? WHERE id = ?", (name or f"run-{run_id}", run_id))
        return run_id

    def end_run(self, run_id: int, status: str, error: str | None = None, *, reason: str = "explicit") -> None:
        """End the run with ``status`` and settle its latest metrics (``reason`` -> ``end_reason``)."""
        with self.transaction():
            self._write(
                "UPDATE runs SET status = ?, end_time = ?, error = ?, end_reason = ? WHERE id = ?",
                (status, time.time(), error, reason, run_id),
            )
            self._settle(run_id)

    def resume_run(self, run_id: int) -> None:
        """Mark ``run_id`` as running again in this process (a kernel restart inside a run)."""
        pid = os.getpid()
        with self.transaction():
            self._write(
                "UPDATE runs SET status = 'running', end_time = NULL, error = NULL, end_reason = NULL,"
                " host = ?, pid = ?, pid_start = ? WHERE id = ?",
                (HOST, pid, process_start_token(pid), run_id),
            )
            self._write("DELETE FROM ended_metrics WHERE run_id = ?", (run_id,))
            self._write("DELETE FROM run_summaries WHERE run_id = ?", (run_id,))

    def mark_interrupted(self) -> list[int]:
        """Mark as ``interrupted`` the running runs of this host whose process is gone; return their ids.

        Only the writing open of a store calls this (readers show such runs as interrupted through
        :func:`mlops_nb.store.process_gone` and write nothing). A run is judged gone when it was
        started on this host and its pid no longer exists, or exists but started at another time
        (the pid was reused). Runs of other hosts are left alone: we cannot see them.
        """
        rows = self.conn.execute(
            "SELECT id, pid, pid_start FROM runs WHERE status = 'running' AND host = ?", (HOST,)
        ).fetchall()
        gone = [r["id"] for r in rows if r["pid"] and not process_alive(r["pid"], r["pid_start"])]
        if gone:
            with self.transaction():
                for run_id in gone:
                    self._write(
                        "UPDATE runs SET status = 'interrupted', end_time = ?,"
                        " error = 'the process that ran it ended without ending the run', end_reason = 'process gone'"
                        " WHERE id = ? AND status = 'running'",
                        (time.time(), run_id),
                    )
                    self._settle(run_id)
        return gone

    def _settle(self, run_id: int) -> None:
        """An ended run: keep its latest metrics, and pack its params, metrics and tags for ``runs()``."""
        self._write(_SETTLE, (run_id,))
        self._pack(run_id)

    def _pack(self, run_id: int) -> None:
        rows = [self.conn.execute(f"SELECT key, value FROM {table} WHERE run_id = ?", (run_id,)).fetchall()
                for table in ("params", "ended_metrics", "tags")]
        self._write(_PACK, (run_id, *summaries.pack(*rows)))

    def _repack_if_ended(self, run_id: int) -> None:
        """Params or tags set after the run ended: its packed row must say so too."""
        if self.conn.execute("SELECT 1 FROM run_summaries WHERE run_id = ?", (run_id,)).fetchone():
            self._pack(run_id)

    # -- params, metrics, tags ------------------------------------------------------------------------

    def log_params(self, run_id: int, params: Mapping[str, Any]) -> None:
        """Upsert params in one transaction (values as :func:`~mlops_nb.store.values.param_value`)."""
        now = time.time()
        rows = [(run_id, str(k), param_value(str(k), v), now) for k, v in params.items()]
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO params (run_id, key, value, time) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, time = excluded.time",
                rows,
            )
            self._repack_if_ended(run_id)

    def log_metric(self, run_id: int, key: str, step: int, value: Any) -> None:
        """One durable row: the hot path, so straight to sqlite3 in autocommit mode."""
        row = (run_id, key, step, metric_value(key, value), time.time())
        try:
            self.conn.execute(_INSERT_METRIC, row)
        except sqlite3.OperationalError as exc:
            raise store_error(self.path, exc) from None

    def log_metrics(self, rows: list[tuple[int, str, int, Any]]) -> None:
        """Many rows of ``(run_id, key, step, value)`` in one transaction."""
        now = time.time()
        prepared = [(r, k, s, metric_value(k, v), now) for r, k, s, v in rows]
        with self.transaction():
            self.conn.executemany(_INSERT_METRIC, prepared)

    def set_tags(self, run_id: int, tags: Mapping[str, Any]) -> None:
        """Set tags (as text; None stays NULL) in one transaction."""
        with self.transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, str(k), None if v is None else str(v)) for k, v in tags.items()],
            )
            self._repack_if_ended(run_id)

    # -- artifacts ------------------------------------------------------------------------------------

    def put_file(self, source: Path) -> artifacts.Stored:
        """Copy ``source`` into the artifact folder; (sha256, size, relative path)."""
        return artifacts.put_file(self.path.parent, source)

    def put_bytes(self, data: bytes) -> artifacts.Stored:
        """Store ``data`` in the artifact folder; (sha256, size, relative path)."""
        return artifacts.put_bytes(self.path.parent, data)

    def add_artifact(
        self, run_id: int, name: str, stored: artifacts.Stored, *, kind: str = "file", stage_id: int | None = None,
    ) -> int:
        """Record a stored file as an artifact of the run; return its id."""
        sha, size, relative = stored
        return self._write(
            "INSERT INTO artifacts (run_id, stage_id, name, kind, sha256, size, path, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, stage_id, name, kind, sha, size, relative, time.time()),
        ).lastrowid

    # -- lifecycle: stages, cells, requirement, warnings ----------------------------------------------

    def _next_seq(self, run_id: int) -> int:
        row = self.conn.execute(
            "SELECT max(seq) FROM (SELECT max(seq) AS seq FROM stages WHERE run_id = ?"
            " UNION ALL SELECT max(seq) FROM cells WHERE run_id = ?)",
            (run_id, run_id),
        ).fetchone()
        return (row[0] or 0) + 1

    def begin_stage(
        self, run_id: int, stage: str, *, source: str, source_sha256: str, cell_id: str | None,
        execution_count: int | None, start_time: float,
    ) -> int:
        """Insert a ``running`` stage attempt (so a kernel dying mid-cell still leaves a trace)."""
        with self.transaction():
            attempt = self.conn.execute(
                "SELECT count(*) FROM stages WHERE run_id = ? AND stage = ?", (run_id, stage)
            ).fetchone()[0] + 1
            return self._insert("stages", {
                "run_id": run_id, "seq": self._next_seq(run_id), "stage": stage, "attempt": attempt,
                "cell_id": cell_id, "execution_count": execution_count, "source": source,
                "source_sha256": source_sha256, "start_time": start_time,
            })

    def finish_stage(
        self, run_id: int, stage_id: int, *, duration: float, status: str, error: str | None,
        variables: list[str], captures: list[dict[str, Any]], metrics: Mapping[str, float],
        params: Mapping[str, Any], gate: Mapping[str, Any] | None, execution_count: int | None = None,
    ) -> None:
        """Close a stage attempt with everything it produced, in one transaction.

        ``captures``: records from :mod:`mlops_nb.capture`; each may carry ``artifact`` (the stored
        ``(sha256, size, path)`` of a model) and search ``candidates``. ``execution_count``, when
        given, replaces the one recorded at the start (IPython >= 9 counts the cell after it began).
        """
        now = time.time()
        changes: dict[str, Any] = {"duration": duration, "status": status, "error": error,
                                   "variables": dumps(variables)}
        if execution_count is not None:
            changes["execution_count"] = execution_count
        with self.transaction():
            self._update("stages", stage_id, changes)
            if status == "ok":
                self._reached(run_id, stage_id)
            for record in captures:
                record = dict(record)
                artifact = record.pop("artifact", None)
                candidates = record.pop("candidates", None) or []
                artifact_id = None
                if artifact is not None:
                    artifact_id = self.add_artifact(
                        run_id, f"{record['name']}.skops", artifact, kind="model", stage_id=stage_id)
                capture_id = self._insert("captures", {
                    "run_id": run_id, "stage_id": stage_id, "name": record["name"], "kind": record["kind"],
                    "fingerprint": record.get("fingerprint"), "summary": dumps(record),
                    "artifact_id": artifact_id,
                })
                self.conn.executemany(
                    "INSERT INTO candidates (run_id, capture_id, rank, params, mean_score, std_score)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(run_id, capture_id, c.get("rank_test_score"), dumps(c.get("params")),
                      c.get("mean_test_score"), c.get("std_test_score")) for c in candidates],
                )
            if params:
                self.log_params(run_id, params)
            if metrics:
                steps = self.store.last_steps(run_id)
                self.log_metrics([(run_id, k, steps.get(k, -1) + 1, v) for k, v in metrics.items()])
            if gate is not None:
                self._insert("gates", {**gate, "run_id": run_id, "stage_id": stage_id, "time": now})

    def _reached(self, run_id: int, stage_id: int) -> None:
        """Add the stage of ``stage_id``, just ended ok, to the run's ``run_reach`` bit set."""
        bit = STAGE_BITS.get(self.conn.execute("SELECT stage FROM stages WHERE id = ?", (stage_id,)).fetchone()[0])
        if bit:
            self._write("INSERT INTO run_reach (run_id, stages) VALUES (?, ?)"
                        " ON CONFLICT (run_id) DO UPDATE SET stages = stages | excluded.stages", (run_id, bit))

    def record_cell(
        self, run_id: int, *, kind: str, source: str | None, source_sha256: str | None,
        cell_id: str | None, execution_count: int | None, status: str | None,
    ) -> None:
        """A cell outside any stage (``kind='cell'``) or a kernel restart (``'restart'``) in the lineage."""
        with self.transaction():
            self._insert("cells", {
                "run_id": run_id, "seq": self._next_seq(run_id), "kind": kind, "cell_id": cell_id,
                "execution_count": execution_count, "source": source, "source_sha256": source_sha256,
                "time": time.time(), "status": status,
            })

    def replace_warnings(self, run_id: int, warnings: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Store the run's current integrity warnings. Returns the previous ones when they changed,
        None when nothing changed (and nothing was written)."""
        previous = self.store.warnings(run_id)
        if previous == [{"kind": w["kind"], "stage": w["stage"], "message": w["message"]} for w in warnings]:
            return None
        with self.transaction():
            self._write("DELETE FROM warnings WHERE run_id = ?", (run_id,))
            for w in warnings:
                self._insert("warnings", {
                    "run_id": run_id, "kind": w["kind"], "stage": w["stage"], "message": w["message"],
                    "details": dumps(w.get("details") or {}),
                })
        return previous

    def set_requirement(
        self, run_id: int, *, metric: str, op: str, threshold: float, target: str | None, notes: str | None,
    ) -> None:
        """State (or replace) the run's requirement."""
        self._write(
            "INSERT OR REPLACE INTO requirements (run_id, metric, op, threshold, target, notes, time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, metric, op, threshold, target, notes, time.time()),
        )

    def add_gate(self, run_id: int, gate: Mapping[str, Any], *, stage_id: int | None = None) -> int:
        """A requirement gate's verdict (``metric``, ``op``, ``threshold``, ``value``, ``passed``) for the
        run, outside a stage attempt (a retraining run judges its candidate)."""
        return self._insert("gates", {**gate, "run_id": run_id, "stage_id": stage_id, "time": time.time()})

    # -- registry, deployment, retraining -------------------------------------------------------------

    def add_model_version(
        self, name: str, *, run_id: int | None, artifact_id: int, capture_id: int | None, class_path: str | None,
        description: str | None, stage_id: int | None = None, gate_passed: bool | None = None,
        forced: str | None = None,
    ) -> int:
        """Register the next version of model ``name``; return its number (1, 2, ...). ``stage_id``:
        the stage attempt the model came from; ``gate_passed``: that attempt's gate (None: none);
        ``forced``: the reason it was registered despite a refusal."""
        with self.transaction():
            last = self.conn.execute("SELECT max(version) FROM model_versions WHERE name = ?", (name,)).fetchone()[0]
            version = (last or 0) + 1
            self._insert("model_versions", {
                "name": name, "version": version, "run_id": run_id, "artifact_id": artifact_id,
                "capture_id": capture_id, "class": class_path, "created": time.time(), "description": description,
                "stage_id": stage_id, "gate_passed": None if gate_passed is None else int(bool(gate_passed)),
                "forced": forced,
            })
        return version

    def remove_model_version(self, name: str, version: int) -> None:
        """Remove version ``version`` of model ``name`` that no alias ever named (a promotion that died
        before its package existed); refuses, with :class:`ValueError`, a version an alias moved to."""
        with self.transaction():
            named = self.conn.execute(
                "SELECT count(*) FROM alias_history WHERE name = ? AND version = ?", (name, version)).fetchone()[0]
            if named:
                raise ValueError(f"{name} version {version} was named by an alias; it stays in the registry")
            self._write("DELETE FROM model_versions WHERE name = ? AND version = ?", (name, version))

    def set_alias(
        self, name: str, alias: str, version: int | None, *, by: str | None, run_id: int | None, reason: str | None,
    ) -> int | None:
        """Point ``alias`` of model ``name`` at ``version`` (None removes it) and add a history row.
        Returns the version it pointed at before (None if unset); nothing is written when unchanged."""
        with self.transaction():
            row = self.conn.execute(
                "SELECT version FROM aliases WHERE name = ? AND alias = ?", (name, alias)).fetchone()
            previous = row[0] if row else None
            if previous == version:
                return previous
            if version is None:
                self._write("DELETE FROM aliases WHERE name = ? AND alias = ?", (name, alias))
            else:
                self._write("INSERT OR REPLACE INTO aliases (name, alias, version) VALUES (?, ?, ?)",
                            (name, alias, version))
            self._insert("alias_history", {
                "name": name, "alias": alias, "version": version, "previous_version": previous,
                "time": time.time(), "by": by, "run_id": run_id, "reason": reason,
            })
        return previous

    def record_deployment(
        self, run_id: int, *, source: str, start_time: float, duration: float, summary: Mapping[str, Any],
        manifest: artifacts.Stored,
    ) -> int:
        """Record an export as an ``ok`` ``deployment`` stage attempt of ``run_id``: the stage row,
        the manifest as an artifact (``manifest`` is :meth:`put_bytes`' result) and ``summary`` as
        a ``deployment`` capture. One transaction; returns the stage id."""
        with self.transaction():
            stage_id = self.begin_stage(
                run_id, "deployment", source=source,
                source_sha256=hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest(),
                cell_id=None, execution_count=None, start_time=start_time,
            )
            self._update("stages", stage_id, {"duration": duration, "status": "ok", "variables": dumps([])})
            self._reached(run_id, stage_id)
            artifact_id = self.add_artifact(run_id, "MANIFEST.json", manifest, kind="manifest", stage_id=stage_id)
            self._insert("captures", {
                "run_id": run_id, "stage_id": stage_id, "name": str(summary.get("model", "deployment")),
                "kind": "deployment", "fingerprint": None, "summary": dumps(summary), "artifact_id": artifact_id,
            })
        return stage_id

    def add_drift(self, run_id: int, columns: Iterable[Mapping[str, Any]]) -> None:
        """Record per-column drift of a retraining run in one transaction: each item has ``column``,
        ``kind``, ``statistic``, ``value``, ``verdict`` and ``details`` (``ColumnDrift.to_dict()``)."""
        rows = [(run_id, str(c["column"]), c["kind"], c["statistic"], c.get("value"), c["verdict"],
                 dumps(c.get("details") or {})) for c in columns]
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO drift (run_id, column_name, kind, statistic, value, verdict, details)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    # -- the trust anchor ----------------------------------------------------------------------------

    def add_manifest(
        self, *, package: str, version_dir: str, stored: artifacts.Stored, run_id: int, signature: str | None,
        key_id: str | None, reason: str, model_name: str | None, model_version: int | None,
    ) -> int:
        """Record a MANIFEST.json a package version got (``stored`` is :meth:`put_bytes`' result):
        its bytes as a ``manifest`` artifact of ``run_id`` and a ``manifests`` row, together."""
        with self.transaction():
            artifact_id = self.add_artifact(run_id, "MANIFEST.json", stored, kind="manifest")
            return self._insert("manifests", {
                "package": package, "version_dir": version_dir, "sha256": stored[0], "artifact_id": artifact_id,
                "signature": signature, "key_id": key_id, "reason": reason, "model_name": model_name,
                "model_version": model_version, "run_id": run_id, "time": time.time(),
            })

    # -- serving ---------------------------------------------------------------------------------------

    #: The columns of a ``serving`` row a server's minute fills (the table is migration m008's).
    SERVING_COLUMNS = (
        "package", "version_dir", "model_name", "model_version", "run_id", "minute", "seconds", "requests", "rows",
        "errors", "bad_requests", "latency_p50", "latency_p90", "latency_p99", "latency_max", "predictions", "drift",
        "drift_share", "drifted", "logged_rows", "rows_path", "rows_sha256",
    )

    def add_serving_minute(self, minute: Mapping[str, Any], rows: artifacts.Stored | None = None) -> int:
        """Insert one server process's minute (``minute`` has :data:`SERVING_COLUMNS`; JSON values are
        dumped), with this process's host and pid and, when rows were logged, their stored file."""
        row = {key: minute.get(key) for key in self.SERVING_COLUMNS}
        for key in ("predictions", "drift", "drifted"):
            if row[key] is not None and not isinstance(row[key], str):
                row[key] = dumps(row[key])
        if rows is not None:
            row["rows_sha256"], _, row["rows_path"] = rows
        row.update(host=HOST, pid=os.getpid(), logged_rows=int(row["logged_rows"] or 0))
        return self._insert("serving", row)

    # -- settings and sync bookkeeping ----------------------------------------------------------------

    def set_setting(self, key: str, value: str | None) -> None:
        """Set the store setting ``key`` (None removes it)."""
        if value is None:
            self._write("DELETE FROM settings WHERE key = ?", (key,))
        else:
            self._write("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    def sync_run(self, target: str, run_id: int, **changes: Any) -> None:
        """Create or update what was pushed of run ``run_id`` to ``target`` (columns of ``sync_runs``)."""
        columns = {"remote_id", "metric_rowid", "inflight_rowid", "params", "state"}
        if not set(changes) <= columns:
            raise ValueError(f"unknown sync_runs columns: {sorted(set(changes) - columns)}")
        now = time.time()
        with self.transaction():
            self._write("INSERT OR IGNORE INTO sync_runs (target, run_id, time) VALUES (?, ?, ?)",
                        (target, run_id, now))
            if changes:
                assignments = ", ".join(f"{c} = ?" for c in changes)
                self._write(f"UPDATE sync_runs SET {assignments}, time = ? WHERE target = ? AND run_id = ?",
                            [*changes.values(), now, target, run_id])

    def sync_item(self, target: str, kind: str, key: str, remote: str | None) -> None:
        """Record that item ``key`` of ``kind`` is on ``target`` as ``remote`` (None forgets it)."""
        if remote is None:
            self._write("DELETE FROM sync_items WHERE target = ? AND kind = ? AND key = ?", (target, kind, key))
        else:
            self._write("INSERT OR REPLACE INTO sync_items (target, kind, key, remote, time) VALUES (?, ?, ?, ?, ?)",
                        (target, kind, key, remote, time.time()))
