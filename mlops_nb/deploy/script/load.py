"""A package's retrain.py loaded as a module, to call its ``notebook_data`` and ``prepare``."""

from __future__ import annotations

import os
import types
from pathlib import Path

from mlops_nb.deploy.layout import SCRIPT_FILE, package_dir


def load_script(package: str | os.PathLike) -> types.ModuleType:
    """The package's retrain.py as a module (its ``prepare``, ``notebook_data``, ``DATA_FRAMES``...),
    without running its ``__main__`` block and without writing ``__pycache__`` into the package."""
    return load_script_file(package_dir(package) / SCRIPT_FILE)


def load_script_file(path: str | os.PathLike) -> types.ModuleType:
    """The retrain.py at ``path`` as a module, without running its ``__main__`` block."""
    path = Path(path)
    module = types.ModuleType(f"mlops_nb_package_{abs(hash(str(path)))}")
    module.__file__ = str(path)
    source = path.read_text(encoding="utf-8")
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - the package's own script
    return module
