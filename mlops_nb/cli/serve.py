"""``mlops-nb serve`` (the scoring server) and ``mlops-nb monitor`` (what it saw, beside retraining)."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import click

from mlops_nb.cli.main import main

#: Exit status when the address cannot be bound (in use, or not an address of this host).
EXIT_ADDRESS = 75


@main.command(short_help="Serve a package's model over HTTP (MLflow's scoring protocol); record what it is sent.")
@click.argument("package_dir", metavar="PACKAGE", type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="The one address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="The port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes (each loads the model and records its own minutes).")
@click.option("--log-rows", "log_rows", default=0.0, type=click.FloatRange(0, 1), metavar="FRACTION",
              help="Keep this share of the rows sent (all their columns) in the store, for `monitor --rows`.")
@click.option("--no-monitor", is_flag=True, help="Record nothing in the store.")
@click.option("--public-key", metavar="PATH", help="Accept only a package signed by this public key "
              "(default: $MLOPS_NB_PUBLIC_KEY).")
@click.pass_context
def serve(ctx: click.Context, package_dir: Path, host: str, port: int, workers: int, log_rows: float,
          no_monitor: bool, public_key: str | None) -> None:
    """Serve PACKAGE's model on http://HOST:PORT with MLflow's scoring protocol, so clients of
    `mlflow models serve` work unchanged: POST /invocations with a JSON body holding one of
    dataframe_split, dataframe_records, instances or inputs, or text/csv; the answer is
    {"predictions": [...]}. GET /ping and /health answer 200, /version the package version, model
    version and manifest SHA-256. A request that does not fit the schema gets 400 naming the column.

    The package is verified before it is loaded (exit 82 when tampered). When its `current` link
    moves (a retraining promotion, a rollback), the server verifies and loads the new version aside
    and switches to it without a restart; a version that fails verification is refused and the old
    one keeps serving. Every minute it records requests, rows, latency, errors, the prediction
    distribution and the inputs' drift against the package's reference in the store (--store, else
    $MLOPS_NB_STORE, else the package's own); `mlops-nb monitor PACKAGE` shows them.

    \b
    Exit status: 0 stopped (Ctrl-C), 75 the address cannot be bound, 78 a broken package or
    store, 82 the package failed verification, 2 bad options.

    \b
    Examples:
      mlops-nb serve deploy/churn --port 5000
      curl -H 'Content-Type: application/json' -d '{"dataframe_records": [{"age": 41}]}' localhost:5000/invocations
    """
    import uvicorn

    from mlops_nb.deploy.serve.app import CONFIG_VAR, build

    store = (ctx.find_root().obj or {}).get("store")
    config: dict[str, Any] = {"package": str(package_dir.absolute()), "store": store, "public_key": public_key,
                              "monitor": not no_monitor, "log_rows": log_rows}
    app = build(config)  # verifies: a tampered package ends here, before any socket is bound
    try:
        with socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET):
            pass
    except OSError as exc:
        click.echo(f"error: cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port", err=True)
        ctx.exit(EXIT_ADDRESS)
    click.echo(f"mlops-nb serve: {package_dir} on http://{host}:{port} (Ctrl-C stops)", err=True)
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=30)
    else:
        os.environ[CONFIG_VAR] = json.dumps(config)
        uvicorn.run("mlops_nb.deploy.serve.app:from_environment", factory=True, host=host, port=port,
                    workers=workers, log_level="warning", access_log=False, timeout_graceful_shutdown=30)


@main.command(short_help="Traffic, latency and input drift a package's servers recorded, beside its retraining.")
@click.argument("package_dir", metavar="PACKAGE", type=click.Path(file_okay=False, path_type=Path))
@click.option("--minutes", default=60, show_default=True, type=click.IntRange(1, 100_000),
              help="How many of the latest minutes to show.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--rows", "rows_out", metavar="OUT", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the rows the servers logged (--log-rows) to OUT (CSV), for retraining with --data OUT.")
@click.pass_context
def monitor(ctx: click.Context, package_dir: Path, minutes: int, fmt: str, rows_out: Path | None) -> None:
    """Show what PACKAGE's scoring servers recorded, minute by minute (requests, rows, errors,
    latency p50/p99 in ms, the share of input columns drifting and which), next to the package's
    retraining runs (when, decision, drift). Reads the store (--store, else $MLOPS_NB_STORE, else the
    package's own) without writing to it.

    \b
    Examples:
      mlops-nb monitor deploy/churn
      mlops-nb monitor deploy/churn --format json
      mlops-nb monitor deploy/churn --rows served.csv   # add the target column, then: retrain --data served.csv
    """
    from mlops_nb import store as store_module
    from mlops_nb.deploy.layout import package_root
    from mlops_nb.deploy.verify import read_manifest
    from mlops_nb.tracking.views import serving_view

    root = package_root(package_dir)
    explicit = (ctx.find_root().obj or {}).get("store") or os.environ.get(store_module.ENV_VAR)
    path = explicit or read_manifest(root).get("store")
    opened = store_module.open_store(path, readonly=True)
    view = serving_view(opened, package=str(root.absolute()), limit=minutes)
    if rows_out is not None:
        written = write_logged_rows(opened, str(root.absolute()), rows_out)
        click.echo(f"{written} logged rows written to {rows_out}", err=True)
        return
    if fmt == "json":
        click.echo(json.dumps(view, indent=2))
        return
    for line in monitor_lines(view):
        click.echo(line)


def write_logged_rows(opened: Any, package: str, out: Path) -> int:
    """Concatenate the rows the servers of ``package`` logged into ``out`` (CSV); their count."""
    import pandas as pd

    from mlops_nb.deploy.predict import check_output
    from mlops_nb.errors import DataNotFound

    check_output(out)
    frames = []
    for row in opened.serving_minutes(package=package, limit=10**9):
        if row["rows_path"]:
            frames.append(pd.read_csv(opened.artifact_path(row["rows_path"])))
    if not frames:
        raise DataNotFound(f"no rows were logged for {package}; serve it with --log-rows FRACTION first")
    table = pd.concat(frames, ignore_index=True)
    table.to_csv(out, index=False)
    return len(table)


def monitor_lines(view: dict[str, Any]) -> list[str]:
    """The terminal rendering of :func:`mlops_nb.tracking.views.serving_view`."""
    from mlops_nb.cli.render import table_lines

    minutes = view["minutes"]
    title = (f"serving {view['package']}: {view['totals']['requests']} requests, {view['totals']['rows']} rows, "
             f"{view['totals']['errors']} errors, {view['totals']['bad_requests']} bad requests "
             f"over {len(minutes)} minute{'s' if len(minutes) != 1 else ''}")
    events = [("serve", m["minute"], m) for m in minutes]
    events += [("retrain", r["start_time"], r) for r in view["retraining"]]
    rows = []
    for kind, when, item in sorted(events, key=lambda e: e[1]):
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(when))
        if kind == "serve":
            drifted = ", ".join(item["drifted"] or [])
            share = "" if item["drift_share"] is None else f"{item['drift_share']:.0%}"
            rows.append([stamp, item["version_dir"] or "", str(item["requests"]), str(item["rows"]),
                         str(item["errors"] + item["bad_requests"]), f"{item['latency_p50']:.1f}",
                         f"{item['latency_p99']:.1f}", f"{share} {drifted}".strip(), _predictions(item)])
        else:
            drift = item["tags"].get("dataset_drift")
            rows.append([stamp, f"retrain run {item['id']}", "", "", "", "", "", "" if drift is None else
                         f"dataset drift: {drift}", item["decision"]])
    if not rows:
        return [title, "nothing recorded yet: start `mlops-nb serve PACKAGE` and send it requests"]
    header = ["minute", "version", "requests", "rows", "errors", "p50 ms", "p99 ms", "input drift", "predictions"]
    return table_lines(title, rows, header)


def _predictions(minute: dict[str, Any]) -> str:
    p = minute.get("predictions") or {}
    if p.get("kind") == "labels":
        text = " ".join(f"{k}:{v}" for k, v in sorted(p["counts"].items()))
    elif p.get("kind") == "numeric":
        text = f"p50 {p['p50']:.3g} [{p['p10']:.3g}, {p['p90']:.3g}]"
    else:
        text = ""
    d = p.get("drift") or {}
    return f"{text} (psi {d['value']:.2f})" if d.get("value") is not None else text
