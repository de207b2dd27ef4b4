"""What ``%%stage`` costs, measured side by side in one IPython shell.

    python benchmarks/bench_magics.py [--repeats 300] [--skip-mlflow]

1. A trivial cell with and without ``%%stage`` (target: <= 1 ms added, medians).
2. A ``model`` stage fitting LogisticRegression on 1,000 x 20, with capture and the skops
   artifact, against the same fit in a plain cell (target: <= plain + 10 ms), and MLflow's
   sklearn autolog on the same fit when mlflow is installed.
3. Fingerprinting a 1,000,000 x 20 float DataFrame (target: <= 150 ms).

The shell is IPython's own ``InteractiveShell``, the object a kernel runs cells with, so the
figures are the per-cell cost without the kernel's messaging (which is the same either way).
Runs are restarted every ``--run-size`` stage cells, as a notebook run has tens of stage
executions, not hundreds; the cost at a larger run size is printed too, and the cost at the
``--depth``-th (1,000th) stage cell of one run (target: <= 1 ms added), against the same
measurement with the code of ``--baseline-tree`` (default /work/main) in a process of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _timed(shell, source: str) -> float:
    started = time.perf_counter()
    result = shell.run_cell(source, store_history=True)
    elapsed = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"benchmark cell failed: {source!r}: {result.error_in_exec or result.error_before_exec}")
    return elapsed


def _shell():
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    shell.run_line_magic("load_ext", "mlops_nb")
    return shell


def _interleaved(shell, plain: str, staged: str, repeats: int, run_size: int) -> tuple[float, float]:
    plain_times, staged_times = [], []
    for i in range(repeats):
        if i % run_size == 0:
            shell.run_line_magic("mlops", "start bench")
        plain_times.append(_timed(shell, plain))
        staged_times.append(_timed(shell, staged))
    return statistics.median(plain_times), statistics.median(staged_times)


def bench_trivial(shell, repeats: int, run_size: int) -> dict:
    plain, staged = _interleaved(shell, "x = 1", "%%stage eda\nx = 1", repeats, run_size)
    return {"plain": plain, "staged": staged, "added": staged - plain}


def bench_depth(shell, depth: int, window: int = 60) -> dict:
    """The added cost of a trivial stage cell once a run already holds ``depth - window / 2`` of them."""
    shell.run_line_magic("mlops", "start depth")
    for _ in range(depth - window // 2):
        shell.run_cell("%%stage eda\nx = 1", store_history=True)
    plain, staged = _interleaved(shell, "x = 1", "%%stage eda\nx = 1", window, window + 1)
    return {"plain": plain, "staged": staged, "added": staged - plain}


def depth_in_child(tree: str, depth: int) -> dict | None:
    """:func:`bench_depth` with ``tree``'s mlops_nb, in a fresh process (None when it fails)."""
    env = {**os.environ, "PYTHONPATH": tree, "MLOPS_NB_STORE": ""}
    folder = tempfile.mkdtemp(prefix="bench-magics-depth-")
    env["MLOPS_NB_STORE"] = str(Path(folder) / "mlops.db")
    done = subprocess.run([sys.executable, __file__, "--only-depth", str(depth)], env=env, cwd=folder,
                          capture_output=True, text=True)
    if done.returncode:
        print(f"baseline at {tree} failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_model(shell, repeats: int, run_size: int) -> dict:
    shell.run_cell(
        "import numpy as np, pandas as pd\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "rng = np.random.default_rng(0)\n"
        "X = pd.DataFrame(rng.normal(size=(1000, 20)), columns=[f'f{i}' for i in range(20)])\n"
        "y = (X['f0'] + rng.normal(size=1000) > 0).astype(int)\n"
    )
    fit = "clf = LogisticRegression(max_iter=500).fit(X, y)"
    plain, staged = _interleaved(shell, fit, f"%%stage model\n{fit}", repeats, run_size)
    return {"plain": plain, "staged": staged, "added": staged - plain}


def bench_mlflow(shell, repeats: int) -> dict | None:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return None
    folder = tempfile.mkdtemp(prefix="bench-mlflow-")
    shell.run_cell(
        "import mlflow, logging\n"
        "logging.getLogger('mlflow').setLevel(logging.ERROR)\n"
        f"mlflow.set_tracking_uri('sqlite:///{folder}/mlflow.db')\n"
        "mlflow.sklearn.autolog(log_models=True, silent=True)\n"
    )
    times = [_timed(shell, "clf = LogisticRegression(max_iter=500).fit(X, y)") for _ in range(repeats)]
    shell.run_cell("mlflow.sklearn.autolog(disable=True)\nmlflow.end_run()")
    return {"autolog": statistics.median(times)}


def bench_fingerprint(repeats: int) -> dict:
    import numpy as np
    import pandas as pd

    from mlops_nb.capture import fingerprint

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(1_000_000, 20)), columns=[f"c{i}" for i in range(20)])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fingerprint(frame)
        times.append(time.perf_counter() - started)
    return {"fingerprint": statistics.median(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--run-size", type=int, default=20, help="stage cells per run")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--depth", type=int, default=1000, help="the stage cell of one run to time")
    parser.add_argument("--baseline-tree", default="/work/main", help="mlops-nb tree to compare the depth with")
    parser.add_argument("--only-depth", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only_depth:
        if not os.environ.get("MLOPS_NB_STORE"):
            raise SystemExit("--only-depth needs MLOPS_NB_STORE (depth_in_child sets it)")
        shell = _shell()
        print(json.dumps(bench_depth(shell, args.only_depth)))
        return

    folder = Path(tempfile.mkdtemp(prefix="bench-magics-"))
    os.environ["MLOPS_NB_STORE"] = str(folder / "mlops.db")
    os.chdir(folder)
    shell = _shell()

    ms = 1000.0
    trivial = bench_trivial(shell, args.repeats, args.run_size)
    large = bench_trivial(shell, 200, 200)
    deep = bench_depth(shell, args.depth)
    deep_base = depth_in_child(args.baseline_tree, args.depth) if args.baseline_tree else None
    model = bench_model(shell, max(30, args.repeats // 5), args.run_size)
    mlflow = None if args.skip_mlflow else bench_mlflow(shell, 5)
    finger = bench_fingerprint(7)

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    print(f"{'measurement':<52}{'median':>12}{'baseline':>12}{'target':>14}")
    print(f"{'trivial cell: %%stage added over plain':<52}{trivial['added'] * ms:>10.3f}ms"
          f"{trivial['plain'] * ms:>10.3f}ms{'<= 1 ms':>14}  {verdict(trivial['added'] <= 0.001)}")
    print(f"{'  same, in a run of 200 stage cells':<52}{large['added'] * ms:>10.3f}ms"
          f"{large['plain'] * ms:>10.3f}ms")
    print(f"{f'  same, at stage cell {args.depth:,} of one run':<52}{deep['added'] * ms:>10.3f}ms"
          f"{deep['plain'] * ms:>10.3f}ms{'<= 1 ms':>14}  {verdict(deep['added'] <= 0.001)}")
    if deep_base:
        print(f"{'    baseline tree ' + args.baseline_tree:<52}{deep_base['added'] * ms:>10.3f}ms"
              f"{deep_base['plain'] * ms:>10.3f}ms   ({deep_base['added'] / max(deep['added'], 1e-9):.1f}x ours)")
    print(f"{'model stage (LogisticRegression 1000x20) added':<52}{model['added'] * ms:>10.3f}ms"
          f"{model['plain'] * ms:>10.3f}ms{'<= 10 ms':>14}  {verdict(model['added'] <= 0.010)}")
    if mlflow:
        ratio = mlflow["autolog"] / model["staged"]
        print(f"{'  MLflow sklearn autolog, same fit':<52}{mlflow['autolog'] * ms:>10.1f}ms"
              f"{model['plain'] * ms:>10.3f}ms   ({ratio:.0f}x mlops-nb's staged fit)")
    print(f"{'fingerprint 1,000,000 x 20 float DataFrame':<52}{finger['fingerprint'] * ms:>10.1f}ms"
          f"{'':>12}{'<= 150 ms':>14}  {verdict(finger['fingerprint'] <= 0.150)}")


if __name__ == "__main__":
    main()
