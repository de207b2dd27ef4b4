"""The one command line of retraining: ``mlops-nb retrain PACKAGE`` and an exported
``python retrain.py`` are the same click command, with the same options, help and exit statuses;
only the package comes from an argument in one and from the script's own folder in the other."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mlops_nb.deploy.exits import EXIT_CONFIG

_HELP = """Run {what} retraining job now, as cron would: lock, verify, load and validate fresh data,
check drift, refit the recorded pipeline, compare candidate and champion on held-out rows,
promote the candidate only when it passes the requirement and beats the champion by the margin.
One line per step (a progress bar at a terminal), one last line saying why it ended. The run is
recorded as a `retraining` run of the notebook run the package came from. The package root's
settings.json holds the margin, the drift policy and the held-out share.

\b
Exit status: 0 promoted, 99 champion kept, 65 bad data, 66 no data, 75 already running,
78 configuration, version mismatch or bad arguments, 80 below the requirement,
81 drift needs a person, 82 integrity check failed, 70 a bug.

\b
Examples:
{examples}
"""
_PACKAGE_EXAMPLES = """  mlops-nb retrain deploy/churn
  mlops-nb retrain deploy/churn --data "incoming/2026-*.parquet"
  mlops-nb retrain deploy/churn --data postgresql://etl@db/crm --query "SELECT * FROM churn_weekly\""""
_SCRIPT_EXAMPLES = """  python retrain.py
  python retrain.py --data "incoming/2026-*.parquet"
  python retrain.py --data postgresql://etl@db/crm --query "SELECT * FROM churn_weekly\""""
SHORT_HELP = "Retrain a package's model on fresh data; promote it only if it is better."


class RetrainCommand(click.Command):
    """Bad arguments end a retraining job with 78 (configuration), as every other setup problem
    does, so a scheduler sees one meaning per status."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.exit_code = EXIT_CONFIG
            raise


def retrain_command(*, script_file: str | os.PathLike | None = None,
                    prepare: Callable[[dict[str, Any]], tuple[Any, Any]] | None = None,
                    notebook_data: Callable[[], dict[str, Any]] | None = None) -> click.Command:
    """The retraining command. Without ``script_file`` it takes the package as its PACKAGE argument
    and the store from the ``mlops-nb`` group's ``--store`` (``mlops-nb retrain``); with it, the
    package is the script's folder and ``prepare`` / ``notebook_data`` are the script's functions
    (an exported ``retrain.py``). The command exits with the job's status."""
    from mlops_nb.deploy.retrain.job import run_package

    def run(ctx: click.Context, package_dir: Path | None, data: str | None, query: str | None, force: bool,
            public_key: str | None = None) -> None:
        from mlops_nb.deploy.scipy_docs import skip_docstring_tables

        skip_docstring_tables()  # a job reads no docstrings: ~0.2 s of start-up (mlops_nb.deploy.scipy_docs)
        root = ctx.find_root().obj or {}
        folder = package_dir if script_file is None else Path(script_file).resolve().parent
        code = run_package(folder, data=data, query=query, force=force, prepare=prepare, notebook_data=notebook_data,
                           store=root.get("store") if isinstance(root, dict) else None, public_key=public_key)
        ctx.exit(code)

    params: list[click.Parameter] = [
        click.Option(["--data"], metavar="SOURCE",
                     help="CSV, Parquet or JSON path or glob, or a database URL (with --query). Default: the "
                          "export's, else the notebook's own data step."),
        click.Option(["--query"], metavar="SQL",
                     help="The SELECT reading fresh data from a database URL (needs SQLAlchemy)."),
        click.Option(["--force"], is_flag=True,
                     help="Promote a candidate that passes the requirement even if it does not beat the champion "
                          "by the margin, and go on despite drift that would block."),
        click.Option(["--public-key"], metavar="PATH",
                     help="Accept only a package signed by this public key (default: $MLOPS_NB_PUBLIC_KEY)."),
    ]
    if script_file is None:
        params.insert(0, click.Argument(["package_dir"], metavar="PACKAGE",
                                        type=click.Path(file_okay=False, path_type=Path)))
        help_text = _HELP.format(what="PACKAGE's", examples=_PACKAGE_EXAMPLES)
        callback = click.pass_context(run)
    else:
        help_text = _HELP.format(what="this package's", examples=_SCRIPT_EXAMPLES)

        def callback(data: str | None, query: str | None, force: bool, public_key: str | None) -> None:
            run(click.get_current_context(), None, data, query, force, public_key)

    return RetrainCommand("retrain", params=params, callback=callback, help=help_text, short_help=SHORT_HELP,
                          context_settings={"help_option_names": ["-h", "--help"]})
