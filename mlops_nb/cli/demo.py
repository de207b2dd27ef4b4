"""The main job, for a first-time user: the quickstart notebook through every stage, its export, and
one retraining run on fresh data, all recorded in one store.

``mlops-nb demo [--dir DIR]`` runs it; nothing here is needed by the rest of mlops-nb.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import click

import mlops_nb
from mlops_nb import store as store_module
from mlops_nb import tracking
from mlops_nb.cli.headless import this_python_kernel_manager
from mlops_nb.cli.main import main
from mlops_nb.cli.render import emit_frame

NOTEBOOK = "quickstart.ipynb"
PACKAGE = Path("deploy") / "breast-cancer"


def quickstart_notebook() -> Path:
    """The bundled quickstart: inside the installed package, or ``notebooks/`` in a source checkout."""
    here = Path(mlops_nb.__file__).parent
    for candidate in (here / "notebooks" / NOTEBOOK, here.parent / "notebooks" / NOTEBOOK):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"the quickstart notebook is missing from {here}; reinstall mlops-nb")


def run_notebook(path: Path, store: Path, *, timeout: int = 600) -> None:
    """Execute ``path`` in place in a fresh kernel of this interpreter, in the notebook's folder."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ["MLOPS_NB_STORE"] = str(store)
    with tempfile.TemporaryDirectory(prefix="mlops-nb-kernel-") as sockets:
        # Unix sockets where there are any: the kernel then has no TCP port to warn about, and nothing
        # else on the machine can connect to it. The socket path is absolute because the kernel runs
        # in the notebook's folder, not in ours.
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
            kernel_manager_class=this_python_kernel_manager(sockets if os.name == "posix" else None),
        )
        try:
            client.execute()
        finally:
            nbformat.write(nb, path)


def fresh_data(path: Path, *, rows: int = 800, seed: int = 7) -> Path:
    """This week's data for the retraining run: patients resampled from the bundled dataset with a
    little measurement noise, in the shape the notebook's data stage produced."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = (frame["target"] == 0).astype(int)
    rng = np.random.default_rng(seed)
    sample = frame.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
    features = sample.columns.drop("target")
    sample[features] = sample[features] * rng.normal(1.0, 0.02, size=(rows, len(features)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sample.to_csv(path, index=False)
    return path


def retrain_once(folder: Path, data: Path, store: Path) -> int:
    """Run the exported job exactly as its cron line does: this interpreter, in the package root,
    through mlops-nb's verifying entry point (the package is checked before any of it runs)."""
    from mlops_nb.deploy.layout import package_root

    root = package_root(folder / PACKAGE)
    env = {**os.environ, "MLOPS_NB_STORE": str(store)}
    completed = subprocess.run(
        [sys.executable, "-P", "-m", "mlops_nb", "retrain", str(root), "--data", str(data)],
        cwd=root, env=env, check=False,
    )
    return completed.returncode


def run(folder: Path, echo: Callable[[str], None] = print) -> int:
    """The whole demo in ``folder``; returns the retraining job's exit code."""
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "mlops.db"
    notebook = folder / NOTEBOOK
    shutil.copyfile(quickstart_notebook(), notebook)
    shutil.rmtree(folder / PACKAGE, ignore_errors=True)

    started = time.perf_counter()
    echo(f"1/3 running {notebook} headless (requirements -> data -> eda -> features -> selection -> model"
         " -> tuning -> validation -> deployment)")
    run_notebook(notebook, store)
    echo(f"    done in {time.perf_counter() - started:.0f} s; outputs saved in the notebook, package in"
         f" {folder / PACKAGE}")

    data = fresh_data(folder / "incoming" / "week-2.csv")
    echo(f"2/3 fresh data: {data}")
    echo("3/3 retraining as cron would (drift check, retrain, gate, champion vs candidate):")
    code = retrain_once(folder, data, store)
    echo(f"    retraining exited {code}")
    return code


def command_name() -> str:
    """How to type ``mlops-nb`` again from here: the bare name when it is on PATH (an activated
    virtual environment), else the script beside this interpreter (``.venv/bin/mlops-nb``)."""
    beside = Path(sys.executable).parent / "mlops-nb"
    if shutil.which("mlops-nb") == str(beside) or not beside.exists():
        return "mlops-nb"
    try:
        return str(beside.relative_to(Path.cwd()))
    except ValueError:
        return str(beside)


# -- the command ------------------------------------------------------------------------------

@main.command(short_help="The main job: the quickstart notebook, its export, and one retraining run.")
@click.option("--dir", "folder", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              default=Path("mlops-demo"), show_default=True,
              help="Where the demo works: the notebook, its store DIR/mlops.db, the package, the fresh data.")
@click.pass_context
def demo(ctx: click.Context, folder: Path) -> None:
    """Run the whole lifecycle once, as a data scientist and then cron would.

    \b
    1. Executes the quickstart notebook headless in a fresh kernel: requirements,
       data, eda, features, selection, model, tuning (a small grid search),
       validation against f1 >= 0.95; registers the tuned model and exports it.
    2. Writes a week of fresh data (resampled from scikit-learn's bundled breast
       cancer data).
    3. Retrains on it exactly as the cron line would: drift check, retrain, gate,
       champion against candidate, promote or keep.

    Everything is recorded in DIR/mlops.db; the executed notebook stays in DIR.

    \b
    Examples:
      mlops-nb demo
      mlops-nb demo --dir /tmp/mlops-demo
    """
    if ctx.obj["store"] is not None:
        raise click.UsageError("the demo keeps its store in DIR/mlops.db: give --dir, not --store")
    missing = [name for name in ("nbclient", "ipykernel") if importlib.util.find_spec(name) is None]
    if missing:  # the lean runtime (`pip install mlops-nb`) has no notebook stack
        raise click.ClickException(f"the demo runs a notebook, which needs {' and '.join(missing)}: install "
                                   f"mlops-nb with its notebook stack, pip install \"mlops-nb[jupyter]\"")
    code = run(folder.absolute(), echo=click.echo)
    store = folder.absolute() / store_module.DEFAULT_FILENAME
    click.echo()
    emit_frame(tracking.runs(store=store)[["run_id", "project", "name", "kind", "status", "metrics.f1"]], "table")
    click.echo()
    click.echo(f"Store: {store}")
    prefix = f"{shlex.quote(command_name())} --store {shlex.quote(str(store))}"
    click.echo(f"Look further: `{prefix} show 1`, `{prefix} models`, or open {folder / 'quickstart.ipynb'}"
               " in JupyterLab and its MLOps sidebar.")
    if code not in (0, 99):
        raise SystemExit(code)
