"""Cheap guards against the README rotting: every table, CLI command and %mlops sub-command is documented."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

README = (Path(__file__).parent.parent / "README.md").read_text()
SCHEMA = README.split("## The store", 1)[1]


def test_every_store_table_and_view_is_documented(tmp_path):
    from mlops_nb.store import open_store

    store = open_store(tmp_path / "mlops.db", create=True)
    names = [r[0] for r in sqlite3.connect(store.path).execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'")]
    assert names, "the store has no tables"
    missing = [name for name in names if f"| `{name}`" not in SCHEMA]
    assert not missing, f"tables missing from the README's schema: {missing}"


def test_every_table_column_is_documented(tmp_path):
    from mlops_nb.store import open_store

    conn = sqlite3.connect(open_store(tmp_path / "mlops.db", create=True).path)
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\'")]
    for table in tables:
        row = next(line for line in SCHEMA.splitlines() if line.startswith(f"| `{table}`"))
        for (column,) in conn.execute(f"SELECT name FROM pragma_table_info('{table}')"):
            assert f"`{column}`" in row, f"column {table}.{column} is not in the README's schema"


def test_every_cli_command_is_documented():
    from mlops_nb.cli import load_all, main

    load_all()
    missing = [name for name in main.commands if not re.search(rf"mlops-nb {name}\b", README)]
    assert not missing, f"CLI commands missing from the README: {missing}"


def test_every_mlops_subcommand_is_documented_in_the_readme_and_in_the_magic_help():
    from mlops_nb.notebook.magics import SUBCOMMANDS, MlopsMagics

    help_text = MlopsMagics.mlops.__doc__
    for name in SUBCOMMANDS:
        assert f"`%mlops {name}" in README, f"%mlops {name} is not in the README"
        assert f"%mlops {name}" in help_text, f"%mlops {name} is not in %mlops?"
