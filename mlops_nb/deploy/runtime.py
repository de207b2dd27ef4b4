"""What an exported ``retrain.py`` calls: :func:`main` (the retraining command, run on the package
version the script belongs to) and :func:`working_dir` (the notebook's data step runs from the
notebook's folder). Importing this module is cheap; the job loads when :func:`main` runs."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

Prepare = Callable[[dict[str, Any]], tuple[Any, Any]]
NotebookData = Callable[[], dict[str, Any]]


def main(script_file: str | os.PathLike, *, prepare: Prepare, notebook_data: NotebookData | None = None,
         argv: Sequence[str] | None = None) -> int:
    """Run ``retrain.py [--data SOURCE] [--query SQL] [--force]`` (``argv``, default the process's
    arguments) for the package version holding ``script_file``; return the exit status. The same
    click command as ``mlops-nb retrain`` (:mod:`mlops_nb.deploy.retrain.command`)."""
    import click

    from mlops_nb.deploy.retrain.command import retrain_command

    command = retrain_command(script_file=script_file, prepare=prepare, notebook_data=notebook_data)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = command.main(args, prog_name=Path(script_file).name, standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        return 1
    return int(code or 0)


@contextlib.contextmanager
def working_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Run a block from folder ``path`` (the notebook's), then come back: retrain.py runs the
    notebook's data step this way, so its relative paths mean what they meant in the notebook.
    Only ever entered in a process of the package's own (retrain.py, or export's replay), never
    in a notebook's kernel."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield Path(path)
    finally:
        os.chdir(before)
