"""The sidebar's runs route over a project of 10,000 runs: one page must take <= 100 ms server-side.

    python benchmarks/bench_server.py            # 10,000 runs, about half a minute
    python benchmarks/bench_server.py --runs 50000

It writes a store through the store API (every run with 3 params, 2 metrics, a requirement, a gate
on most runs and an integrity warning on some), starts a real ``jupyter server`` with the extension
on a loopback port, and times each request scenario. Two figures per scenario, medians and p95 of
interleaved repetitions:

- ``server``: the time Jupyter Server itself logs for the request (handler and JSON, no network):
  the figure the 100 ms target is about;
- ``round trip``: the HTTP request from this process on loopback, for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cached_stores import cached_store  # noqa: E402

TARGET_MS = 100.0
CACHE_FROM = 50_000  # stores this large are built once and kept (benchmarks/cached_stores.py)


def scenarios(n_runs: int) -> dict[str, dict[str, str]]:
    """The request scenarios over a project of ``n_runs`` runs."""
    last = max(0, n_runs - 50)
    return {
        "first page (newest 50)": {},
        "sorted by metrics.f1": {"sort": "metrics.f1", "order": "desc"},
        "sorted by metrics.f1, ascending": {"sort": "metrics.f1", "order": "asc"},
        "filtered: metrics.f1 > 0.8 and params.model = 'rf'": {"where": "metrics.f1 > 0.8 and params.model = 'rf'"},
        "filtered by a metric, sorted by it": {"where": "metrics.f1 > 0.5", "sort": "metrics.f1"},
        f"last page (offset {last:,})": {"offset": str(last)},
        "200 per page, sorted by duration": {"limit": "200", "sort": "duration", "order": "asc"},
    }


def write_store(path: Path, n_runs: int) -> float:
    """``n_runs`` finished runs in project ``churn``; returns the seconds it took."""
    from mlops_nb.store import open_store
    from mlops_nb.store.writer import Writer  # a benchmark may populate through the writer directly

    started = time.perf_counter()
    opened = open_store(path, create=True)
    store = Writer(opened)
    rng = random.Random(0)
    for first in range(0, n_runs, 1000):
        with store.transaction():
            for i in range(first, min(first + 1000, n_runs)):
                run_id = store.create_run("churn", name=f"run-{i}", kind="notebook")
                store.log_params(run_id, {"C": rng.choice([0.1, 1.0, 10.0]), "model": rng.choice(["rf", "lr"]),
                                          "n_estimators": rng.randrange(50, 500)})
                f1 = rng.random()
                store.log_metrics([(run_id, "f1", 0, f1), (run_id, "accuracy", 0, min(1.0, f1 + 0.05))])
                store.set_requirement(run_id, metric="f1", op=">=", threshold=0.8, target="churned", notes=None)
                if i % 10:
                    stage_id = store.begin_stage(run_id, "validation", source="f1 = ...", source_sha256="0" * 64,
                                                 cell_id=None, execution_count=None, start_time=time.time())
                    store.finish_stage(run_id, stage_id, duration=0.01, status="ok", error=None, variables=[],
                                       captures=[], metrics={}, params={},
                                       gate={"metric": "f1", "op": ">=", "threshold": 0.8, "value": f1,
                                             "passed": int(f1 >= 0.8)})
                if i % 7 == 0:
                    store.replace_warnings(run_id, [{"kind": "stale", "stage": "model",
                                                     "message": "model is stale: data ran again after it"}])
                store.end_run(run_id, "finished")
    opened.close()
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, port: int, token: str, log: Path) -> subprocess.Popen:
    jupyter = Path(sys.executable).with_name("jupyter")
    command = [
        str(jupyter), "server", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}", "--ServerApp.allow_root=True",
        "--ServerApp.log_level=DEBUG",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("w"), cwd=root)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2).read()
            return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"jupyter server exited; see {log}") from None
            time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"jupyter server did not answer within 60 s; see {log}")


_LOGGED = re.compile(r"200 GET /mlops-nb/api/projects/churn/runs\S* .*? (\d+\.\d+)ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlops-bench-server-") as folder:
        root = Path(folder)
        if args.runs >= CACHE_FROM:
            cached = cached_store("server", args.runs, write_store, log=lambda m: print(m, file=sys.stderr))
            shutil.copyfile(cached, root / "mlops.db")
            print(f"store: {args.runs:,} runs, copied from the benchmark cache ({cached})")
        else:
            seconds = write_store(root / "mlops.db", args.runs)
            print(f"store: {args.runs:,} runs written in {seconds:.1f} s")
        port, token = free_port(), secrets.token_hex(16)
        log = root / "server.log"
        process = start_server(root, port, token, log)
        try:
            base = f"http://127.0.0.1:{port}/mlops-nb/api/projects/churn/runs"
            urls = {name: f"{base}?{urllib.parse.urlencode(params)}" for name, params in scenarios(args.runs).items()}
            headers = {"Authorization": f"token {token}"}
            # The first request of each scenario, timed on its own: it computes what the next ones
            # reuse while the store does not change (an order, a filter's total, the metric keys).
            urllib.request.urlopen(urllib.request.Request(f"{base}?limit=1", headers=headers)).read()  # open
            first: dict[str, float] = {}
            for name, url in urls.items():
                started = time.perf_counter()
                urllib.request.urlopen(urllib.request.Request(url, headers=headers)).read()
                first[name] = (time.perf_counter() - started) * 1000
            round_trips: dict[str, list[float]] = {name: [] for name in urls}
            logged_before = len(_LOGGED.findall(log.read_text()))
            order = list(urls)
            for _ in range(args.repeat):
                random.shuffle(order)
                for name in order:
                    started = time.perf_counter()
                    body = urllib.request.urlopen(urllib.request.Request(urls[name], headers=headers)).read()
                    round_trips[name].append((time.perf_counter() - started) * 1000)
                    page = json.loads(body)
                    assert page["total"] > 0 and page["runs"], name
            time.sleep(0.5)
            server_times = _server_times(log, logged_before, urls)
        finally:
            process.terminate()
            process.wait(timeout=30)

    print(f"\nruns route, {args.runs:,} runs in the project, {args.repeat} requests per scenario (ms)")
    print(f"{'scenario':<52} {'server median':>13} {'p95':>7} {'round trip':>11} {'target':>7} {'first request':>14}")
    worst = 0.0
    for name in urls:
        served = server_times[name]
        median, p95 = statistics.median(served), _p95(served)
        worst = max(worst, p95)
        verdict = "PASS" if p95 <= TARGET_MS else "MISS"
        print(f"{name:<52} {median:>13.1f} {p95:>7.1f} {statistics.median(round_trips[name]):>11.1f} "
              f"{verdict:>7} {first[name]:>14.1f}")
    verdict = "PASS" if worst <= TARGET_MS else "MISS"
    print(f"\nworst p95 {worst:.1f} ms against the {TARGET_MS:.0f} ms target: {verdict}")
    print("first request: the round trip of the first request of each scenario after the store was opened "
          "(not in the median: it computes the order, the total and the keys that later requests reuse)")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def _server_times(log: Path, skip: int, urls: dict[str, str]) -> dict[str, list[float]]:
    """Request times as Jupyter Server logged them, by scenario (matched on the query string)."""
    by_query = {urllib.parse.urlsplit(url).query: name for name, url in urls.items()}
    times: dict[str, list[float]] = {name: [] for name in urls}
    lines = [line for line in log.read_text().splitlines() if _LOGGED.search(line)][skip:]
    for line in lines:
        path = line.split(" GET ", 1)[1].split(" ", 1)[0]
        query = urllib.parse.urlsplit(path).query
        times[by_query[query]].append(float(_LOGGED.search(line).group(1)))
    return times


if __name__ == "__main__":
    os.environ.pop("MLOPS_NB_STORE", None)
    main()
