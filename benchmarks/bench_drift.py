"""Drift on large fresh frames: ``dataset_drift`` over 1,000,000 x 20 and 1,000,000 x 100 float64 columns.

    python benchmarks/bench_drift.py                  # both sizes, this tree and /work/main
    python benchmarks/bench_drift.py --baseline-tree ''   # this tree only

Targets (issue 16): 1,000,000 x 20 <= 0.5 s, 1,000,000 x 100 <= 2.5 s. A fifth of the fresh
columns are shifted by half a reference standard deviation, and the benchmark asserts that exactly
those drift. The reference profile is computed once beforehand from 200,000 rows (export's side;
its cost does not depend on the fresh frame). Each tree is measured in a process of its own (its
``PYTHONPATH``), one after the other, with the same generated data; medians of ``--repeats`` after
one warm-up, with the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGETS = {20: 0.5, 100: 2.5}
ROWS = 1_000_000


def measure(cols: int, rows: int, repeats: int) -> dict:
    """dataset_drift on a ``rows`` x ``cols`` frame, in this process; medians in seconds."""
    import statistics
    import time

    import numpy as np
    import pandas as pd
    from cached_stores import peak_rss_mb

    from mlops_nb.drift import dataset_drift, reference_profile

    rng = np.random.default_rng(0)
    names = [f"c{i}" for i in range(cols)]
    reference = pd.DataFrame(rng.standard_normal((200_000, cols)), columns=names)
    profile = reference_profile(reference)
    del reference
    data = rng.standard_normal((rows, cols))
    shifted = cols // 5
    data[:, :shifted] += 0.5
    fresh = pd.DataFrame(data, columns=names, copy=False)
    report = dataset_drift(profile, fresh)
    assert report.drifted == names[:shifted], report.summary()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        dataset_drift(profile, fresh)
        times.append(time.perf_counter() - started)
    return {"seconds": statistics.median(times), "peak_mb": peak_rss_mb()}


def in_tree(tree: str, cols: int, rows: int, repeats: int) -> dict | None:
    env = {**os.environ, "PYTHONPATH": tree}
    done = subprocess.run([sys.executable, __file__, "--only", str(cols), "--rows", str(rows),
                           "--repeats", str(repeats)], env=env, capture_output=True, text=True)
    if done.returncode:
        print(f"{tree}: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tree", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--baseline-tree", default="/work/main")
    parser.add_argument("--only", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args.rows, args.repeats)))
        return 0
    print(f"dataset_drift, {args.rows:,} fresh rows, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
          f"medians of {args.repeats}")
    print(f"{'frame':<22}{'ours s':>9}{'peak MB':>9}{'baseline s':>12}{'base/ours':>10}{'target':>9}")
    missed = 0
    for cols, target in TARGETS.items():
        ours = in_tree(args.tree, cols, args.rows, args.repeats)
        base = in_tree(args.baseline_tree, cols, args.rows, args.repeats) if args.baseline_tree else None
        if ours is None:
            missed += 1
            continue
        ok = ours["seconds"] <= target
        missed += not ok
        base_s = f"{base['seconds']:.3f}" if base else "-"
        ratio = f"{base['seconds'] / ours['seconds']:.2f}x" if base else "-"
        print(f"{f'{args.rows:,} x {cols}':<22}{ours['seconds']:>9.3f}{ours['peak_mb']:>9.0f}{base_s:>12}{ratio:>10}"
              f"{f'<= {target} s':>9}  {'PASS' if ok else 'MISS'}")
    print(f"load at end {os.getloadavg()[0]:.1f}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
