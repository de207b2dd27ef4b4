"""The ``mlops-nb`` command group: the global ``--store`` option and one place where every error
becomes one line, ``error: <message>`` on stderr, and the exit status the README's "Exit codes"
table documents (:func:`exit_status`): 65 bad data, 66 missing data, 75 locked, 78 bad configuration
(an unusable store path, a broken package or settings, a refused query or schedule), 82 integrity,
69 an MLflow server that does not answer, 77 one that refuses the credentials,
1 any other refusal (an unknown run, model or filter column), 2 a usage error (click's), and 70 only
for a defect of mlops-nb, said in one line too (MLOPS_NB_DEBUG=1 shows its traceback).

The commands live beside it by owner: :mod:`mlops_nb.cli.reads` (runs, show, projects, history,
models, promote), :mod:`mlops_nb.cli.deploy` (export, predict, reseal, retrain, rollback, cron) and
:mod:`mlops_nb.cli.demo` (the main job). pandas and scikit-learn are imported inside the commands
that need them, so ``mlops-nb --help`` stays fast.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlops_nb import store as store_module
from mlops_nb.errors import (
    ExportError,
    MlopsError,
    PackageError,
    PackageLocked,
    ServerUnreachable,
    StoreError,
    SyncAuthRefused,
)

if TYPE_CHECKING:
    from mlops_nb.store import Store


EXIT_REFUSED = 1
EXIT_UNAVAILABLE = 69  # sysexits EX_UNAVAILABLE: the MLflow server did not answer
EXIT_NOPERM = 77  # sysexits EX_NOPERM: the MLflow server refused the credentials or a permission
EXIT_BUG = 70
DEBUG_VAR = "MLOPS_NB_DEBUG"


def exit_status(exc: MlopsError) -> int:
    """The exit status of a command that ended with ``exc`` (see the module's docstring)."""
    from mlops_nb.deploy.exits import EXIT_CONFIG, EXIT_LOCKED, stop_for

    if isinstance(exc, StoreError):
        return EXIT_LOCKED if "locked" in str(exc) else EXIT_CONFIG
    if isinstance(exc, PackageLocked):
        return EXIT_LOCKED
    if isinstance(exc, ServerUnreachable):
        return EXIT_UNAVAILABLE
    if isinstance(exc, SyncAuthRefused):
        return EXIT_NOPERM
    if isinstance(exc, PackageError):
        stop = stop_for(exc)
        return stop.code if stop is not None else EXIT_CONFIG
    if isinstance(exc, ExportError) and "schedule" in str(exc):
        return EXIT_CONFIG
    return EXIT_REFUSED


class _Group(click.Group):
    """A click group that turns an :class:`MlopsError` into ``error: <message>`` and its exit status,
    and anything else (a defect) into one line and exit 70."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MlopsError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exit_status(exc))
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get(DEBUG_VAR):
                raise
            text = (str(exc).strip().splitlines() or [""])[0][:300]
            click.echo(f"error: a bug in mlops-nb ({type(exc).__name__}: {text}); please report it "
                       f"(set {DEBUG_VAR}=1 to see the traceback)", err=True)
            ctx.exit(EXIT_BUG)


#: The module (under ``mlops_nb.cli``) that registers each command. Only the module of the command
#: being run is imported: ``python -m mlops_nb retrain`` (cron's line) skips the notebook checker,
#: the demo and the readers (0.1-0.2 s of every retraining job); ``--help`` imports them all.
COMMAND_MODULES = {
    "check": "check", "ci": "ci", "demo": "demo",
    "cron": "deploy", "export": "deploy", "predict": "deploy", "reseal": "deploy", "rollback": "deploy",
    "verify": "deploy", "retrain": "retrain",
    "history": "reads", "models": "reads", "projects": "reads", "promote": "reads", "runs": "reads",
    "show": "reads", "monitor": "serve", "serve": "serve", "sync": "sync",
}


class _Main(_Group):
    """The top group: a command's module is imported when the command is asked for."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(f"mlops_nb.cli.{COMMAND_MODULES[cmd_name]}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        load_all()
        return super().list_commands(ctx)


def load_all() -> None:
    """Import every command's module (``main.commands`` then holds them all)."""
    for module in sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(f"mlops_nb.cli.{module}")


@click.group(name="mlops-nb", cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store", "store", metavar="PATH", default=None,
    help="The store file. Default: $MLOPS_NB_STORE, else ./mlops.db.",
)
@click.version_option(package_name="mlops-nb", prog_name="mlops-nb")
@click.pass_context
def main(ctx: click.Context, store: str | None) -> None:
    """Look at the runs recorded by mlops-nb notebooks, scripts and retraining jobs.

    New here? `mlops-nb demo` runs a notebook through every stage, exports its model and retrains it once.

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
    if not os.path.lexists(path) and os.access(path.parent, os.X_OK):
        raise StoreError(
            f"no store at {path}; create one with `mlops-nb demo`, or record a run (mnb.start('project') "
            f"or %mlops start project), or point --store / ${store_module.ENV_VAR} at an existing store"
        )
    return store_module.open_store(path, readonly=readonly)


class RunId(click.ParamType):
    """A run id: ASCII digits only (``int()`` would take "١" or "1_0") within SQLite's integer range;
    anything else is a usage error naming the value, not an OverflowError from the database."""

    name = "RUN_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > 2**63 - 1:
            self.fail(f"{value!r} is not a run id; run ids are whole numbers such as 3 (see `mlops-nb runs`)",
                      param, ctx)
        return int(text)


RUN_ID = RunId()


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


