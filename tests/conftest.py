"""Fixtures every test gets: no test writes ``./mlops.db``, and every store a test opened is closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_nb import store as store_module


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path_factory, monkeypatch):
    """Point ``$MLOPS_NB_STORE`` at a scratch file, so code that falls back on the default store
    (``./mlops.db`` otherwise) writes there; close every store the test opened afterwards."""
    default = tmp_path_factory.mktemp("default-store") / "mlops.db"
    monkeypatch.setenv(store_module.ENV_VAR, str(default))
    yield default
    store_module.close_all()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """A path for a fresh store (the file does not exist yet)."""
    return tmp_path / "mlops.db"


@pytest.fixture
def shell(tmp_path: Path, monkeypatch):
    """An in-process IPython shell with mlops-nb loaded, working in ``tmp_path`` with its store there."""
    from shell_helpers import Shell

    monkeypatch.chdir(tmp_path)
    opened = Shell(tmp_path / "mlops.db", tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def exported(shell, tmp_path):
    """The shell's full lifecycle registered as ``churn`` and exported to ``tmp_path/deploy/churn``:
    the package root, the store, the folder, and a path a tampered package would write to."""
    import mlops_nb as mnb

    shell.lifecycle()
    mnb.register("clf", "churn")
    root = tmp_path / "deploy" / "churn"
    mnb.export("churn", to=root)
    return {"root": root, "store": shell.store, "marker": tmp_path / "MARKER", "folder": tmp_path}
