"""``mlops-nb check``: run a notebook headless and judge the run it recorded (stages, gate,
integrity, the champion), with reports for pull requests, CI systems and scripts; ``mlops-nb ci
init`` writes the workflow that runs it. The work is in :mod:`mlops_nb.cli.headless` (running),
:mod:`mlops_nb.tracking.judgement` (judging) and :mod:`mlops_nb.cli.check_report` (reports).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import click

from mlops_nb import store as store_module
from mlops_nb.cli.main import main
from mlops_nb.errors import MlopsError, RunNotFound

#: Exit statuses of bad input (the judgement's own are :data:`mlops_nb.tracking.judgement.OUTCOMES`).
INPUT_EXITS = {"not a notebook": 46, "no load_ext": 47, "no stage": 48, "report path": 49, "unknown run": 1}
DEFAULT_TIMEOUT = 600


def _fail(ctx: click.Context, message: str, reason: str) -> None:
    click.echo(f"error: {message}", err=True)
    ctx.exit(INPUT_EXITS[reason])


def _check_output(path: Path) -> str | None:
    """Why a report cannot be written at ``path``, or None."""
    if path.is_dir():
        return f"the report path {path} is a folder; give a file name such as {path / 'report.md'}"
    folder = path.parent
    if not folder.is_dir():
        return f"cannot write the report {path}: its folder {folder} does not exist or is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"cannot write the report {path}: permission denied; choose a writable path"
    return None


def choose_store(explicit: str | None, named: str | None, folder: Path) -> tuple[Path, bool]:
    """The store a check records into and whether it is a fresh temporary one: ``--store``, else the
    store the notebook names (``%mlops start --store``, relative to its folder), else
    ``$MLOPS_NB_STORE``, else the notebook folder's ``mlops.db`` when it exists, else a new one in a
    temporary folder (kept, so the report's store can be opened)."""
    if explicit:
        return Path(explicit).expanduser().absolute(), False
    if named:
        return (folder / Path(named).expanduser()).absolute(), False
    if os.environ.get(store_module.ENV_VAR):
        return Path(os.environ[store_module.ENV_VAR]).expanduser().absolute(), False
    beside = folder / store_module.DEFAULT_FILENAME
    if beside.exists():
        return beside.absolute(), False
    return Path(tempfile.mkdtemp(prefix="mlops-nb-check-")) / store_module.DEFAULT_FILENAME, True


def _margin(opened: store_module.Store, model: str | None) -> float:
    """The margin of retraining settings: the champion's deployed package's ``settings.json``, else the default."""
    from mlops_nb.deploy.layout import package_root
    from mlops_nb.deploy.settings import DEFAULT_SETTINGS, read_settings

    if model is not None:
        for deployment in opened.deployments(model):
            with contextlib.suppress(MlopsError, OSError, TypeError):
                return float(read_settings(package_root(deployment["path"]))["margin"])
    return float(DEFAULT_SETTINGS["margin"])


@main.command(short_help="Run a notebook headless and judge it: stages, gate, integrity, against the champion.")
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("--store", "store_path", metavar="PATH",
              help="The store the notebook records into. Default: the one the notebook names, $MLOPS_NB_STORE, "
                   "mlops.db beside it when it exists, else a new one in a temporary folder.")
@click.option("--against", default="champion", show_default=True, metavar="champion|RUN|none",
              help="What the run is compared with: the registry's champion, a run id, or nothing.")
@click.option("--margin", type=click.FloatRange(min=0), default=None,
              help="How far the primary metric may trail the comparison. Default: the champion package's "
                   "settings.json margin, else 0.005.")
@click.option("--timeout", type=click.FloatRange(min=1), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds the whole notebook may take.")
@click.option("--report", type=click.Path(path_type=Path), help="Write the Markdown report here.")
@click.option("--junit", type=click.Path(path_type=Path), help="Write the JUnit XML report here.")
@click.option("--json", "as_json", is_flag=True, help="Print the judgement as JSON instead of a summary.")
@click.pass_context
def check(ctx: click.Context, notebook: Path, store_path: str | None, against: str, margin: float | None,
          timeout: float, report: Path | None, junit: Path | None, as_json: bool) -> None:
    """Execute NOTEBOOK top to bottom in a fresh kernel (its magics record the run), then judge the
    run: every stage ran, the requirement gate passed, no integrity problem, and the primary metric
    is not worse than the comparison's by more than the margin. Exits 0 when all hold; else 40 a
    cell failed, 41 the gate failed, 42 worse than the comparison, 43 integrity, 44 no requirement,
    45 timed out (see the README's "Checking a notebook in CI").

    \b
    Examples:
      mlops-nb check notebooks/churn.ipynb --report report.md --junit junit.xml
      mlops-nb check churn.ipynb --against 12 --margin 0.01
      mlops-nb check churn.ipynb --against none --json
    """
    from mlops_nb.cli import check_report, headless
    from mlops_nb.tracking.comparison import check_view, resolve_against
    from mlops_nb.tracking.judgement import judge

    if against not in ("champion", "none") and not (against.isascii() and against.isdigit()):
        raise click.BadParameter(f"{against!r}: use champion, none or a run id such as 3", param_hint="--against")
    for path in (report, junit):
        problem = None if path is None else _check_output(path)
        if problem:
            _fail(ctx, problem, "report path")
    try:
        nb = headless.read_notebook(notebook)
    except headless.NotebookInputError as exc:
        _fail(ctx, str(exc), exc.reason)
    nb.path = nb.path.absolute()
    store, fresh = choose_store(store_path or ctx.obj["store"], nb.store, nb.path.parent)
    before = 0
    if store.exists() or os.path.lexists(store):
        opened = store_module.open_store(store, readonly=True)
        before = opened.max_run_id()
        if against not in ("champion", "none"):
            try:
                opened.run(int(against))
            except RunNotFound as exc:
                _fail(ctx, f"--against {against}: {exc}", "unknown run")
    elif against not in ("champion", "none"):
        _fail(ctx, f"--against {against}: no run {against}, the store {store} does not exist yet", "unknown run")

    env = {**os.environ, store_module.ENV_VAR: str(store), store_module.CHECK_ENV_VAR: str(store),
           "JPY_SESSION_NAME": str(nb.path)}
    execution = headless.execute(nb, env, timeout=timeout)

    opened = store_module.open_store(store, readonly=True) if store.exists() else None
    runs = opened.notebook_runs(str(nb.path), after=before) if opened is not None else []
    run_id = runs[-1] if runs else None
    current = check_view(opened, run_id) if run_id is not None else None
    chosen = resolve_against(opened, run_id, against)
    other = check_view(opened, chosen.run_id) if chosen.run_id is not None else None
    if margin is None:
        margin = _margin(opened, chosen.model) if opened is not None else 0.005
    judgement = judge(current, other, margin=margin, execution=execution.as_dict(), against_label=chosen.label,
                      no_comparison=chosen.reason)
    judgement["notebook"] = str(notebook)
    judgement["store"] = str(store)
    judgement["execution"]["elapsed"] = execution.elapsed
    if report is not None:
        report.write_text(check_report.markdown(judgement), encoding="utf-8")
    if junit is not None:
        junit.write_bytes(check_report.junit(judgement))
    if as_json:
        click.echo(check_report.json_text(judgement), nl=False)
    else:
        _summary(judgement, fresh=fresh, written=[p for p in (report, junit) if p is not None])
    ctx.exit(judgement["exit"])


def _summary(judgement: dict, *, fresh: bool, written: list[Path]) -> None:
    run = judgement["run"]
    where = f"run {run['id']} in {judgement['store']}" if run else "no run recorded"
    click.echo(f"mlops-nb check {judgement['notebook']}: {judgement['outcome']} (exit {judgement['exit']}), {where}"
               + (" (a new store in a temporary folder)" if fresh else ""))
    for problem in judgement["problems"]:
        click.echo(f"  {problem['kind']}: {problem['message']}")
    stages = ", ".join(f"{s['stage']} {s['status']}" for s in judgement["stages"])
    click.echo(f"  stages: {stages}")
    verdict = (judgement["comparison"] or {}).get("verdict")
    if verdict:
        click.echo(f"  against: {verdict}")
    for path in written:
        click.echo(f"  wrote {path}")
