"""The store's schema, as named migrations applied once each, in order, inside a transaction.

A new table or column is a new function at the end of this file; never edit one that has shipped.
Times are Unix seconds (REAL); JSON columns hold text. The README documents every table.
"""

from __future__ import annotations

import sqlite3

from sqlite_utils.migrations import Migrations

migrations = Migrations("mlops_nb")


def _script(db, script: str) -> None:
    """Run each statement of ``script`` inside the caller's transaction (``executescript`` would
    commit it first)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""


@migrations()
def m001_core(db) -> None:
    """Projects, runs, params, metrics, tags, artifacts: what the tracking API writes."""
    _script(
        db,
        """
        CREATE TABLE projects (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created REAL NOT NULL
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            project_id INTEGER NOT NULL REFERENCES projects(id),
            name TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'notebook' CHECK (kind IN ('notebook', 'retraining', 'script')),
            parent_id INTEGER REFERENCES runs(id),
            status TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
            start_time REAL NOT NULL,
            end_time REAL,
            error TEXT,
            host TEXT,
            pid INTEGER,
            pid_start TEXT,
            notebook TEXT,
            kernel TEXT,
            git_commit TEXT,
            git_dirty INTEGER,
            environment TEXT
        );
        CREATE INDEX runs_project ON runs(project_id, start_time);
        CREATE INDEX runs_running ON runs(status) WHERE status = 'running';
        CREATE INDEX runs_parent ON runs(parent_id) WHERE parent_id IS NOT NULL;

        CREATE TABLE params (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            key TEXT NOT NULL,
            value,
            time REAL NOT NULL,
            PRIMARY KEY (run_id, key)
        ) WITHOUT ROWID;
        CREATE TABLE param_history (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            key TEXT NOT NULL,
            value,
            time REAL NOT NULL,
            replaced REAL NOT NULL
        );
        CREATE TRIGGER params_keep_history AFTER UPDATE OF value ON params
        WHEN old.value IS NOT new.value
        BEGIN
            INSERT INTO param_history (run_id, key, value, time, replaced)
            VALUES (old.run_id, old.key, old.value, old.time, new.time);
        END;

        -- Append-only: the row with the highest rowid per (run_id, key) is the latest value.
        -- NaN is stored as NULL (SQLite has no NaN) and read back as NaN.
        CREATE TABLE metrics (
            run_id INTEGER NOT NULL,
            key TEXT NOT NULL,
            step INTEGER NOT NULL,
            value REAL,
            time REAL NOT NULL
        );
        CREATE INDEX metrics_run_key ON metrics(run_id, key);
        CREATE VIEW latest_metrics AS
            SELECT run_id, key, step, value, time FROM metrics
            WHERE rowid IN (SELECT max(rowid) FROM metrics GROUP BY run_id, key);

        CREATE TABLE tags (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            key TEXT NOT NULL,
            value TEXT,
            PRIMARY KEY (run_id, key)
        ) WITHOUT ROWID;

        CREATE TABLE artifacts (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            stage_id INTEGER REFERENCES stages(id),
            name TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'file',
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            path TEXT NOT NULL,
            created REAL NOT NULL
        );
        CREATE INDEX artifacts_run ON artifacts(run_id);
        """
    )


@migrations()
def m002_lifecycle(db) -> None:
    """Stages, the cells around them, what they captured, requirements, gates, integrity warnings."""
    _script(
        db,
        """
        CREATE TABLE stages (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            seq INTEGER NOT NULL,
            stage TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            cell_id TEXT,
            execution_count INTEGER,
            source TEXT NOT NULL,
            source_sha256 TEXT NOT NULL,
            start_time REAL NOT NULL,
            duration REAL,
            status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'error')),
            error TEXT,
            variables TEXT
        );
        CREATE INDEX stages_run ON stages(run_id, seq);

        -- Cells outside any stage that ran during a run, and kernel restarts: the run's lineage.
        CREATE TABLE cells (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL DEFAULT 'cell' CHECK (kind IN ('cell', 'restart')),
            cell_id TEXT,
            execution_count INTEGER,
            source TEXT,
            source_sha256 TEXT,
            time REAL NOT NULL,
            status TEXT
        );
        CREATE INDEX cells_run ON cells(run_id, seq);

        CREATE TABLE captures (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            stage_id INTEGER REFERENCES stages(id),
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            fingerprint TEXT,
            summary TEXT NOT NULL,
            artifact_id INTEGER REFERENCES artifacts(id)
        );
        CREATE INDEX captures_run ON captures(run_id);

        CREATE TABLE candidates (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            capture_id INTEGER NOT NULL REFERENCES captures(id),
            rank INTEGER,
            params TEXT NOT NULL,
            mean_score REAL,
            std_score REAL
        );
        CREATE INDEX candidates_capture ON candidates(capture_id);

        CREATE TABLE requirements (
            run_id INTEGER PRIMARY KEY REFERENCES runs(id),
            metric TEXT NOT NULL,
            op TEXT NOT NULL,
            threshold REAL NOT NULL,
            target TEXT,
            notes TEXT,
            time REAL NOT NULL
        );

        CREATE TABLE gates (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            stage_id INTEGER REFERENCES stages(id),
            metric TEXT NOT NULL,
            op TEXT NOT NULL,
            threshold REAL NOT NULL,
            value REAL,
            passed INTEGER NOT NULL,
            time REAL NOT NULL
        );
        CREATE INDEX gates_run ON gates(run_id);

        CREATE TABLE warnings (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            kind TEXT NOT NULL,
            stage TEXT,
            message TEXT NOT NULL,
            details TEXT
        );
        CREATE INDEX warnings_run ON warnings(run_id);
        """
    )


@migrations()
def m003_registry_and_retraining(db) -> None:
    """Model versions and aliases with their history; per-column drift of retraining runs."""
    _script(
        db,
        """
        CREATE TABLE model_versions (
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            run_id INTEGER REFERENCES runs(id),
            artifact_id INTEGER REFERENCES artifacts(id),
            capture_id INTEGER REFERENCES captures(id),
            class TEXT,
            created REAL NOT NULL,
            description TEXT,
            PRIMARY KEY (name, version)
        );
        CREATE TABLE aliases (
            name TEXT NOT NULL,
            alias TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (name, alias)
        ) WITHOUT ROWID;
        CREATE TABLE alias_history (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            alias TEXT NOT NULL,
            version INTEGER,
            previous_version INTEGER,
            time REAL NOT NULL,
            by TEXT,
            run_id INTEGER,
            reason TEXT
        );
        CREATE TABLE drift (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            column_name TEXT NOT NULL,
            kind TEXT NOT NULL,
            statistic TEXT NOT NULL,
            value REAL,
            verdict TEXT NOT NULL,
            details TEXT
        );
        CREATE INDEX drift_run ON drift(run_id);
        """
    )


@migrations()
def m004_ended_metrics(db) -> None:
    """The latest value of each metric of each ended run, written once when the run ends.

    ``runs()`` reads these instead of aggregating every metric row ever logged (per-epoch histories
    make that grow without bound); only running runs are aggregated live.
    """
    _script(
        db,
        """
        CREATE TABLE ended_metrics (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            key TEXT NOT NULL,
            step INTEGER NOT NULL,
            value REAL,
            time REAL NOT NULL,
            PRIMARY KEY (run_id, key)
        ) WITHOUT ROWID;
        INSERT INTO ended_metrics (run_id, key, step, value, time)
            SELECT run_id, key, step, value, time FROM metrics WHERE rowid IN
            (SELECT max(rowid) FROM metrics WHERE run_id IN (SELECT id FROM runs WHERE status != 'running')
             GROUP BY run_id, key);
        """,
    )


@migrations()
def m005_end_reason(db) -> None:
    """Why a run ended: ``explicit`` (end() or %mlops end), ``kernel exit`` (its notebook's kernel shut
    down; a restarted kernel resumes it), ``process gone`` (marked interrupted later)."""
    db.execute("ALTER TABLE runs ADD COLUMN end_reason TEXT")


@migrations()
def m006_trust_and_registry(db) -> None:
    """The trust anchor and what a model version came from.

    ``manifests``: every MANIFEST.json a package version ever gets (export, promotion by retraining,
    reseal), with its SHA-256 and, when signed, its ed25519 signature and the signing key's
    fingerprint. Verification compares a package on disk with these rows before anything in it is
    loaded or run. ``model_versions`` learns the stage attempt a version came from, that attempt's
    gate (1 passed, 0 failed, NULL none) and, for a version registered despite a refusal, the reason.
    """
    _script(
        db,
        """
        CREATE TABLE manifests (
            id INTEGER PRIMARY KEY,
            package TEXT NOT NULL,
            version_dir TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            artifact_id INTEGER REFERENCES artifacts(id),
            signature TEXT,
            key_id TEXT,
            reason TEXT NOT NULL,
            model_name TEXT,
            model_version INTEGER,
            run_id INTEGER REFERENCES runs(id),
            time REAL NOT NULL
        );
        CREATE INDEX manifests_package ON manifests(package, version_dir);
        CREATE INDEX manifests_sha256 ON manifests(sha256);
        ALTER TABLE model_versions ADD COLUMN stage_id INTEGER;
        ALTER TABLE model_versions ADD COLUMN gate_passed INTEGER;
        ALTER TABLE model_versions ADD COLUMN forced TEXT;
        """,
    )


@migrations()
def m007_run_summaries(db) -> None:
    """Each ended run's params, latest metrics and tags packed in one row (:mod:`mlops_nb.store.summaries`).

    ``runs()`` reads one row per run from here instead of one row per value (two million rows for
    100,000 runs of 10 params and 10 metrics); the writer packs a run when it ends and re-packs it
    when its params or tags change afterwards. Existing ended runs are packed here, a few thousand
    runs at a time. ``runs_by_project`` (project, id) serves the sidebar's pages in id order
    without sorting the whole project.
    """
    from mlops_nb.store.summaries import pack

    db.execute(
        "CREATE TABLE run_summaries (run_id INTEGER PRIMARY KEY REFERENCES runs(id), keys TEXT NOT NULL,"
        " texts TEXT NOT NULL, metrics BLOB NOT NULL)"
    )
    db.execute("CREATE INDEX runs_by_project ON runs(project_id, id)")
    ended = [row[0] for row in db.execute("SELECT id FROM runs WHERE status != 'running' ORDER BY id").fetchall()]
    for start in range(0, len(ended), 5000):
        chunk = ended[start:start + 5000]
        lo, hi = chunk[0], chunk[-1]
        found: dict[int, tuple[list, list, list]] = {run_id: ([], [], []) for run_id in chunk}
        for slot, table in enumerate(("params", "ended_metrics", "tags")):
            for run_id, key, value in db.execute(
                f"SELECT run_id, key, value FROM {table} WHERE run_id BETWEEN ? AND ?", (lo, hi)
            ).fetchall():
                if run_id in found:
                    found[run_id][slot].append((key, value))
        for run_id, (params, metrics, tags) in found.items():
            db.execute(
                "INSERT INTO run_summaries (run_id, keys, texts, metrics) VALUES (?, ?, ?, ?)",
                (run_id, *pack(params, metrics, tags)),
            )


@migrations()
def m008_serving(db) -> None:
    """What ``mlops-nb serve`` saw, one row per server process per minute: traffic, latency, errors,
    the prediction distribution and a drift sketch of the inputs against the package's reference.

    ``run_id`` is the notebook run the served package came from, so a run's view shows its traffic
    beside its retraining runs. ``rows_path`` / ``rows_sha256``: the rows logged that minute
    (``--log-rows``), a content-addressed CSV under ``mlops-artifacts/``.
    """
    _script(
        db,
        """
        CREATE TABLE serving (
            id INTEGER PRIMARY KEY,
            package TEXT NOT NULL,
            version_dir TEXT,
            model_name TEXT,
            model_version INTEGER,
            run_id INTEGER,
            minute REAL NOT NULL,
            seconds REAL NOT NULL,
            host TEXT,
            pid INTEGER,
            requests INTEGER NOT NULL,
            rows INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            bad_requests INTEGER NOT NULL,
            latency_p50 REAL,
            latency_p90 REAL,
            latency_p99 REAL,
            latency_max REAL,
            predictions TEXT,
            drift TEXT,
            drift_share REAL,
            drifted TEXT,
            logged_rows INTEGER NOT NULL DEFAULT 0,
            rows_path TEXT,
            rows_sha256 TEXT
        );
        CREATE INDEX serving_package ON serving(package, minute);
        CREATE INDEX serving_run ON serving(run_id, minute);
        """,
    )


@migrations()
def m009_sync(db) -> None:
    """What the store pushed to an MLflow tracking server, and the store's settings.

    ``settings``: small key/value pairs of the store (``mlflow_uri``: push automatically when a run
    ends; ``store_uuid``: this store's identity, part of the tag that finds a pushed run again).
    ``sync_runs``: per target (the tracking URI) and local run, the MLflow run id (NULL while its
    creation is in flight: a sync killed then looks the run up by its tag), the highest metric rowid
    acknowledged by the server, the rowid range of a batch in flight (checked against the server's
    history on resume, so a re-sent batch never duplicates a value) and a digest of what else was
    pushed (params, tags, status, generated artifacts). ``sync_items``: experiments, artifacts,
    model versions and aliases pushed, each once.
    """
    _script(
        db,
        """
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT
        ) WITHOUT ROWID;
        INSERT INTO settings (key, value) VALUES ('store_uuid', lower(hex(randomblob(16))));
        CREATE TABLE sync_runs (
            target TEXT NOT NULL,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            remote_id TEXT,
            metric_rowid INTEGER NOT NULL DEFAULT 0,
            inflight_rowid INTEGER,
            params TEXT,
            state TEXT,
            time REAL NOT NULL,
            PRIMARY KEY (target, run_id)
        ) WITHOUT ROWID;
        CREATE TABLE sync_items (
            target TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            remote TEXT,
            time REAL NOT NULL,
            PRIMARY KEY (target, kind, key)
        ) WITHOUT ROWID;
        """,
    )


@migrations()
def m010_run_reach(db) -> None:
    """``run_reach``: per run, the stages that ended ok at least once, as a bit set (``STAGE_BITS``).

    The comparison table shows each run's stage count and the furthest stage reached; aggregated
    from ``stages`` (whose rows carry each cell's source) that cost 0.6 s at 100,000 runs. The
    writer now ORs a stage's bit in when it ends ok; existing runs are filled here from ``stages``.
    """
    bits = {"requirements": 1, "data": 2, "eda": 4, "features": 8, "selection": 16, "model": 32,
            "tuning": 64, "validation": 128, "deployment": 256, "retraining": 512}  # frozen: STAGE_BITS at m010
    case = " ".join(f"WHEN '{stage}' THEN {bit}" for stage, bit in bits.items())
    db.execute("CREATE TABLE run_reach (run_id INTEGER PRIMARY KEY REFERENCES runs(id), stages INTEGER NOT NULL)")
    db.execute(
        f"INSERT INTO run_reach (run_id, stages) SELECT run_id, sum(DISTINCT CASE stage {case} END) FROM stages"
        " WHERE status = 'ok' AND stage IN (" + ", ".join(f"'{stage}'" for stage in bits) + ") GROUP BY run_id"
    )
