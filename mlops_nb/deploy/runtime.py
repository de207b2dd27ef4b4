"""What an exported ``retrain.py`` and ``features.py`` call: :func:`guard` (its first executable line:
verify the package before any of its code runs), :func:`main` (the retraining command, run on the
package version the script belongs to), :func:`working_dir` (the notebook's data step runs from the
notebook's folder) and :func:`bind_rows` (raw rows as the data stage's frames). Importing this
module is cheap; the job loads when :func:`main` runs."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

Prepare = Callable[[dict[str, Any]], tuple[Any, Any]]
NotebookData = Callable[[], dict[str, Any]]


def guard(script_file: str | os.PathLike, module_name: str, argv: Sequence[str] | None = None) -> None:
    """Verify the package holding ``script_file`` before the script's own imports and functions run,
    when it runs as a program (``python retrain.py``); exit 82 with one line when it does not verify.
    Loaded as a module (``python -m mlops_nb retrain``, :mod:`mlops_nb.deploy.script.load`), the
    package was verified by the loader. The pinned key is ``--public-key PATH`` among the arguments,
    else ``$MLOPS_NB_PUBLIC_KEY``."""
    if module_name != "__main__":
        return
    from mlops_nb.deploy.exits import EXIT_INTEGRITY
    from mlops_nb.deploy.verify import verify
    from mlops_nb.errors import MlopsError

    args = list(sys.argv[1:] if argv is None else argv)
    pinned = next((a.split("=", 1)[1] for a in args if a.startswith("--public-key=")), None)
    if "--public-key" in args and args.index("--public-key") + 1 < len(args):
        pinned = args[args.index("--public-key") + 1]
    try:
        verify(Path(script_file).resolve().parent, store=os.environ.get("MLOPS_NB_STORE") or None, public_key=pinned)
    except MlopsError as exc:
        print(f"mlops-nb retrain: exit {EXIT_INTEGRITY} (integrity): integrity check failed: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_INTEGRITY) from None


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


def bind_rows(rows: Any, binding: dict[str, Any], target: str, columns: Sequence[str]) -> dict[str, Any]:
    """Rows without the target as the frames the notebook's data stage produced, by name, for a
    package's features.py: one frame with the target column back in its place (all missing, so a
    line that uses it shows at export), or an input frame and a target series of missing values."""
    import numpy as np
    import pandas as pd

    if binding["mode"] == "frame":
        # the data stage's columns in order, the target all missing (float64, as an assigned NaN
        # would be), a new frame whatever features.py then changes in place; a copy and an insert,
        # not a reindex, which costs a one-row request 0.06 ms more
        given = rows.drop(columns=[target]) if target in rows.columns else rows
        present = set(given.columns)
        names = [c for c in columns if c in present or c == target]
        kept = [c for c in names if c != target]
        frame = given.copy() if given.columns.tolist() == kept else given[kept].copy()
        if target in names:
            frame.insert(names.index(target), target, np.nan)
        return {binding["frame"]: frame}
    frame = rows.copy()
    return {binding["X"]: frame, binding["y"]: pd.Series(np.nan, index=frame.index, name=target)}
