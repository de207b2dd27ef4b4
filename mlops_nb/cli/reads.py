"""Commands that read the store: runs, show, projects, history, models; and promote, which moves
a registry alias."""

from __future__ import annotations

import json
import shutil

import click

from mlops_nb import tracking
from mlops_nb.cli.main import RUN_ID, main, open_existing
from mlops_nb.cli.render import (
    EMPTY,
    bare_metric_names,
    emit_frame,
    local_time,
    pick_columns,
    readable_columns,
    render_run,
    table_lines,
    whole_params,
    with_duration,
)
from mlops_nb.errors import MlopsError
from mlops_nb.format import iso, json_safe, short_class
from mlops_nb.tracking.views import run_view

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
@click.option("--all", "-a", "every", is_flag=True, help="Every column (csv and json always have them all).")
@click.option("--limit", "-n", type=click.IntRange(min=1), metavar="N", help="Only the N newest runs.")
@click.pass_context
def runs(ctx: click.Context, project: str | None, where: str | None, fmt: str, columns: str | None,
         every: bool, limit: int | None) -> None:
    """List runs, newest first: run columns, then params.*, metrics.* (latest value) and tags.*.

    Columns: run_id, project, name, kind, status, start_time, end_time, duration (seconds), then
    one per param, metric and tag. The table shows what fits the terminal, most telling first:
    run_id, project, name, kind, status, start, duration, the metric the runs' requirement names
    (a retraining run's candidate value of it too), and up to three params that differ between the
    runs shown; --columns picks columns, --all shows every one. The table shows local times; csv
    and json have every column, times in ISO 8601 (UTC), and leave missing values empty (csv) or
    null (json).

    The --where language compares columns with numbers or quoted strings and combines them with
    and / or / not; `in (...)` and `like '...%'` work too.

    \b
    Examples:
      mlops-nb runs
      mlops-nb runs -p churn --where "metrics.f1 >= 0.85 and status = 'finished'"
      mlops-nb runs --columns metrics.f1,params.C --limit 5
      mlops-nb runs --all | less -S
      mlops-nb runs --format csv > runs.csv
      mlops-nb runs --format json | jq '.[0]'
    """
    if columns and every:
        raise click.UsageError("--columns and --all cannot be used together: --all already shows every column")
    opened = open_existing(ctx, readonly=True)
    frame = whole_params(with_duration(tracking.runs(project, where=where, store=opened)))
    frame = frame.iloc[::-1].reset_index(drop=True)
    if limit is not None:
        frame = frame.head(limit)
    hidden = 0
    if columns:
        frame = frame[["run_id", *pick_columns(frame, columns)]]
    elif fmt == "table" and not every and not frame.empty:
        width = shutil.get_terminal_size().columns
        shown = readable_columns(frame, opened.requirement_metrics(frame["run_id"].tolist()), width,
                                 project=project is None)
        hidden = len(frame.columns) - len(shown)
        frame = frame[shown].rename(columns=bare_metric_names(frame.columns, shown))
    if fmt == "table" and frame.empty:
        scope = f" in project {project!r}" if project else ""
        if where or project:
            click.echo(f"no runs{scope} match" + (f" {where!r}" if where else "") + f" in {opened.path}")
        else:
            click.echo(f"no runs yet in {opened.path}; record some with `mlops-nb demo` or mnb.start('project')")
        return
    emit_frame(frame, fmt)
    if hidden:
        click.echo(f"({hidden} more columns: --columns NAME,... picks some, --all shows every one)", err=True)


@main.command(short_help="Everything recorded about one run.")
@click.argument("run_id", type=RUN_ID)
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people; json for programs.")
@click.pass_context
def show(ctx: click.Context, run_id: int, fmt: str) -> None:
    """Everything recorded about run RUN_ID.

    Params, metrics (latest values), tags, artifacts, lifecycle stages (stage, attempt, status,
    duration; a stage whose inputs changed after it ran says stale), the requirement and its gates,
    integrity warnings and retraining runs. --format json prints the run's view, the same data the
    status widget and the JupyterLab sidebar show (times in epoch seconds).

    \b
    Examples:
      mlops-nb show 3
      mlops-nb show 3 --format json | jq .metrics
    """
    view = run_view(open_existing(ctx, readonly=True), run_id)
    if fmt == "json":
        click.echo(json.dumps(view, indent=2, allow_nan=False))
        return
    click.echo(render_run(view))


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

    opened = open_existing(ctx, readonly=True)
    rows = opened.projects()
    if fmt == "table" and not rows:
        click.echo(f"no projects yet in {opened.path}; record a run with `mlops-nb demo` or mnb.start('project')")
        return
    frame = pd.DataFrame(rows, columns=["project", "runs", "last_run"])
    frame["last_run"] = pd.to_datetime(frame["last_run"].astype("float64"), unit="s", utc=True)
    emit_frame(frame, fmt)


@main.command(short_help="Every value of one metric of a run, by step.")
@click.argument("run_id", type=RUN_ID)
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
    opened = open_existing(ctx, readonly=True)
    frame = tracking.metric_history(run_id, key, store=opened)
    if frame.empty:
        known = sorted(opened.run_details(run_id)["metrics"])
        listing = f"its metrics are: {', '.join(known)}" if known else "it has no metrics yet"
        raise MlopsError(f"run {run_id} has no metric {key!r}; {listing}")
    emit_frame(frame, fmt)


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
    from mlops_nb.tracking import registry

    opened = open_existing(ctx, readonly=True)
    versions = registry.models(name, store=opened)
    history = registry.alias_history(name, store=opened) if name else []
    if fmt == "json":
        versions_data = [{**vars(v), "created": iso(v.created)} for v in versions]
        history_data = [{**h, "time": iso(h["time"])} for h in history]
        click.echo(json.dumps(json_safe({"versions": versions_data, "alias_history": history_data}), indent=2))
        return
    if not versions:
        click.echo(f"no registered models in {opened.path}; register one with %mlops register VAR --name NAME")
        return
    rows = [[v.name, str(v.version), ",".join(v.aliases) or EMPTY, EMPTY if v.run_id is None else str(v.run_id),
             short_class(v.class_path) or EMPTY, local_time(v.created)] for v in versions]
    lines = table_lines("models", rows, ["name", "version", "aliases", "run", "class", "created"])[1:]
    if history:
        lines += ["", *table_lines("alias history", [
            [h["alias"], EMPTY if h["version"] is None else str(h["version"]),
             EMPTY if h["previous_version"] is None else str(h["previous_version"]), local_time(h["time"]),
             h["by"] or EMPTY, EMPTY if h["run_id"] is None else str(h["run_id"]), h["reason"] or EMPTY]
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
    from mlops_nb.tracking import registry

    moved = registry.promote(name, version, alias, reason=reason, by="mlops-nb promote", store=open_existing(ctx))
    click.echo(f"{alias} of {moved.name} is now version {moved.version}")

