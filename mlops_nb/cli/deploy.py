"""Commands that write, check or run deployment packages: export, predict, reseal, verify, retrain,
rollback and the crontab lines."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from mlops_nb.cli.main import _Group, main, open_existing
from mlops_nb.cli.render import EMPTY, table_lines


@main.command(name="export", short_help="Write a model as a deployment package with retrain.py and cron line.")
@click.argument("name")
@click.option("--to", "to", required=True, metavar="DIR", help="The package folder (replaced atomically).")
@click.option("--version", "-v", metavar="V", help="A version number or alias. Default: the champion.")
@click.option("--schedule", metavar="CRON", help='Retraining schedule. Default: "0 3 * * 1" (Mondays 03:00).')
@click.option("--data", metavar="SOURCE", help="Where fresh data will be: CSV, Parquet or JSON path or glob.")
@click.option("--airflow", is_flag=True, help="Also write airflow_dag.py.")
@click.option("--kubernetes", is_flag=True,
              help="Also write cronjob.yaml, serving.yaml (Deployment and Service) and their Dockerfile.")
@click.option("--image", metavar="IMAGE", help="The image the Kubernetes files run. Default: a placeholder.")
@click.option("--volume-claim", "volume_claim", metavar="NAME",
              help="Mount the package and the store from this PersistentVolumeClaim. Default: hostPath.")
@click.option("--force", metavar="REASON", help="Export despite the refusals; the reason is recorded.")
@click.option("--make-champion", is_flag=True,
              help="Export a version that is not the champion into an existing package, and make it the champion.")
@click.option("--X", "x_name", metavar="NAME", help="The notebook frame holding the model's input, if ambiguous.")
@click.option("--y", "y_name", metavar="NAME", help="The notebook frame holding the target, if ambiguous.")
@click.pass_context
def export_command(ctx: click.Context, name: str, to: str, version: str | None, schedule: str | None,
                   data: str | None, airflow: bool, kubernetes: bool, image: str | None, volume_claim: str | None,
                   force: str | None, make_champion: bool, x_name: str | None, y_name: str | None) -> None:
    """Export registered model NAME as a package: model.skops, schema, reference data, metrics, pinned
    requirements, a retrain.py generated from the notebook's data/features/selection cells, and
    crontab.txt. Refuses a version whose own stage attempt failed or skipped its gate or is stale, or a
    run with no data stage, saying why; --force REASON overrides and is recorded. Into an existing
    package, only the registry's champion is exported unless --make-champion.

    \b
    Examples:
      mlops-nb export churn --to deploy/churn --data "incoming/*.csv"
      mlops-nb export churn --version 2 --to deploy/churn --schedule "0 3 * * 1" --airflow --kubernetes
      mlops-nb export churn --to deploy/churn --kubernetes --image registry.example.com/churn:1 --volume-claim mlops
    """
    from mlops_nb.deploy.cron import check_schedule
    from mlops_nb.deploy.export import export_package

    if schedule is not None:  # a schedule that never fires is configuration (78), as in `cron install`
        check_schedule(schedule.strip())
    words = ["mlops-nb export"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value in (None, False) or not isinstance(param, click.Argument | click.Option):
            continue
        flag = "" if isinstance(param, click.Argument) else param.opts[0]
        words.append(flag if value is True else f"{flag} {shlex.quote(str(value))}".strip())
    result = export_package(
        name, version=version, to=to, schedule=schedule, data=data, force=force, airflow=airflow,
        kubernetes=kubernetes, X=x_name, y=y_name, store=open_existing(ctx), command=" ".join(words),
        make_champion=make_champion, image=image, volume_claim=volume_claim,
    )
    click.echo(str(result).removeprefix("mlops: "))


@main.command(short_help="Predict with a package's model: raw rows or model input, checked against its schema.")
@click.argument("package_dir", metavar="PACKAGE", type=click.Path(file_okay=False, path_type=Path))
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "-o", metavar="OUT", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the predictions to OUT (.csv, .json records or .parquet). Default: CSV on standard output.")
@click.option("--input", "input_kind", type=click.Choice(["auto", "raw", "model"]), default="auto", show_default=True,
              help="raw: rows as the notebook's data stage produced them (without the target), made into the "
                   "model's input by the package's features.py; model: rows of the model's input; auto: told "
                   "apart by the columns.")
@click.option("--public-key", metavar="PATH", help="Accept only a package signed by this public key "
              "(default: $MLOPS_NB_PUBLIC_KEY).")
def predict(package_dir: Path, input_path: Path, output: Path | None, input_kind: str, public_key: str | None) -> None:
    """Predict the rows of INPUT (CSV, Parquet, or JSON: records, {"columns", "data"} or MLflow's
    dataframe_split / dataframe_records) with the model of PACKAGE: a `prediction` column, plus
    `probability_<class>` columns for classifiers. INPUT holds raw rows (the columns of the
    package's input_example.json) or rows of the model's input; text columns stay text ("1" is not
    read as a number where the notebook had strings). The package is verified and its model loaded
    with mlops-nb's allow-list of types. Exit status 65 when INPUT does not match the schema (the
    message names each column) or cannot be read as a table, 66 when INPUT is missing or empty, 78
    when OUT lies inside a package or the package is malformed, 82 when the package fails its
    checksums or needs an untrusted type.

    \b
    Examples:
      mlops-nb predict deploy/churn new_customers.csv -o predictions.csv
      mlops-nb predict deploy/churn deploy/churn/current/input_example.json
    """
    from mlops_nb.deploy.exits import EXIT_BAD_DATA, EXIT_INTEGRITY, EXIT_NO_DATA
    from mlops_nb.deploy.layout import package_dir as version_dir
    from mlops_nb.deploy.model import load_model
    from mlops_nb.deploy.predict import check_output
    from mlops_nb.deploy.rows import check_input_file, read_rows
    from mlops_nb.deploy.schema import read_schema
    from mlops_nb.errors import ChecksumError, DataNotFound, SchemaMismatch, UntrustedTypes

    if output is not None:
        check_output(output)  # before reading anything: never write inside a package (exit 78)
    try:
        check_input_file(input_path)  # a missing input is said first (66), whatever the package
        folder = version_dir(package_dir)  # one version throughout, even if a promotion moves `current`
        model = load_model(folder, public_key=public_key)  # verified before anything of it is loaded
        frame, kind = read_rows(input_path, read_schema(folder), input_kind)
        predictions = _predict_in_chunks(folder, frame, model, kind)
    except SchemaMismatch as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_BAD_DATA) from None
    except DataNotFound as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_NO_DATA) from None
    except (ChecksumError, UntrustedTypes) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_INTEGRITY) from None
    if output is None:
        click.echo(predictions.to_csv(index=False), nl=False)
        return
    suffix = output.suffix.lower()
    if suffix in (".parquet", ".pq"):
        predictions.to_parquet(output, index=False)
    elif suffix == ".json":
        predictions.to_json(output, orient="records")
    else:
        predictions.to_csv(output, index=False)
    click.echo(f"{len(predictions)} predictions written to {output} (input: {kind} rows)", err=True)


#: Rows predicted at a time; a file of more than one chunk shows a progress bar at a terminal.
PREDICT_CHUNK = 10_000


def _predict_in_chunks(folder: Path, frame: Any, model: Any, kind: str) -> Any:
    import sys

    import pandas as pd
    from tqdm import tqdm

    from mlops_nb.deploy.predict import predict as predict_frame

    starts = range(0, len(frame), PREDICT_CHUNK)
    bar = tqdm(total=len(frame), unit="rows", file=sys.stderr, disable=len(starts) < 2 or not sys.stderr.isatty())
    parts = []
    with bar:
        for start in starts:
            chunk = frame.iloc[start:start + PREDICT_CHUNK]
            parts.append(predict_frame(folder, chunk, model=model, input=kind))
            bar.update(len(chunk))
    return pd.concat(parts) if len(parts) > 1 else parts[0]


@main.command(short_help="Accept a package file or settings.json you edited on purpose: re-sign and record.")
@click.argument("package_dir", metavar="PACKAGE", type=click.Path(file_okay=False, path_type=Path))
@click.option("--file", "files", multiple=True, metavar="FILE", help="A file to re-seal. Default: retrain.py.")
@click.pass_context
def reseal(ctx: click.Context, package_dir: Path, files: tuple[str, ...]) -> None:
    """Record new checksums in MANIFEST.json for FILEs you edited (default retrain.py) and accept
    the package root's settings.json as it is, after checking that every other file still matches
    the manifest the store recorded; sign the version again with the key beside the store and
    record the new manifest there.

    \b
    Examples:
      mlops-nb reseal deploy/churn
      mlops-nb reseal deploy/churn --file schema.json
    """
    from mlops_nb.deploy.layout import SCRIPT_FILE
    from mlops_nb.deploy.verify import read_manifest
    from mlops_nb.deploy.verify import reseal as reseal_files
    from mlops_nb.store import open_store
    from mlops_nb.tracking.manifests import record_manifest

    given = ctx.obj.get("store") if isinstance(ctx.obj, dict) else None
    opened = open_store(given or read_manifest(package_dir).get("store"))

    def record(manifest: bytes, seal, *, package: str, version_dir: str, quiet: bool = False) -> None:
        import json

        document = json.loads(manifest)
        run_id = (document.get("retrained") or {}).get("run_id") or document["run"]["id"]
        record_manifest(manifest, package=package, version_dir=version_dir, run_id=run_id, reason="reseal",
                        signature=seal.signature, key_id=seal.key_id, model_name=document["model"]["name"],
                        model_version=document["model"]["version"], store=opened)
        if not quiet:
            click.echo(f"re-sealed {', '.join(files or (SCRIPT_FILE,))} and settings.json in {package_dir} "
                       f"({version_dir}): signed with key {seal.key_id}, recorded in {opened.path}")

    reseal_files(package_dir, files or (SCRIPT_FILE,), store=opened, record=record)


@main.command(name="verify", short_help="Check a package against its recorded manifest or its signature.")
@click.argument("package_dir", metavar="PACKAGE", type=click.Path(file_okay=False, path_type=Path))
@click.option("--public-key", metavar="PATH", help="Accept only a package signed by this public key "
              "(default: $MLOPS_NB_PUBLIC_KEY).")
@click.pass_context
def verify_command(ctx: click.Context, package_dir: Path, public_key: str | None) -> None:
    """Verify PACKAGE without running anything in it: every file's checksum, the manifest the store
    recorded (else the package's signature), settings.json, and the pinned key. Exit status 0 when
    it verifies, 82 naming each file that does not.

    \b
    Examples:
      mlops-nb verify deploy/churn
      mlops-nb verify /srv/models/churn --public-key keys/public_key.pem
    """
    from mlops_nb.deploy.exits import EXIT_INTEGRITY
    from mlops_nb.deploy.layout import package_dir as version_folder
    from mlops_nb.deploy.verify import check_anchor, check_files, read_manifest
    from mlops_nb.errors import ChecksumError

    given = ctx.obj.get("store") if isinstance(ctx.obj, dict) else None
    try:
        folder = version_folder(package_dir)
        manifest = read_manifest(folder)
        check_files(folder, manifest)
        how = check_anchor(folder, manifest, store=given, public_key=public_key)
    except ChecksumError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_INTEGRITY) from None
    click.echo(f"verified {folder}: {len(manifest['files'])} files; {how}")


# -- retraining, rollback, cron --------------------------------------------------------------


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
    from mlops_nb.deploy.rollback import rollback as do_rollback

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
@click.option("--user", "-u", metavar="NAME",
              help="Another account's crontab (root only): the job then runs as NAME, e.g. a service account.")
@click.pass_context
def cron_install(ctx: click.Context, package_dir: Path, schedule: str | None, user: str | None) -> None:
    """Install PACKAGE's retraining line in your crontab (replacing its earlier line), and show when
    it runs next. The store is the global --store, else the one the package was exported from.

    \b
    Examples:
      mlops-nb cron install deploy/churn
      mlops-nb cron install deploy/churn --schedule "*/30 * * * *"
      sudo mlops-nb cron install deploy/churn --user mlops   # runs as the account mlops
    """
    from mlops_nb.deploy import cron as cron_module

    entry = cron_module.install(package_dir, schedule=schedule, store=ctx.obj["store"], user=user)
    moments = ", ".join(m.strftime("%Y-%m-%d %H:%M") for m in entry.next_runs(3))
    click.echo(f"installed: {entry.schedule} retraining of {entry.package} (next: {moments})")
    click.echo(f"  {entry.command}")


@cron.command(name="list", short_help="mlops-nb's lines in your crontab.")
@click.option("--user", "-u", metavar="NAME",
              help="Another account's crontab (root only): the job then runs as NAME, e.g. a service account.")
def cron_list(user: str | None) -> None:
    """List mlops-nb's retraining lines in your crontab: schedule, package, next run.

    \b
    Examples:
      mlops-nb cron list
    """
    from mlops_nb.deploy import cron as cron_module

    found = cron_module.entries(user=user)
    if not found:
        whose = "your crontab" if user is None else f"{user}'s crontab"
        click.echo(f"no mlops-nb retraining lines in {whose}; add one with `mlops-nb cron install PACKAGE`")
        return
    rows = [[e.schedule, str(e.package), "yes" if e.enabled else "no",
             e.next_runs(1)[0].strftime("%Y-%m-%d %H:%M") if e.enabled else EMPTY] for e in found]
    click.echo("\n".join(line[2:] for line in table_lines("cron", rows, ["schedule", "package", "enabled",
                                                                          "next run"])[1:]))


@cron.command(name="remove", short_help="Remove a package's line (or all of mlops-nb's).")
@click.argument("package_dir", metavar="PACKAGE", required=False, type=click.Path(path_type=Path))
@click.option("--all", "everything", is_flag=True, help="Remove every mlops-nb line.")
@click.option("--user", "-u", metavar="NAME",
              help="Another account's crontab (root only): the job then runs as NAME, e.g. a service account.")
def cron_remove(package_dir: Path | None, everything: bool, user: str | None) -> None:
    """Remove PACKAGE's retraining line from your crontab (--all: every mlops-nb line). Other
    lines of your crontab are left alone.

    \b
    Examples:
      mlops-nb cron remove deploy/churn
      mlops-nb cron remove --all
    """
    from mlops_nb.deploy import cron as cron_module

    if (package_dir is None) == (not everything):
        raise click.UsageError("give a PACKAGE or --all")
    gone = cron_module.remove(None if everything else package_dir, user=user)
    if not gone:
        click.echo("nothing to remove: no mlops-nb line for " + ("any package" if everything else str(package_dir)))
    for entry in gone:
        click.echo(f"removed: {entry.schedule} retraining of {entry.package}")


