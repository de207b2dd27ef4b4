"""Large generated stores for the benchmarks, built once and kept in a cache folder.

A 100,000-run store takes a minute or more to write, so the benchmarks that need one build it here
once and reuse it (``$MLOPS_NB_BENCH_CACHE``, default ``<tmp>/mlops-nb-bench-cache``). Never used
by the test suite. A cached file is keyed by what built it (the builder's name, its size and the
store's schema version), and written under a temporary name first, so an interrupted build leaves
no half store behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    folder = Path(os.environ.get("MLOPS_NB_BENCH_CACHE") or Path(tempfile.gettempdir()) / "mlops-nb-bench-cache")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cached_store(name: str, n_runs: int, build: Callable[[Path, int], None], *, log=print) -> Path:
    """The path of a store built by ``build(path, n_runs)``, from the cache when it is there."""
    import time

    from mlops_nb.store import SCHEMA_VERSION, close_all

    path = cache_dir() / f"{name}-{n_runs}-v{SCHEMA_VERSION}.db"
    if path.exists():
        return path
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.db")
    log(f"building {path.name} (cached for the next run)")
    started = time.perf_counter()
    build(partial, n_runs)
    close_all()
    import sqlite3

    with sqlite3.connect(partial) as conn:  # one file: fold the WAL in before the rename
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    os.replace(partial, path)
    log(f"built {path.name} in {time.perf_counter() - started:.0f} s")
    return path


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB: ``VmHWM`` (getrusage's ``ru_maxrss``
    carries the parent's peak over across exec on Linux, so a child would report its parent's)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def in_child(code: str, pythonpath: str | None = None) -> str:
    """Run ``code`` in a fresh interpreter (optionally with another tree on PYTHONPATH); its stdout."""
    # -P: with -c the current folder comes before PYTHONPATH, so from a checkout every tree would be that one
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run([sys.executable, "-P", "-c", code], env=env, check=True, capture_output=True, text=True)
    return done.stdout
