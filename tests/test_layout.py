"""The shape of the package, as ARCHITECTURE.md describes it: guards that fail when it erodes."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import mlops_nb
from mlops_nb import errors

PACKAGE = Path(mlops_nb.__file__).parent
#: "Small modules (about 600 lines at most)": a module past this is doing two jobs.
MAX_LINES = 650


def test_every_error_a_user_can_catch_is_exported_from_mlops_nb():
    classes = [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
               if issubclass(obj, errors.MlopsError) and obj.__module__ == errors.__name__]
    assert len(classes) >= 10
    for cls in classes:
        assert cls.__name__ in mlops_nb.__all__, f"{cls.__name__} is not in mlops_nb.__all__"
        assert getattr(mlops_nb, cls.__name__) is cls


def test_the_package_ships_type_information():
    assert (PACKAGE / "py.typed").is_file()


def test_no_module_is_over_the_size_that_says_it_does_two_jobs():
    sizes = {path.relative_to(PACKAGE.parent).as_posix(): len(path.read_text().splitlines())
             for path in PACKAGE.rglob("*.py")}
    too_big = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_big, f"modules over {MAX_LINES} lines (split them by owner): {too_big}"


def test_importing_mlops_nb_loads_no_heavy_library():
    code = ("import sys, mlops_nb, mlops_nb.tracking, mlops_nb.store\n"
            "heavy = ['pandas', 'sklearn', 'IPython', 'ipywidgets', 'sqlite_utils', 'scipy']\n"
            "print(','.join(m for m in heavy if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"import mlops_nb loaded {loaded}"
