"""``%mlops`` and ``%%stage``: parsing and printing only; the work is in session, tracking, capture.

A ``%%stage NAME`` cell is not run through the cell magic. An input transformer removes the header
line and the ``pre_run_cell``/``post_run_cell`` events record the stage around the cell's own,
native execution: so display, the execution count and errors (which stop "Run All") are exactly
those of the same cell without the header. The ``%%stage`` cell magic exists for ``%%stage?`` help
and to explain an unknown stage name.
"""

from __future__ import annotations

import math
import os
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from mlops_nb.errors import MlopsError
from mlops_nb.notebook.session import NotebookSession, current_session, session_for, stage_of, strip_stage_header
from mlops_nb.stages import STAGES, parse_requirement
from mlops_nb.sync import auto as sync_auto
from mlops_nb.tracking import context as tracking_context
from mlops_nb.tracking import lifecycle as tracking_lifecycle

# -- sub-commands: each parser is its own magic_arguments function ------------------------------


@magic_arguments(name="mlops start")
@argument("project", nargs="?", help="project name (default: the notebook's file name, or 'default')")
@argument("--name", help="a label for the run (default run-<id>)")
@argument("--store", help="the store file (default $MLOPS_NB_STORE or ./mlops.db)")
def _start(magics, args):
    """Start a new run; the current one, if any, ends as finished."""
    run = magics.session.start(args.project, name=args.name, store=args.store)
    print(f"mlops: run {run.id} ({run.name}) started in project '{run.project}', store {run.store.path}")


@magic_arguments(name="mlops end")
@argument("--status", default="finished", choices=["finished", "failed", "interrupted"])
def _end(magics, args):
    """End the current run."""
    run = magics.session.end(args.status)
    if run is None:
        print("mlops: no run to end")
    else:
        print(f"mlops: run {run.id} ended {run.status}")


@magic_arguments(name="mlops require")
@argument("requirement", nargs="+", help="METRIC OP VALUE, for example: f1 >= 0.85")
@argument("--target", help="the column the model predicts (used by export and retraining)")
@argument("--notes", help="free text: the objective in words")
def _require(magics, args):
    """State the requirement the validation stage gates on, e.g. `%mlops require f1 >= 0.85 --target y`."""
    requirement = parse_requirement(" ".join(args.requirement))
    run, message = magics.session.ensure_run()
    if message:
        print(message)
    tracking_lifecycle.set_requirement(run, requirement, target=args.target, notes=args.notes)
    target = f", target '{args.target}'" if args.target else ""
    print(f"mlops: requirement {requirement.describe()}{target}")


@magic_arguments(name="mlops log")
@argument("pairs", nargs="+", help='key=value ...: numbers become metrics, text becomes tags (note="...")')
@argument("--params", action="store_true", help="log every pair as a param instead")
def _log(magics, args):
    """Log values to the current run: `%mlops log f1=0.91 note="first try"`."""
    metrics, tags = {}, {}
    for pair in args.pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"cannot read {pair!r}: write key=value, for example f1=0.91 or note=\"text\"")
        try:
            value = float(text)
        except ValueError:
            tags[key] = text
        else:
            if math.isinf(value) and text.strip().lstrip("+-").lower() not in ("inf", "infinity"):
                # float() turns a number too large for a float into inf; the API refuses it, so do we
                raise UsageError(f"{key}={text[:20]}... is too large for a float metric; log it scaled (for "
                                 f"example as a logarithm) or as a tag with --params")
            metrics[key] = value
    ended = magics.session.run
    if ended is not None and ended.status != "running":
        raise UsageError(f"run {ended.id} ({ended.name}) has ended ({ended.status}); start a new run with "
                         f"`%mlops start` before logging, so values do not land in a run you did not mean")
    run, message = magics.session.ensure_run()
    if message:
        print(message)
    if args.params:
        run.log_params({**metrics, **tags})
    else:
        if metrics:
            run.log_metrics(metrics)
        for key, value in tags.items():
            run.set_tag(key, value)
    print(f"mlops: logged {', '.join(args.pairs)} to run {run.id}")


@magic_arguments(name="mlops status")
@argument("run", nargs="?", type=int, help="a run id (default: this notebook's current run, also one started later)")
@argument("--text", action="store_true", help="print a text summary instead of showing the live widget")
def _status(magics, args):
    """Show a run's lifecycle as a widget that updates as later cells run: each stage's state,
    attempts, duration and captures, the requirement gate, integrity warnings, retraining runs."""
    session = magics.session
    if args.text:
        run_id = args.run if args.run is not None else (session.run.id if session.run else None)
        if run_id is None:
            print("mlops: no run yet; start one with `%mlops start PROJECT` or run a `%%stage data` cell")
            return
        from mlops_nb.notebook.widgets.text import status_text
        from mlops_nb.store import open_store
        from mlops_nb.tracking.views import run_view

        store = session.run.store if session.run else open_store(session.store, readonly=True)
        print(status_text(run_view(store, run_id)))
        return
    from IPython.display import display

    from mlops_nb.notebook.widgets.status import status_view

    display(status_view(session, args.run))


@magic_arguments(name="mlops check")
@argument("--against", default="champion", help="champion (default), a run id, or none")
@argument("--margin", type=float, help="how far the primary metric may trail the comparison (default 0.005)")
def _check(magics, args):
    """Judge this run as `mlops-nb check` would, without running it again: every stage ran, the
    requirement gate passed, no integrity problem, not worse than the champion; shown as a widget."""
    from IPython.display import display

    from mlops_nb.deploy.settings import DEFAULT_SETTINGS
    from mlops_nb.notebook.widgets.check import CheckWidget
    from mlops_nb.tracking.comparison import check_view, resolve_against
    from mlops_nb.tracking.judgement import judge

    run = magics.session.run
    if run is None:
        print("mlops: no run to check yet; start one with `%mlops start PROJECT` or run a `%%stage data` cell")
        return
    if args.against not in ("champion", "none") and not args.against.isdigit():
        raise UsageError(f"--against {args.against!r}: use champion, none or a run id such as 3")
    chosen = resolve_against(run.store, run.id, args.against)
    other = check_view(run.store, chosen.run_id) if chosen.run_id is not None else None
    margin = args.margin if args.margin is not None else float(DEFAULT_SETTINGS["margin"])
    judgement = judge(check_view(run.store, run.id), other, margin=margin, against_label=chosen.label,
                      no_comparison=chosen.reason)
    first = judgement["problems"][0]["message"] if judgement["problems"] else ""
    print(f"mlops: check of run {run.id}: {judgement['outcome']} (exit {judgement['exit']})"
          + (f": {first[:100]}" if first else ""))
    display(CheckWidget(judgement))


@magic_arguments(name="mlops compare")
@argument("project", nargs="?", help="project name (default: the current run's project, else every run)")
@argument("--where", help="filter, e.g. \"metrics.f1 > 0.8 and params.model = 'rf'\" (editable in the widget)")
def _compare(magics, args):
    """Compare runs in a widget: sortable, filterable, paginated table; tick runs to diff params,
    metrics, stage sources and data fingerprints; charts; export as CSV."""
    from IPython.display import display

    from mlops_nb.notebook.widgets.compare import CompareWidget

    run = magics.session.run
    project = args.project or (run.project if run else None)
    store = run.store if run else magics.session.store
    display(CompareWidget(project, where=args.where, store=store))


@magic_arguments(name="mlops runs")
@argument("project", nargs="?", help="project name (default: the current run's project)")
@argument("--where", help="filter, e.g. \"metrics.f1 > 0.8 and params.model = 'rf'\"")
def _runs(magics, args):
    """The runs table of the current project, as a DataFrame."""
    from mlops_nb.tracking import runs

    run = magics.session.run
    project = args.project or (run.project if run else None)
    store = run.store if run else magics.session.store
    return runs(project, where=args.where, store=store)


@magic_arguments(name="mlops register")
@argument("variable", help="the notebook variable holding the fitted model (captured by a stage cell)")
@argument("--name", required=True, help="the model's name in the registry, e.g. churn")
@argument("--description", help="free text kept with the version")
@argument("--force", metavar="REASON",
          help="register despite a failed, missing or stale gate; recorded, and the version is never champion")
def _register(magics, args):
    """Register the latest captured VARIABLE of this run as the next version of model NAME
    (`%mlops register clf --name churn`); the first version becomes the champion."""
    from mlops_nb.tracking.registry import register

    run, message = magics.session.ensure_run()
    if message:
        print(message)
    version = register(args.variable, args.name, run=run, description=args.description, by="%mlops register",
                       force=args.force)
    print(f"mlops: registered {version} from {args.variable} of run {run.id}"
          + (f", forced ({version.forced})" if version.forced else "")
          + ("" if "champion" in version.aliases else
             f"; make it the champion with `%mlops promote {version.name} {version.version}`"))
    from mlops_nb.deploy.materialize import warm_up

    warm_up()  # an export usually follows: let its replay process import the libraries meanwhile


@magic_arguments(name="mlops promote")
@argument("name", help="the model's name")
@argument("version", help="a version number, or an alias such as challenger")
@argument("--alias", default="champion", choices=["champion", "challenger", "previous"],
          help="the alias to move (default champion; the old champion becomes previous)")
@argument("--reason", help="why, kept in the alias history")
def _promote(magics, args):
    """Point an alias of model NAME at VERSION: `%mlops promote churn 2 --alias champion`."""
    from mlops_nb.tracking.registry import promote

    if _skipped_under_check("promote"):
        return
    run = magics.session.run
    version = promote(args.name, args.version, args.alias, reason=args.reason, by="%mlops promote",
                      run=run, store=run.store if run else magics.session.store)
    print(f"mlops: {args.alias} of {version.name} is now version {version.version}")


@magic_arguments(name="mlops export")
@argument("name", help="the registered model's name")
@argument("--version", help="a version number or alias (default: the champion)")
@argument("--to", required=True, help="the package folder to write (replaced atomically)")
@argument("--schedule", help='cron expression for retraining (default "0 3 * * 1": Mondays 03:00)')
@argument("--data", help="where fresh data will be: a CSV, Parquet or JSON path or glob")
@argument("--airflow", action="store_true", help="also write airflow_dag.py")
@argument("--kubernetes", action="store_true",
          help="also write cronjob.yaml, serving.yaml (Deployment and Service) and their Dockerfile")
@argument("--image", help="the image the Kubernetes files run (default: a placeholder)")
@argument("--volume-claim", dest="volume_claim", metavar="NAME",
          help="mount the package and the store from this PersistentVolumeClaim (default: hostPath)")
@argument("--force", metavar="REASON", help="export despite the refusals; the reason is recorded")
@argument("--make-champion", dest="make_champion", action="store_true",
          help="export a version that is not the champion into an existing package, and make it the champion")
@argument("--X", dest="x_name", metavar="NAME", help="the frame holding the model's input, when ambiguous")
@argument("--y", dest="y_name", metavar="NAME", help="the frame holding the target, when ambiguous")
def _export(magics, args):
    """Write model NAME as a deployment package: `%mlops export churn --to deploy/churn --data "in/*.csv"`."""
    from mlops_nb.deploy.export import export_package

    if _skipped_under_check("export"):
        return
    run = magics.session.run
    result = export_package(
        args.name, version=args.version, to=args.to, schedule=args.schedule, data=args.data, force=args.force,
        airflow=args.airflow, kubernetes=args.kubernetes, X=args.x_name, y=args.y_name,
        store=run.store if run else magics.session.store, command=_command_line("export", args),
        make_champion=args.make_champion, image=args.image, volume_claim=args.volume_claim,
    )
    print(result)


@magic_arguments(name="mlops sync")
@argument("--tracking-uri", dest="uri", help="the MLflow server (default: the store's mlflow_uri, "
          "else $MLFLOW_TRACKING_URI)")
@argument("--project", action="append", help="only this project (repeat for several)")
@argument("--since", type=int, metavar="RUN", help="only runs from this run id on")
@argument("--dry-run", dest="dry_run", action="store_true", help="say what would be pushed; push nothing")
@argument("--auto", action="store_true", help="also remember the URI: every run's end pushes itself")
@argument("--no-auto", dest="no_auto", action="store_true", help="forget the remembered URI")
def _sync(magics, args):
    """Push this store's new runs and models to an MLflow server: `%mlops sync --tracking-uri http://host:5000`."""
    from mlops_nb.store import open_store
    from mlops_nb.sync import sync_mlflow
    from mlops_nb.tracking import sync_state

    run = magics.session.run
    store = run.store if run is not None else open_store(magics.session.store)
    if args.no_auto:
        sync_state.set_setting("mlflow_uri", None, store=store)
        print("mlops: runs no longer push themselves to MLflow")
        return
    uri = args.uri or store.setting("mlflow_uri") or os.environ.get("MLFLOW_TRACKING_URI")
    if args.auto and uri:
        sync_state.set_setting("mlflow_uri", uri, store=store)
    summary = sync_mlflow(uri or "", store=store, projects=args.project, since=args.since, dry_run=args.dry_run,
                          progress=False)
    print(summary.line() + (" (every run's end pushes itself from now on)" if args.auto and uri else ""))


def _skipped_under_check(action: str) -> bool:
    """True (after saying so in one line) when `mlops-nb check` runs this notebook: a check replays and
    judges a change before it is merged, so it must not move a champion or rewrite a deployed package
    that cron and servers use. Registering still happens: it is how a check's run becomes comparable."""
    from mlops_nb.store import CHECK_ENV_VAR

    if not os.environ.get(CHECK_ENV_VAR):
        return False
    print(f"mlops: {action} skipped: `mlops-nb check` judges this notebook and never deploys; "
          f"run the notebook itself to {action}")
    return True


def _command_line(name: str, args: Any) -> str:
    """The sub-command as a user would type it again, from its parsed arguments (for the record)."""
    words = [f"%mlops {name}"]
    for action in SUBCOMMANDS[name].parser._actions:
        value = getattr(args, action.dest, None)
        if action.dest == "help" or value in (None, False):
            continue
        if not action.option_strings:
            words.append(shlex.quote(str(value)))
        elif value is True:
            words.append(action.option_strings[0])
        else:
            words.append(f"{action.option_strings[0]} {shlex.quote(str(value))}")
    return " ".join(words)


SUBCOMMANDS = {
    "start": _start,
    "end": _end,
    "require": _require,
    "log": _log,
    "status": _status,
    "check": _check,
    "compare": _compare,
    "runs": _runs,
    "register": _register,
    "promote": _promote,
    "export": _export,
    "sync": _sync,
}


def _mlops_help() -> str:
    parts = ["Record the lifecycle of this notebook in the mlops-nb store.\n\nSub-commands:\n"]
    for func in SUBCOMMANDS.values():
        parts.append(func.parser.format_help())
    return "\n".join(parts)


@magics_class
class MlopsMagics(Magics):
    """The ``%mlops`` line magic and the ``%%stage`` cell magic."""

    @property
    def session(self) -> NotebookSession:
        return session_for(self.shell)

    @line_magic
    def mlops(self, line: str = "") -> Any:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"cannot read `%mlops {line}`: {exc}") from None
        if not words or words[0] not in SUBCOMMANDS:
            given = f"unknown sub-command {words[0]!r}; " if words else ""
            raise UsageError(f"{given}use one of: {', '.join(SUBCOMMANDS)} (see %mlops?)")
        func = SUBCOMMANDS[words[0]]
        args = func.parser.parse_args(words[1:])
        try:
            return func(self, args)
        except MlopsError as exc:
            raise UsageError(str(exc)) from None

    mlops.__doc__ = _mlops_help()

    @cell_magic
    def stage(self, line: str, cell: str) -> None:
        """%%stage NAME: mark this cell as a lifecycle stage and record it.

        NAME is one of: requirements, data, eda, features, selection, model, tuning, validation,
        deployment, retraining. The cell runs exactly as it would without this line; mlops-nb
        records its source, duration, outcome and what it produced (DataFrames, fitted models,
        searches, validation metrics).
        """
        name = line.strip()
        if stage_of(f"%%stage {name}") is None:
            raise UsageError(f"unknown stage {name!r}; use one of: {', '.join(STAGES)}")
        # Reached only when code calls run_cell_magic directly (the transformer handles cells).
        self.shell.run_cell(f"%%stage {name}\n{cell}", store_history=False)


def _ours(callback: Any) -> bool:
    return getattr(callback, "__module__", "").startswith("mlops_nb.")


def load(shell: Any) -> None:
    """Register the magics, the ``%%stage`` transformer and the events; safe to call again."""
    shell.register_magics(MlopsMagics)
    cleanup = shell.input_transformers_cleanup
    cleanup[:] = [t for t in cleanup if not _ours(t)]
    cleanup.append(strip_stage_header)
    session = session_for(shell)
    for event, handler in (("pre_run_cell", session.before_cell), ("post_run_cell", session.after_cell)):
        for callback in list(shell.events.callbacks[event]):
            if _ours(callback):
                shell.events.unregister(event, callback)
        shell.events.register(event, handler)
    for event in ("pre_run_cell", "post_run_cell"):  # after the recording: views show what was recorded
        shell.events.register(event, session.refresh_views)
    tracking_context.set_provider(_current)
    sync_auto.install()  # a run that ends pushes itself when the store has the mlflow_uri setting


def _current() -> tracking_context.Current | None:
    """Tracking's view of this kernel: its current run, store, namespace and folder."""
    session = current_session()
    if session is None:
        return None
    return tracking_context.Current(run=session.run, store=session.store, namespace=session.shell.user_ns,
                                    workdir=os.getcwd())


def unload(shell: Any) -> None:
    """Remove the transformer and the events (``%unload_ext mlops_nb``)."""
    cleanup = shell.input_transformers_cleanup
    cleanup[:] = [t for t in cleanup if not _ours(t)]
    for event in ("pre_run_cell", "post_run_cell"):
        for callback in list(shell.events.callbacks[event]):
            if _ours(callback):
                shell.events.unregister(event, callback)
