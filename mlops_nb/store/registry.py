"""Reads of the model registry and of what deployment and retraining recorded: model versions,
aliases and their history, artifacts, exports, drift rows. A mixin of
:class:`mlops_nb.store.reader.Store`; nothing here writes."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


class RegistryReads:
    """Registry queries. Needs ``conn`` and ``rows()`` from the class it is mixed into."""

    conn: sqlite3.Connection

    def artifact(self, artifact_id: int) -> dict[str, Any] | None:
        """The artifact row ``artifact_id`` (``name``, ``kind``, ``sha256``, ``size``, ``path``...), or None."""
        rows = self.rows("SELECT * FROM artifacts WHERE id = ?", (artifact_id,))
        return rows[0] if rows else None



    _VERSIONS_SQL = (
        "SELECT mv.name, mv.version, mv.run_id, mv.artifact_id, mv.capture_id, mv.class, mv.created,"
        " mv.description, mv.stage_id, mv.gate_passed, mv.forced,"
        " (SELECT group_concat(alias, ',') FROM (SELECT alias FROM aliases"
        " WHERE aliases.name = mv.name AND aliases.version = mv.version ORDER BY alias)) AS aliases"
        " FROM model_versions AS mv"
    )

    def model_versions(self, name: str | None = None) -> list[dict[str, Any]]:
        """Registered versions (of ``name``, or all), by name then version; ``aliases`` is a list."""
        where, args = ("WHERE mv.name = ?", [name]) if name is not None else ("", [])
        rows = self.rows(f"{self._VERSIONS_SQL} {where} ORDER BY mv.name, mv.version", args)
        for row in rows:
            row["aliases"] = row["aliases"].split(",") if row["aliases"] else []
        return rows

    def model_version(self, name: str, version: int) -> dict[str, Any] | None:
        """Version ``version`` of model ``name`` as :meth:`model_versions` gives it, or None."""
        rows = self.rows(f"{self._VERSIONS_SQL} WHERE mv.name = ? AND mv.version = ?", (name, version))
        if not rows:
            return None
        rows[0]["aliases"] = rows[0]["aliases"].split(",") if rows[0]["aliases"] else []
        return rows[0]

    def aliases(self, name: str) -> dict[str, int]:
        """Model ``name``'s aliases: ``{alias: version}``."""
        return dict(self.conn.execute("SELECT alias, version FROM aliases WHERE name = ?", (name,)).fetchall())


    def alias_history(self, name: str) -> list[dict[str, Any]]:
        """Every move of an alias of model ``name``, oldest first."""
        return self.rows("SELECT * FROM alias_history WHERE name = ? ORDER BY id", (name,))


    def deployments(self, name: str) -> list[dict[str, Any]]:
        """The exports of model ``name`` (newest first): ``run_id``, ``path``, ``version``, ``time``."""
        return self.rows(
            "SELECT captures.run_id, json_extract(captures.summary, '$.path') AS path,"
            " json_extract(captures.summary, '$.version') AS version, stages.start_time AS time"
            " FROM captures JOIN stages ON stages.id = captures.stage_id"
            " WHERE captures.kind = 'deployment' AND captures.name = ? ORDER BY captures.id DESC",
            (name,))

    def drift(self, run_id: int) -> list[dict[str, Any]]:
        """The run's drift rows (``column_name``, ``kind``, ``statistic``, ``value``, ``verdict``,
        ``details`` parsed), in the order they were checked."""
        rows = self.rows(
            "SELECT column_name, kind, statistic, value, verdict, details FROM drift WHERE run_id = ? ORDER BY id",
            (run_id,))
        for row in rows:
            row["details"] = json.loads(row["details"]) if row["details"] else {}
        return rows

    def manifests(self, package: str, version_dir: str) -> list[dict[str, Any]]:
        """Every manifest recorded for version ``version_dir`` of package ``package`` (its absolute
        root), newest first: ``sha256``, ``artifact_id``, ``signature``, ``key_id``, ``reason``..."""
        return self.rows("SELECT * FROM manifests WHERE package = ? AND version_dir = ? ORDER BY id DESC",
                         (package, version_dir))
