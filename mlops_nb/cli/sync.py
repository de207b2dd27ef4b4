"""``mlops-nb sync mlflow``: push the store's new runs and models to an MLflow tracking server."""

from __future__ import annotations

import os

import click

from mlops_nb.cli.main import RunId, _Group, main, open_existing


@main.group(name="sync", cls=_Group, short_help="Push the store to an MLflow tracking server, incrementally.")
def sync_group() -> None:
    """Mirror the store to a team's tracking server; the local store stays the truth."""


@sync_group.command(name="mlflow")
@click.option("--tracking-uri", "uri", metavar="URI",
              help="The MLflow server, e.g. http://mlflow:5000. Default: the store's mlflow_uri setting, "
                   "else $MLFLOW_TRACKING_URI.")
@click.option("--project", "projects", multiple=True, metavar="P", help="Only this project (repeat for several).")
@click.option("--since", type=RunId(), metavar="RUN", help="Only runs from this run id on.")
@click.option("--dry-run", is_flag=True, help="Say what would be pushed; push nothing, ask the server nothing.")
@click.option("--auto/--no-auto", default=None,
              help="Remember (or forget) the URI in the store: every run's end and retraining run pushes itself.")
@click.pass_context
def sync_mlflow_command(ctx: click.Context, uri: str | None, projects: tuple[str, ...], since: int | None,
                        dry_run: bool, auto: bool | None) -> None:
    """Push what is new since the last sync: runs (params, every metric value with its step, tags,
    status and times), the mlops-nb/ artifacts of each run, and the model registry's versions and
    aliases. Credentials are MLflow's own: MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and
    MLFLOW_TRACKING_PASSWORD. Exit 69 when the server does not answer, 77 when it refuses the
    credentials or a permission, 1 when it rejects a value.

    \b
    Examples:
      mlops-nb sync mlflow --tracking-uri http://mlflow:5000
      mlops-nb sync mlflow --tracking-uri http://mlflow:5000 --auto
      mlops-nb sync mlflow --project churn --since 40 --dry-run
    """
    from mlops_nb.sync import sync_mlflow
    from mlops_nb.tracking import sync_state

    store = open_existing(ctx, readonly=dry_run and auto is None)
    if auto is False:
        sync_state.set_setting("mlflow_uri", None, store=store)
        click.echo("mlops-nb: runs no longer push themselves to MLflow")
        if not uri:
            return
    uri = uri or store.setting("mlflow_uri") or os.environ.get("MLFLOW_TRACKING_URI")
    if auto and uri:
        sync_state.set_setting("mlflow_uri", uri, store=store)
    summary = sync_mlflow(uri or "", store=store, projects=list(projects) or None, since=since, dry_run=dry_run)
    click.echo(summary.line().replace("mlops:", "mlops-nb:", 1))
