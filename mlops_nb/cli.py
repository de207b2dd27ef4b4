"""The ``mlops-nb`` command line: reads of the store and the first-run demo, for terminals and cron.

Thin on purpose: every read goes through :func:`mlops_nb.store.open_store` and
:mod:`mlops_nb.tracking`; this module only parses options and formats what comes back. Every
:class:`~mlops_nb.errors.MlopsError` becomes ``error: <message>`` on stderr and exit status 1, in
one place (:class:`_Group`). pandas and scikit-learn are imported inside the commands that need
them, so ``mlops-nb --help`` stays fast.
"""

from __future__ import annotations

import json
import math
import shlex
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlops_nb import store as store_module
from mlops_nb import tracking
from mlops_nb.errors import MlopsError, StoreError

if TYPE_CHECKING:
    import pandas

    from mlops_nb.store import Store

DEMO_PROJECT = "demo"
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIME_KEYS = frozenset({"start_time", "end_time", "created", "time", "last_run"})
_EMPTY = "-"


class _Group(click.Group):
    """A click group that turns an :class:`MlopsError` into ``error: <message>`` and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MlopsError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(name="mlops-nb", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store", "store", metavar="PATH", default=None,
    help="The store file. Default: $MLOPS_NB_STORE, else ./mlops.db.",
)
@click.version_option(package_name="mlops-nb", prog_name="mlops-nb")
@click.pass_context
def main(ctx: click.Context, store: str | None) -> None:
    """Look at the runs recorded by mlops-nb notebooks, scripts and retraining jobs.

    New here? `mlops-nb demo` trains three scikit-learn models into a store and shows the result.

    \b
    Examples:
      mlops-nb demo
      mlops-nb runs --where "metrics.f1 > 0.9"
      mlops-nb show 3
      mlops-nb --store ~/churn/mlops.db projects
    """
    ctx.obj = {"store": store, "path": store_module.resolve_path(store)}


# -- reading ----------------------------------------------------------------------------------


@main.command(short_help="The runs table, newest first (filter, pick columns, csv or json).")
@click.option("--project", "-p", metavar="P", help="Only the runs of project P.")
@click.option("--where", "-w", "where", metavar="EXPR",
              help="Filter, e.g. \"metrics.f1 > 0.8 and params.model = 'rf'\".")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="table for people; csv and json for programs.")
@click.option("--columns", "-c", metavar="COLS",
              help="Comma-separated columns to show after run_id, e.g. metrics.f1,params.C "
                   "(a bare key such as f1 works when it is unambiguous).")
@click.option("--limit", "-n", type=click.IntRange(min=1), metavar="N", help="Only the N newest runs.")
@click.pass_context
def runs(ctx: click.Context, project: str | None, where: str | None, fmt: str, columns: str | None,
         limit: int | None) -> None:
    """List runs, newest first: run columns, then params.*, metrics.* (latest value) and tags.*.

    Columns: run_id, project, name, kind, status, start_time, end_time, duration (seconds), then
    one per param, metric and tag. The table leaves out kind and end_time (csv and json have
    every column) and shows local times; csv and json give times in ISO 8601 (UTC) and leave
    missing values empty (csv) or null (json).

    The --where language compares columns with numbers or quoted strings and combines them with
    and / or / not; `in (...)` and `like '...%'` work too.

    \b
    Examples:
      mlops-nb runs
      mlops-nb runs -p churn --where "metrics.f1 >= 0.85 and status = 'finished'"
      mlops-nb runs --columns metrics.f1,params.C --limit 5
      mlops-nb runs --format csv > runs.csv
      mlops-nb runs --format json | jq '.[0]'
    """
    opened = _open_existing(ctx)
    frame = _with_duration(tracking.runs(project, where=where, store=opened))
    frame = frame.iloc[::-1].reset_index(drop=True)
    if limit is not None:
        frame = frame.head(limit)
    if columns:
        frame = frame[["run_id", *_pick_columns(frame, columns)]]
    elif fmt == "table":
        hidden = {"kind", "end_time", *(["project"] if project else [])}
        frame = frame[[c for c in frame.columns if c not in hidden]]
    if fmt == "table" and frame.empty:
        scope = f" in project {project!r}" if project else ""
        if where or project:
            click.echo(f"no runs{scope} match" + (f" {where!r}" if where else "") + f" in {opened.path}")
        else:
            click.echo(f"no runs yet in {opened.path}; record some with `mlops-nb demo` or mnb.start('project')")
        return
    _emit_frame(frame, fmt)


@main.command(short_help="Everything recorded about one run.")
@click.argument("run_id", type=int)
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people; json for programs.")
@click.pass_context
def show(ctx: click.Context, run_id: int, fmt: str) -> None:
    """Everything recorded about run RUN_ID.

    Params, metrics (latest values), tags, artifacts, lifecycle stages (stage, attempt, status,
    duration), the requirement and its gates, and integrity warnings.

    \b
    Examples:
      mlops-nb show 3
      mlops-nb show 3 --format json | jq .metrics
    """
    details = _open_existing(ctx).run_details(run_id)
    if fmt == "json":
        click.echo(json.dumps(_jsonable(details), indent=2))
        return
    click.echo(_render_run(details))


@main.command(short_help="Projects with their run counts and last run.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="table for people; csv and json for programs.")
@click.pass_context
def projects(ctx: click.Context, fmt: str) -> None:
    """List projects with their number of runs and the start of their last run.

    \b
    Examples:
      mlops-nb projects
      mlops-nb projects --format json
    """
    import pandas as pd

    opened = _open_existing(ctx)
    rows = opened.projects()
    if fmt == "table" and not rows:
        click.echo(f"no projects yet in {opened.path}; record a run with `mlops-nb demo` or mnb.start('project')")
        return
    frame = pd.DataFrame(rows, columns=["project", "runs", "last_run"])
    frame["last_run"] = pd.to_datetime(frame["last_run"].astype("float64"), unit="s", utc=True)
    _emit_frame(frame, fmt)


@main.command(short_help="Every value of one metric of a run, by step.")
@click.argument("run_id", type=int)
@click.argument("key")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="table for people; csv and json for programs.")
@click.pass_context
def history(ctx: click.Context, run_id: int, key: str, fmt: str) -> None:
    """Every value logged for metric KEY of run RUN_ID: step, value, time.

    \b
    Examples:
      mlops-nb history 3 cv_f1
      mlops-nb history 3 loss --format csv > loss.csv
    """
    opened = _open_existing(ctx)
    frame = tracking.metric_history(run_id, key, store=opened)
    if frame.empty:
        known = sorted(opened.run_details(run_id)["metrics"])
        listing = f"its metrics are: {', '.join(known)}" if known else "it has no metrics yet"
        raise MlopsError(f"run {run_id} has no metric {key!r}; {listing}")
    _emit_frame(frame, fmt)


# -- models and packages ----------------------------------------------------------------------


@main.command(short_help="Registered models: versions, aliases, alias history.")
@click.argument("name", required=False)
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="table for people; json for programs.")
@click.pass_context
def models(ctx: click.Context, name: str | None, fmt: str) -> None:
    """List registered model versions with their run, class and aliases (champion, challenger,
    previous). With NAME, only that model, followed by its alias history.

    \b
    Examples:
      mlops-nb models
      mlops-nb models churn
      mlops-nb models churn --format json
    """
    from mlops_nb import registry

    opened = _open_existing(ctx)
    versions = registry.models(name, store=opened)
    history = registry.alias_history(name, store=opened) if name else []
    if fmt == "json":
        click.echo(json.dumps(_jsonable({"versions": [vars(v) for v in versions], "alias_history": history}),
                              indent=2))
        return
    if not versions:
        click.echo(f"no registered models in {opened.path}; register one with %mlops register VAR --name NAME")
        return
    rows = [[v.name, str(v.version), ",".join(v.aliases) or _EMPTY, _EMPTY if v.run_id is None else str(v.run_id),
             (v.class_path or _EMPTY).rsplit(".", 1)[-1], _local_time(v.created)] for v in versions]
    lines = _table_lines("models", rows, ["name", "version", "aliases", "run", "class", "created"])[1:]
    if history:
        lines += ["", *_table_lines("alias history", [
            [h["alias"], _EMPTY if h["version"] is None else str(h["version"]),
             _EMPTY if h["previous_version"] is None else str(h["previous_version"]), _local_time(h["time"]),
             h["by"] or _EMPTY, _EMPTY if h["run_id"] is None else str(h["run_id"]), h["reason"] or _EMPTY]
            for h in history], ["alias", "version", "was", "time", "by", "run", "reason"])]
    click.echo("\n".join(line[2:] if line.startswith("  ") else line for line in lines))


@main.command(short_help="Point an alias (champion, challenger, previous) at a model version.")
@click.argument("name")
@click.argument("version")
@click.option("--alias", "-a", type=click.Choice(["champion", "challenger", "previous"]), default="champion",
              show_default=True, help="The alias to move; moving champion makes the old one previous.")
@click.option("--reason", "-r", metavar="TEXT", help="Why, kept in the alias history.")
@click.pass_context
def promote(ctx: click.Context, name: str, version: str, alias: str, reason: str | None) -> None:
    """Point ALIAS of model NAME at VERSION (a number or another alias).

    \b
    Examples:
      mlops-nb promote churn 3
      mlops-nb promote churn previous --reason "v3 misbehaves on Mondays"
    """
    from mlops_nb import registry

    moved = registry.promote(name, version, alias, reason=reason, by="mlops-nb promote", store=_open_existing(ctx))
    click.echo(f"{alias} of {moved.name} is now version {moved.version}")


@main.command(name="export", short_help="Write a model as a deployment package with retrain.py and cron line.")
@click.argument("name")
@click.option("--to", "to", required=True, metavar="DIR", help="The package folder (replaced atomically).")
@click.option("--version", "-v", metavar="V", help="A version number or alias. Default: the champion.")
@click.option("--schedule", metavar="CRON", help='Retraining schedule. Default: "0 3 * * 1" (Mondays 03:00).')
@click.option("--data", metavar="SOURCE", help="Where fresh data will be: CSV, Parquet or JSON path or glob.")
@click.option("--airflow", is_flag=True, help="Also write airflow_dag.py.")
@click.option("--kubernetes", is_flag=True, help="Also write cronjob.yaml (a Kubernetes CronJob).")
@click.option("--force", metavar="REASON", help="Export despite the refusals; the reason is recorded.")
@click.option("--X", "x_name", metavar="NAME", help="The notebook frame holding the model's input, if ambiguous.")
@click.option("--y", "y_name", metavar="NAME", help="The notebook frame holding the target, if ambiguous.")
@click.pass_context
def export_command(ctx: click.Context, name: str, to: str, version: str | None, schedule: str | None,
                   data: str | None, airflow: bool, kubernetes: bool, force: str | None, x_name: str | None,
                   y_name: str | None) -> None:
    """Export registered model NAME as a package: model.skops, schema, reference data, metrics, pinned
    requirements, a retrain.py generated from the notebook's data/features/selection cells, and
    crontab.txt. Refuses a model that failed or skipped its gate, a stale model or a run with no data
    stage, saying why; --force REASON overrides and is recorded.

    \b
    Examples:
      mlops-nb export churn --to deploy/churn --data "incoming/*.csv"
      mlops-nb export churn --version 2 --to deploy/churn --schedule "0 3 * * 1" --airflow --kubernetes
    """
    from mlops_nb.exporter import export_package

    words = ["mlops-nb export"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value in (None, False) or not isinstance(param, click.Argument | click.Option):
            continue
        flag = "" if isinstance(param, click.Argument) else param.opts[0]
        words.append(flag if value is True else f"{flag} {shlex.quote(str(value))}".strip())
    result = export_package(
        name, version=version, to=to, schedule=schedule, data=data, force=force, airflow=airflow,
        kubernetes=kubernetes, X=x_name, y=y_name, store=_open_existing(ctx), command=" ".join(words),
    )
    click.echo(str(result).removeprefix("mlops: "))


@main.command(short_help="Predict with a package's model; the input is checked against its schema.")
@click.argument("package_dir", metavar="PACKAGE", type=click.Path(file_okay=False, path_type=Path))
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "-o", metavar="OUT", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the predictions to OUT (CSV). Default: standard output.")
def predict(package_dir: Path, input_path: Path, output: Path | None) -> None:
    """Predict the rows of INPUT (CSV, Parquet or JSON) with the model of PACKAGE: a `prediction`
    column, plus `probability_<class>` columns for classifiers. The package's checksums are verified
    and its model loaded with mlops-nb's allow-list of types. Exit status 65 when INPUT does not match
    the model's input schema (the message names each column), 66 when INPUT is missing or empty,
    82 when the package fails its checksums or needs an untrusted type.

    \b
    Examples:
      mlops-nb predict deploy/churn new_customers.csv -o predictions.csv
    """
    from mlops_nb import package
    from mlops_nb.errors import ChecksumError, DataNotFound, SchemaMismatch, UntrustedTypes

    try:
        frame = package.read_table(input_path)
        predictions = package.predict(package_dir, frame)
    except SchemaMismatch as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(package.EXIT_BAD_DATA) from None
    except DataNotFound as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(package.EXIT_NO_DATA) from None
    except (ChecksumError, UntrustedTypes) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(package.EXIT_INTEGRITY) from None
    if output is None:
        click.echo(predictions.to_csv(index=False), nl=False)
    else:
        predictions.to_csv(output, index=False)
        click.echo(f"{len(predictions)} predictions written to {output}", err=True)


@main.command(short_help="Re-record the checksum of a package file you edited on purpose (retrain.py).")
@click.argument("package_dir", metavar="PACKAGE", type=click.Path(file_okay=False, path_type=Path))
@click.option("--file", "files", multiple=True, metavar="FILE", help="A file to re-seal. Default: retrain.py.")
def reseal(package_dir: Path, files: tuple[str, ...]) -> None:
    """Record new checksums in MANIFEST.json for FILEs you edited (default retrain.py), after checking
    that every other file still verifies.

    \b
    Examples:
      mlops-nb reseal deploy/churn
    """
    from mlops_nb import package

    package.reseal(package_dir, files or (package.SCRIPT_FILE,))
    click.echo(f"re-sealed {', '.join(files or (package.SCRIPT_FILE,))} in {package_dir}")


# -- retraining, rollback, cron --------------------------------------------------------------


@main.command(short_help="Retrain a package's model on fresh data; promote it only if it is better.")
@click.argument("package_dir", metavar="PACKAGE", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", metavar="SOURCE",
              help="CSV, Parquet or JSON path or glob, or a database URL (with --query). Default: the export's.")
@click.option("--query", metavar="SQL", help="The SELECT reading fresh data from a database URL (needs SQLAlchemy).")
@click.option("--force", is_flag=True,
              help="Promote a candidate that passes the requirement even if it does not beat the champion by the "
                   "margin, and go on despite drift that would block.")
@click.pass_context
def retrain(ctx: click.Context, package_dir: Path, data: str | None, query: str | None, force: bool) -> None:
    """Run PACKAGE's retraining job now, as cron would: lock, verify, load and validate fresh data,
    check drift, refit the recorded pipeline, compare candidate and champion on held-out rows,
    promote the candidate only when it passes the requirement and beats the champion by the margin.
    One line per step (a progress bar at a terminal), one last line saying why it ended. The run is
    recorded as a `retraining` run of the notebook run the package came from.

    \b
    Exit status: 0 promoted, 99 champion kept, 65 bad data, 66 no data, 75 already running,
    78 configuration or version mismatch, 80 below the requirement, 81 drift needs a person,
    82 integrity check failed, 70 a bug.

    \b
    Examples:
      mlops-nb retrain deploy/churn
      mlops-nb retrain deploy/churn --data "incoming/2026-*.parquet"
      mlops-nb retrain deploy/churn --data postgresql://etl@db/crm --query "SELECT * FROM churn_weekly"
    """
    from mlops_nb.retrain import run_package

    argv = [*(["--data", data] if data else []), *(["--query", query] if query else [])]
    argv += ["--force"] if force else []
    code = run_package(package_dir, argv=argv, store=ctx.obj["store"])
    ctx.exit(code)


@main.command(short_help="Swap a package back to its previous version (and the registry's champion).")
@click.argument("target", metavar="NAME|PACKAGE")
@click.option("--to", "to", metavar="VERSION", help="A package version (3 or v0003). Default: the previous champion's.")
@click.option("--reason", "-r", metavar="TEXT", help="Why, kept in the registry's alias history.")
@click.pass_context
def rollback(ctx: click.Context, target: str, to: str | None, reason: str | None) -> None:
    """Point the package's `current` back at an earlier version and make its model the champion
    again (the one it replaces becomes `previous`, so a second rollback swaps back). TARGET is the
    package folder, or a model name whose latest export the store recorded.

    \b
    Examples:
      mlops-nb rollback deploy/churn
      mlops-nb rollback churn --reason "v4 misreads the new price column"
      mlops-nb rollback deploy/churn --to v0002
    """
    from mlops_nb.retrain import rollback as do_rollback

    click.echo(str(do_rollback(target, to=to, reason=reason, store=ctx.obj["store"])))


@main.group(cls=_Group, short_help="Install, list or remove retraining jobs in your crontab.")
def cron() -> None:
    """Scheduled retraining with the system's cron: one tagged line per package in your crontab
    (`crontab -l`), running the package's retrain.py with this Python, the store set, and every
    line of output appended to PACKAGE-retrain.log beside the package.

    \b
    Examples:
      mlops-nb cron install deploy/churn --schedule "0 3 * * 1"
      mlops-nb cron list
      mlops-nb cron remove deploy/churn
    """


@cron.command(name="install", short_help="Install (or replace) a package's retraining line.")
@click.argument("package_dir", metavar="PACKAGE", type=click.Path(file_okay=False, path_type=Path))
@click.option("--schedule", metavar="CRON", help="Five cron fields. Default: the schedule given at export.")
@click.pass_context
def cron_install(ctx: click.Context, package_dir: Path, schedule: str | None) -> None:
    """Install PACKAGE's retraining line in your crontab (replacing its earlier line), and show when
    it runs next. The store is the global --store, else the one the package was exported from.

    \b
    Examples:
      mlops-nb cron install deploy/churn
      mlops-nb cron install deploy/churn --schedule "*/30 * * * *"
    """
    from mlops_nb import cron as cron_module

    entry = cron_module.install(package_dir, schedule=schedule, store=ctx.obj["store"])
    moments = ", ".join(m.strftime("%Y-%m-%d %H:%M") for m in entry.next_runs(3))
    click.echo(f"installed: {entry.schedule} retraining of {entry.package} (next: {moments})")
    click.echo(f"  {entry.command}")


@cron.command(name="list", short_help="mlops-nb's lines in your crontab.")
def cron_list() -> None:
    """List mlops-nb's retraining lines in your crontab: schedule, package, next run.

    \b
    Examples:
      mlops-nb cron list
    """
    from mlops_nb import cron as cron_module

    found = cron_module.entries()
    if not found:
        click.echo("no mlops-nb retraining lines in your crontab; add one with `mlops-nb cron install PACKAGE`")
        return
    rows = [[e.schedule, str(e.package), "yes" if e.enabled else "no",
             e.next_runs(1)[0].strftime("%Y-%m-%d %H:%M") if e.enabled else _EMPTY] for e in found]
    click.echo("\n".join(line[2:] for line in _table_lines("cron", rows, ["schedule", "package", "enabled",
                                                                          "next run"])[1:]))


@cron.command(name="remove", short_help="Remove a package's line (or all of mlops-nb's).")
@click.argument("package_dir", metavar="PACKAGE", required=False, type=click.Path(path_type=Path))
@click.option("--all", "everything", is_flag=True, help="Remove every mlops-nb line.")
def cron_remove(package_dir: Path | None, everything: bool) -> None:
    """Remove PACKAGE's retraining line from your crontab (--all: every mlops-nb line). Other
    lines of your crontab are left alone.

    \b
    Examples:
      mlops-nb cron remove deploy/churn
      mlops-nb cron remove --all
    """
    from mlops_nb import cron as cron_module

    if (package_dir is None) == (not everything):
        raise click.UsageError("give a PACKAGE or --all")
    gone = cron_module.remove(None if everything else package_dir)
    if not gone:
        click.echo("nothing to remove: no mlops-nb line for " + ("any package" if everything else str(package_dir)))
    for entry in gone:
        click.echo(f"removed: {entry.schedule} retraining of {entry.package}")


# -- the demo ---------------------------------------------------------------------------------


@main.command(short_help="The main job: the quickstart notebook, its export, and one retraining run.")
@click.option("--dir", "folder", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              default=Path("mlops-demo"), show_default=True,
              help="Where the demo works: the notebook, its store DIR/mlops.db, the package, the fresh data.")
@click.pass_context
def demo(ctx: click.Context, folder: Path) -> None:
    """Run the whole lifecycle once, as a data scientist and then cron would.

    1. Executes the quickstart notebook headless in a fresh kernel: requirements, data, eda,
       features, selection, model, tuning (a small grid search), validation against f1 >= 0.95,
       then registers the tuned model and exports it as a deployment package.
    2. Writes a week of fresh data (resampled from scikit-learn's bundled breast cancer data).
    3. Runs the package's retrain.py on it, exactly as the cron line would: drift check, retrain,
       gate, champion against candidate, promote or keep.

    Everything is recorded in DIR/mlops.db; the executed notebook stays in DIR.

    \b
    Examples:
      mlops-nb demo
      mlops-nb demo --dir /tmp/mlops-demo
    """
    from mlops_nb import demo as main_job

    if ctx.obj["store"] is not None:
        raise click.UsageError("the demo keeps its store in DIR/mlops.db: give --dir, not --store")
    code = main_job.run(folder.absolute(), echo=click.echo)
    store = folder.absolute() / store_module.DEFAULT_FILENAME
    click.echo()
    _emit_frame(tracking.runs(store=store)[["run_id", "project", "name", "kind", "status", "metrics.f1"]], "table")
    click.echo()
    click.echo(f"Store: {store}")
    prefix = f"mlops-nb --store {shlex.quote(str(store))}"
    click.echo(f"Look further: `{prefix} show 1`, `{prefix} models`, or open {folder / 'quickstart.ipynb'}"
               " in JupyterLab and its MLOps sidebar.")
    if code not in (0, 99):
        raise SystemExit(code)



# -- helpers ----------------------------------------------------------------------------------


def _open_existing(ctx: click.Context) -> Store:
    """The store of the group's --store, refusing (without creating it) a file that is not there."""
    path: Path = ctx.obj["path"]
    if not path.exists():
        raise StoreError(
            f"no store at {path}; create one with `mlops-nb demo`, or record a run (mnb.start('project') "
            f"or %mlops start project), or point --store / ${store_module.ENV_VAR} at an existing store"
        )
    return store_module.open_store(path)


def _with_duration(frame: pandas.DataFrame) -> pandas.DataFrame:
    """``frame`` with a ``duration`` column (seconds; missing while a run is running) after ``end_time``."""
    seconds = (frame["end_time"] - frame["start_time"]).dt.total_seconds()
    return frame.assign(duration=seconds)[[*frame.columns[:7], "duration", *frame.columns[7:]]]


def _pick_columns(frame: pandas.DataFrame, spec: str) -> list[str]:
    """The columns named in ``spec`` (comma-separated); a bare key matches a unique ``ns.key``."""
    picked = []
    for name in (part.strip() for part in spec.split(",")):
        if not name:
            continue
        if name in frame.columns:
            match = name
        else:
            candidates = [c for c in frame.columns if c.split(".", 1)[-1] == name and "." in c]
            if len(candidates) != 1:
                hint = f"did you mean {' or '.join(candidates)}" if candidates else "the columns are: " + (
                    ", ".join(frame.columns))
                raise click.BadParameter(f"no column {name!r}; {hint}", param_hint="'--columns'")
            match = candidates[0]
        if match != "run_id" and match not in picked:
            picked.append(match)
    return picked


def _emit_frame(frame: pandas.DataFrame, fmt: str) -> None:
    if fmt == "json":
        records = [{c: _json_value(v) for c, v in row.items()} for row in frame.to_dict(orient="records")]
        click.echo(json.dumps(records, indent=2))
    elif fmt == "csv":
        out = frame.copy()
        for column in _time_columns(out):
            out[column] = out[column].map(_iso)
        click.echo(out.to_csv(index=False), nl=False)
    else:
        out = frame.copy()
        for column in _time_columns(out):
            out[column] = out[column].map(_local_time)
        if "duration" in out.columns:
            out["duration"] = out["duration"].map(_duration)
        click.echo(out.to_string(index=False, na_rep=_EMPTY))


def _time_columns(frame: pandas.DataFrame) -> list[str]:
    import pandas as pd

    return [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]


def _as_datetime(value: Any) -> datetime | None:
    """A UTC datetime from epoch seconds or a pandas Timestamp; None for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "to_pydatetime"):
        if value != value:  # NaT
            return None
        return value.to_pydatetime(warn=False)
    return datetime.fromtimestamp(float(value), tz=timezone.utc)


def _local_time(value: Any) -> str:
    moment = _as_datetime(value)
    return _EMPTY if moment is None else moment.astimezone().strftime(_TIME_FORMAT)


def _iso(value: Any) -> str | None:
    moment = _as_datetime(value)
    return None if moment is None else moment.isoformat()


def _json_value(value: Any) -> Any:
    """A JSON-safe value: NaN, infinities and NaT become null, times ISO 8601, numpy scalars Python."""
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):
        return _iso(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _jsonable(details: Any, key: str | None = None) -> Any:
    """``run_details`` for JSON: epoch-second fields as ISO 8601, JSON text columns parsed."""
    if isinstance(details, dict):
        return {k: _jsonable(v, k) for k, v in details.items()}
    if isinstance(details, list):
        return [_jsonable(v) for v in details]
    if key in _TIME_KEYS and isinstance(details, (int, float)):
        return _iso(details)
    if key == "variables" and isinstance(details, str):
        try:
            return json.loads(details)
        except ValueError:
            return details
    return _json_value(details)


def _duration(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return _EMPTY
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02d} s"


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"  # pragma: no cover


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _EMPTY
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _mapping_lines(title: str, mapping: dict[str, Any], render=str) -> list[str]:
    if not mapping:
        return [f"{title}: none"]
    width = max(len(k) for k in mapping)
    return [title, *(f"  {k.ljust(width)}  {render(v)}" for k, v in mapping.items())]


def _table_lines(title: str, rows: list[list[str]], header: list[str]) -> list[str]:
    if not rows:
        return [f"{title}: none"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [title, "  " + fmt.format(*header).rstrip(), *("  " + fmt.format(*r).rstrip() for r in rows)]


def _stage_lines(stages: list[dict[str, Any]]) -> list[str]:
    with_errors = any(s.get("error") for s in stages)
    header = ["stage", "attempt", "status", "duration", *(["error"] if with_errors else [])]
    rows = []
    for s in stages:
        row = [s["stage"], str(s["attempt"]), s["status"], _duration(s["duration"])]
        if with_errors:
            row.append((s.get("error") or "").splitlines()[-1] if s.get("error") else "")
        rows.append(row)
    return _table_lines("stages", rows, header)


def _render_run(d: dict[str, Any]) -> str:
    """The text of ``mlops-nb show``: a header, then one block per kind of record."""
    lines = [f"run {d['id']}  {d['name']}  ({d['kind']} run in project {d['project']})  {d['status']}"]
    took = None if d.get("end_time") is None else d["end_time"] - d["start_time"]
    timing = f"  started {_local_time(d['start_time'])}"
    if took is not None:
        timing += f", took {_duration(took)}"
    lines.append(timing)
    if d.get("parent_id"):
        lines.append(f"  parent run {d['parent_id']}")
    if d.get("notebook"):
        lines.append(f"  notebook {d['notebook']}")
    if d.get("git_commit"):
        lines.append(f"  git {d['git_commit'][:12]}" + (" (uncommitted changes)" if d.get("git_dirty") else ""))
    env = d.get("environment") or {}
    if env.get("python"):
        packages = env.get("packages") or {}
        libs = ", ".join(f"{k} {packages[k]}" for k in ("scikit-learn", "pandas") if k in packages)
        lines.append(f"  python {env['python']}" + (f", {libs}" if libs else ""))
    if d.get("error"):
        lines.append(f"  error: {d['error']}")

    blocks = [
        _mapping_lines("params", d["params"], _number),
        _mapping_lines("metrics", d["metrics"], _number),
        _mapping_lines("tags", d["tags"], lambda v: _EMPTY if v is None else v),
        _table_lines("artifacts", [[a["name"], a["kind"], _size(a["size"]), a["sha256"][:12]]
                                   for a in d["artifacts"]], ["name", "kind", "size", "sha256"]),
        _stage_lines(d["stages"]),
    ]
    requirement = d.get("requirement")
    if requirement:
        text = f"{requirement['metric']} {requirement['op']} {_number(requirement['threshold'])}"
        if requirement.get("target"):
            text += f", target {requirement['target']}"
        if requirement.get("notes"):
            text += f" ({requirement['notes']})"
        blocks.append([f"requirement: {text}"])
    else:
        blocks.append(["requirement: none"])
    blocks.append(_table_lines(
        "gates",
        [[g["metric"], _number(g["value"]), f"{g['op']} {_number(g['threshold'])}",
          "passed" if g["passed"] else "FAILED", _local_time(g["time"])] for g in d["gates"]],
        ["metric", "value", "requirement", "result", "time"],
    ))
    blocks.append(_table_lines(
        "integrity warnings",
        [[w["kind"], w.get("stage") or _EMPTY, w["message"]] for w in d["warnings"]],
        ["kind", "stage", "message"],
    ))
    if d.get("drift"):  # a retraining run: its drift check, column by column
        blocks.append(_table_lines(
            "drift",
            [[r["column_name"], r["kind"], r["statistic"], _number(r["value"]), r["verdict"]] for r in d["drift"]],
            ["column", "kind", "statistic", "value", "verdict"],
        ))
    previous: list[str] = []
    for block in blocks:
        if len(block) > 1 or len(previous) != 1:
            lines.append("")  # one-line blocks ("gates: none") stay together
        lines.extend(block)
        previous = block
    return "\n".join(lines)
