"""A package's retrain.py loaded as a module, once the package is verified, to call its
``notebook_data`` and ``prepare``."""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any

from mlops_nb.deploy.layout import SCRIPT_FILE, package_dir
from mlops_nb.deploy.verify import verify


def load_script(package: str | os.PathLike, *, verified: bool = False, store: Any = None,
                public_key: str | os.PathLike | None = None) -> types.ModuleType:
    """The package's retrain.py as a module (its ``prepare``, ``notebook_data``, ``DATA_FRAMES``...),
    without running its ``__main__`` block and without writing ``__pycache__`` into the package.

    The package is verified first (:func:`mlops_nb.deploy.verify.verify`, against ``store`` and
    ``public_key``): none of its code runs before that, unless the caller has just verified it
    (``verified=True``)."""
    folder = package_dir(package)
    if not verified:
        verify(folder, store=store, public_key=public_key)
    return load_script_file(folder / SCRIPT_FILE)


def load_script_file(path: str | os.PathLike) -> types.ModuleType:
    """The retrain.py at ``path`` as a module, without running its ``__main__`` block."""
    path = Path(path)
    module = types.ModuleType(f"mlops_nb_package_{abs(hash(str(path)))}")
    module.__file__ = str(path)
    source = path.read_text(encoding="utf-8")
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - the package's own script
    return module
