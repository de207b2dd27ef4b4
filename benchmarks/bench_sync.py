"""Pushing a store to a local ``mlflow server``, against MLflow's own client logging the same content.

    python benchmarks/bench_sync.py              # 1,000 runs x 10 params x 10 metrics x 100 steps
    python benchmarks/bench_sync.py --runs 100   # a quicker look

One ``mlflow server`` (SQLite backend, local artifact folder) on a free loopback port serves both
sides. The baseline creates each run with ``MlflowClient.create_run`` (its tags), logs its params and
metric values with ``log_batch`` in batches within MLflow's limits, and ends it with ``set_terminated``,
into an experiment of its own. ``mlops-nb sync mlflow`` then pushes the store (same runs, same values)
into another. Per run both make the same four requests (create, two log_batch, the end); the sync also
sends six ``mlops_nb.*`` tags where the baseline sends one (identity, store, kind, integrity, the
environment's holder), writes its bookkeeping (three writes a run) and uploads ``environment.json``
once per server (identical environments are shared). The two sides alternate in slices of runs, so a
noisy neighbour slows both alike. Then the no-op re-sync (nothing new) is timed.

Targets: the sync's runs per second at least 80% of the baseline's; a no-op re-sync under 2 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PARAMS, METRICS, STEPS = 10, 10, 100


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    while True:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2)
            return process, uri
        except OSError:
            if process.poll() is not None:
                raise SystemExit("mlflow server did not start") from None
            time.sleep(0.5)


def build_runs(path: Path, first: int, count: int) -> None:
    """``count`` ended runs, each with 10 params and 10 metrics x 100 steps, through the public API."""
    import mlops_nb as mnb

    for r in range(first, first + count):
        with mnb.start("bench", store=path, name=f"r{r}") as run:
            run.log_params({f"p{i}": i * r for i in range(PARAMS)})
            for step in range(STEPS):
                run.log_metrics({f"m{i}": (step + 1) / (i + r + 1) for i in range(METRICS)}, step=step)


def baseline(client, experiment_id: str, store, run_ids: list[int]) -> None:
    """MLflow's client logging the same content: create_run, log_batch within the limits, set_terminated."""
    from mlflow.entities import Metric, Param

    for run_id in run_ids:
        row = store.run(run_id)
        created = client.create_run(experiment_id, start_time=int(row["start_time"] * 1000), run_name=row["name"],
                                    tags={"mlops_nb.run_id": str(run_id)})
        remote = created.info.run_id
        params, _ = store.run_params_tags(run_id)
        params = [Param(k, str(v)) for k, v in params.items()]
        rows = store.metric_rows(run_id, 0, 10**9)
        metrics = [Metric(k, v, int(t * 1000), s) for _, k, s, v, t in rows]
        first = 1000 - len(params)
        client.log_batch(remote, metrics=metrics[:first], params=params, synchronous=True)
        for i in range(first, len(metrics), 1000):
            client.log_batch(remote, metrics=metrics[i:i + 1000], synchronous=True)
        client.set_terminated(remote, "FINISHED", end_time=int(row["end_time"] * 1000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs in the store (default 1000)")
    parser.add_argument("--slices", type=int, default=10, help="alternations of the two sides (default 10)")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

    folder = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    print(f"{args.runs:,} runs x {PARAMS} params x {METRICS} metrics x {STEPS} steps, in {args.slices} slices")
    store_path = folder / "mlops.db"
    (folder / "mlflow").mkdir()
    server, uri = start_server(folder / "mlflow")
    try:
        from mlflow import MlflowClient

        from mlops_nb.store import open_store
        from mlops_nb.sync import sync_mlflow

        store = open_store(store_path, create=True)
        client = MlflowClient(tracking_uri=uri)
        experiment = client.create_experiment("baseline")
        size = max(1, args.runs // args.slices)
        base_times, sync_times = [], []
        for first in range(0, args.runs, size):
            # The store grows by a slice (not timed); each side then pushes that slice.
            build_runs(store_path, first, min(size, args.runs - first))
            part = [r["id"] for r in store.runs_to_sync(since=first + 1)]
            started = time.perf_counter()
            baseline(client, experiment, store, part)
            base_times.append((time.perf_counter() - started) / len(part))
            started = time.perf_counter()
            summary = sync_mlflow(uri, store=store, since=part[0], progress=False)
            sync_times.append((time.perf_counter() - started) / len(part))
            assert summary.runs_created == len(part), summary.line()
        values = METRICS * STEPS
        ids = [r['id'] for r in store.runs_to_sync()]
        base_rps, sync_rps = 1 / statistics.median(base_times), 1 / statistics.median(sync_times)
        print(f"MLflow client log_batch : {base_rps:8.1f} runs/s  {base_rps * values:10,.0f} metric values/s "
              f"(median of {len(base_times)} slices)")
        print(f"mlops-nb sync mlflow    : {sync_rps:8.1f} runs/s  {sync_rps * values:10,.0f} metric values/s "
              f"-> {sync_rps / base_rps:.0%} of the baseline (target >= 80%): "
              f"{'PASS' if sync_rps >= 0.8 * base_rps else 'MISS'}")
        noop = []
        for _ in range(5):
            started = time.perf_counter()
            summary = sync_mlflow(uri, store=store, progress=False)
            noop.append(time.perf_counter() - started)
            assert summary.nothing, summary.line()
        median = statistics.median(noop)
        print(f"no-op re-sync of {len(ids):,} runs: {median:.3f} s median of 5 (target < 2 s): "
              f"{'PASS' if median < 2 else 'MISS'}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        shutil.rmtree(folder, ignore_errors=True)  # the store and the server database of the run


if __name__ == "__main__":
    main()
