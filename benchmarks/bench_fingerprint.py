"""Benchmark: fingerprint() of a 1,000,000 x 20 float64 DataFrame against hashing baselines.

Plain script: ``python benchmarks/bench_fingerprint.py``. Prints the median of several runs for
mlops-nb's ``fingerprint(df)`` and, measured in the same process on the same frame, two baselines:
``pd.util.hash_pandas_object(df).sum()`` (what pandas offers) and SHA-256 of
``df.to_numpy().tobytes()`` (the naive byte hash). The target is <= 150 ms for ``fingerprint``.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mlops_nb.capture import fingerprint  # noqa: E402

ROWS, COLS, REPEATS = 1_000_000, 20, 7
TARGET_MS = 150.0


def median_ms(func, repeats: int = REPEATS) -> float:
    """Median wall time of ``func()`` in milliseconds, after one warm-up call."""
    func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.random((ROWS, COLS)), columns=[f"c{i}" for i in range(COLS)])
    print(
        f"frame: {ROWS:,} x {COLS} float64 ({df.memory_usage(index=False).sum() / 1e6:.0f} MB), "
        f"{os.cpu_count()} CPUs, pandas {pd.__version__}, numpy {np.__version__}"
    )
    ours = median_ms(lambda: fingerprint(df))
    baselines = {
        "pd.util.hash_pandas_object(df).sum()": median_ms(lambda: pd.util.hash_pandas_object(df).sum()),
        "sha256(df.to_numpy().tobytes())": median_ms(lambda: hashlib.sha256(df.to_numpy().tobytes()).hexdigest()),
    }
    print(f"{'fingerprint(df)':<40} {ours:8.1f} ms  (median of {REPEATS})")
    for label, ms in baselines.items():
        print(f"{label:<40} {ms:8.1f} ms  ratio baseline/fingerprint = {ms / ours:5.2f}x")
    verdict = "OK" if ours <= TARGET_MS else "OVER TARGET"
    print(f"target <= {TARGET_MS:.0f} ms: {verdict}")
    return 0 if ours <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
