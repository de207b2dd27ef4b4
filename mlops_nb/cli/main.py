"""The ``mlops-nb`` command group: the global ``--store`` option and one place where every
:class:`~mlops_nb.errors.MlopsError` becomes ``error: <message>`` on stderr and exit status 1.

The commands live beside it by owner: :mod:`mlops_nb.cli.reads` (runs, show, projects, history,
models, promote), :mod:`mlops_nb.cli.deploy` (export, predict, reseal, retrain, rollback, cron) and
:mod:`mlops_nb.cli.demo` (the main job). pandas and scikit-learn are imported inside the commands
that need them, so ``mlops-nb --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlops_nb import store as store_module
from mlops_nb.errors import MlopsError, StoreError

if TYPE_CHECKING:
    from mlops_nb.store import Store


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


def open_existing(ctx: click.Context, *, readonly: bool = False) -> Store:
    """The store of the group's --store, refusing (without creating it) a file that is not there.
    ``readonly`` for the commands that only read: they leave the store's bytes as they were."""
    path: Path = ctx.obj["path"]
    if not path.exists():
        raise StoreError(
            f"no store at {path}; create one with `mlops-nb demo`, or record a run (mnb.start('project') "
            f"or %mlops start project), or point --store / ${store_module.ENV_VAR} at an existing store"
        )
    return store_module.open_store(path, readonly=readonly)


@main.command(short_help="Bring a store written by an older mlops-nb up to this version's schema.")
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Apply the schema migrations a store written by an older mlops-nb needs (the commands that only
    read never change a store, so they ask for this first). Safe to run again.

    \b
    Examples:
      mlops-nb --store ~/churn/mlops.db upgrade
    """
    opened = open_existing(ctx)
    click.echo(f"{opened.path} is at schema {store_module.SCHEMA_VERSION}, this mlops-nb's")


