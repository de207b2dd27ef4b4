"""Benchmark: the retraining job's costs, side by side with what scipy and a naive approach would cost.

Plain script: ``python benchmarks/bench_retrain.py [--rows N] [--repeats R]``. One function per
measurement, each returning rows for the table that ``main`` prints; ``main`` runs them all.

Drift (issue 6 target: <= 0.5 s): ``mlops_nb.drift.dataset_drift`` on 1,000,000 x 20 fresh
float64 rows (5 of the 20 columns shifted) against the profile of a 1,000,000-row reference, the
profile computed once beforehand as export does (its time is printed too, as the export-side
cost). Baselines measured in the same run: ``scipy.stats.ks_2samp`` and
``scipy.stats.wasserstein_distance`` on one column of 1,000,000 rows against the 1,000,000-row
reference column, multiplied by 20 (extrapolated, and labelled so), and a naive 10-bin PSI that
computes the reference deciles with ``np.quantile`` and both histograms with ``np.histogram`` for
each of the 20 columns. Every figure is the median of several repeats after one warm-up; the
machine is shared, so read medians, not single runs.

Job overhead (issue 6 target: <= 2 s on 100,000 rows, excluding the fit): a package is exported
from an in-process IPython shell (the same ``%%stage`` machinery as a notebook) that trained a
LogisticRegression on 100,000 x 20 rows, then its ``retrain.py --force`` runs as cron runs it, as a
fresh process, on another 100,000 rows (force: every step, the promotion and the write of a new
version included). Printed: the job's wall time, the fit time it recorded, their difference (the
overhead, target; median of fresh processes), the part of it that is only the interpreter starting
and importing pandas, scikit-learn and skops (what any Python retraining script pays), and the same
job run in-process with imports already done (the runtime's own work). The fresh-process figures
are taken with this interpreter (the test venv, pytest and the notebook stack installed) and with
the lean runtime venv tests/test_engines.py caches (what a server's requirements.txt installs and
cron runs; the fair place for the target), each with this tree and ``--baseline-tree`` (default
/work/main) alternating. ``--job-only`` measures just that.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROWS, COLS, REPEATS = 1_000_000, 20, 5
SHIFTED = 5  # fresh columns moved by half a reference std
DRIFT_TARGET_S = 0.5
JOB_ROWS, JOB_TARGET_S = 100_000, 2.0
BASELINE_TREE: str | None = "/work/main"  # --baseline-tree; '' leaves it out


@dataclass
class Row:
    """One line of the printed table."""

    label: str
    seconds: float
    note: str = ""
    target: float | None = None  # seconds; a PASS/MISS verdict is printed when set
    group: str = "drift"  # "x ours" compares a row with the row of its group that has a target


@dataclass
class Context:
    """Data shared by the measurements, built once."""

    rows: int
    cols: int
    repeats: int
    reference: pd.DataFrame
    fresh: pd.DataFrame
    profile: dict | None = None


def median_s(func: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``func()`` in seconds, after one warm-up call."""
    func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_context(rows: int, cols: int, repeats: int) -> Context:
    rng = np.random.default_rng(0)
    names = [f"c{i}" for i in range(cols)]
    reference = pd.DataFrame(rng.standard_normal((rows, cols)), columns=names)
    fresh = pd.DataFrame(rng.standard_normal((rows, cols)), columns=names)
    for name in names[:SHIFTED]:
        fresh[name] += 0.5
    return Context(rows, cols, repeats, reference, fresh)


# --------------------------------------------------------------------------- drift


def bench_reference_profile(ctx: Context) -> list[Row]:
    """Export side: profile the reference once (sort, deciles, bin fractions, 1,000-block sketch)."""
    from mlops_nb.drift import reference_profile

    seconds = median_s(lambda: reference_profile(ctx.reference), max(1, ctx.repeats // 2))
    ctx.profile = reference_profile(ctx.reference)
    return [Row(f"reference_profile ({ctx.rows:,} x {ctx.cols}, export)", seconds, "once per export")]


def bench_dataset_drift(ctx: Context) -> list[Row]:
    """Retrain side: ``dataset_drift`` on the fresh frame against the precomputed profile."""
    from mlops_nb.drift import dataset_drift, reference_profile

    profile = ctx.profile or reference_profile(ctx.reference)
    report = dataset_drift(profile, ctx.fresh)
    expected = [f"c{i}" for i in range(SHIFTED)]
    assert report.drifted == expected, f"benchmark data should drift in {expected}: {report.summary()}"
    rows = [
        Row(
            f"dataset_drift ({ctx.rows:,} x {ctx.cols})",
            median_s(lambda: dataset_drift(profile, ctx.fresh), ctx.repeats),
            f"PSI + Wasserstein, {os.cpu_count()} CPUs, threads=2",
            DRIFT_TARGET_S,
        )
    ]
    serial = median_s(lambda: dataset_drift(profile, ctx.fresh, config={"threads": 1}), ctx.repeats)
    rows.append(Row("dataset_drift, threads=1", serial, "same, one thread"))
    return rows


def bench_scipy_ks(ctx: Context) -> list[Row]:
    """``scipy.stats.ks_2samp`` on one column, x cols (extrapolated)."""
    from scipy import stats

    a, b = ctx.reference["c0"].to_numpy(), ctx.fresh["c0"].to_numpy()
    one = median_s(lambda: stats.ks_2samp(a, b), max(1, ctx.repeats // 2))
    return [
        Row(
            f"scipy ks_2samp x {ctx.cols}",
            one * ctx.cols,
            f"EXTRAPOLATED: 1 column measured ({one:.3f} s) x {ctx.cols}",
        )
    ]


def bench_scipy_wasserstein(ctx: Context) -> list[Row]:
    """``scipy.stats.wasserstein_distance`` on one column, x cols (extrapolated); also checks our estimate."""
    from scipy import stats

    from mlops_nb.drift import numeric_drift, numeric_profile

    a, b = ctx.reference["c0"].to_numpy(), ctx.fresh["c0"].to_numpy()
    one = median_s(lambda: stats.wasserstein_distance(a, b), max(1, ctx.repeats // 2))
    exact = stats.wasserstein_distance(a, b)
    ours = numeric_drift(numeric_profile(a), b).details["wasserstein"]
    note = f"EXTRAPOLATED: 1 column ({one:.3f} s) x {ctx.cols}; W1 scipy {exact:.5f} vs sketch {ours:.5f}"
    return [Row(f"scipy wasserstein_distance x {ctx.cols}", one * ctx.cols, note)]


def naive_psi(reference: pd.DataFrame, fresh: pd.DataFrame) -> list[float]:
    """10-bin PSI per column the naive way: reference deciles and both histograms every time."""
    out = []
    for name in reference.columns:
        ref, cur = reference[name].to_numpy(), fresh[name].to_numpy()
        edges = np.quantile(ref, np.linspace(0, 1, 11))
        r = np.maximum(np.histogram(ref, edges)[0] / ref.size, 1e-4)
        c = np.maximum(np.histogram(cur, edges)[0] / cur.size, 1e-4)
        out.append(float(np.sum((c - r) * np.log(c / r))))
    return out


def bench_naive_psi(ctx: Context) -> list[Row]:
    seconds = median_s(lambda: naive_psi(ctx.reference, ctx.fresh), max(1, ctx.repeats // 2))
    return [
        Row(f"naive 10-bin PSI ({ctx.cols} columns)", seconds, "np.quantile + 2 x np.histogram per column, measured")
    ]


# --------------------------------------------------------------------------- the retraining job


def _job_frame(seed: int, rows: int = JOB_ROWS, cols: int = COLS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, cols))
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(cols)])
    frame["label"] = (X[:, :5].sum(axis=1) + rng.standard_normal(rows) > 0).astype(int)
    return frame


def _export_job_package(folder: Path) -> Path:
    """Train and export a model on 100,000 rows through the magics of an in-process IPython shell."""
    from IPython.core.interactiveshell import InteractiveShell

    _job_frame(0).to_csv(folder / "train.csv", index=False)
    _job_frame(1).to_csv(folder / "fresh.csv", index=False)
    shell = InteractiveShell.instance()
    before = os.getcwd()
    os.chdir(folder)
    try:
        for cell in (
            "%load_ext mlops_nb", "%mlops start bench", "%mlops require f1 >= 0.5 --target label",
            "import pandas as pd",
            "%%stage data\ndf = pd.read_csv('train.csv')",
            "%%stage features\nX = df.drop(columns=['label'])\ny = df['label']",
            "%%stage model\nfrom sklearn.linear_model import LogisticRegression\n"
            "clf = LogisticRegression(max_iter=1000).fit(X, y)",
            "%%stage validation\nfrom sklearn.metrics import f1_score\nf1 = f1_score(y, clf.predict(X))",
            "%mlops register clf --name bench",
            f"%mlops export bench --to {folder / 'deploy' / 'bench'} --data {folder / 'fresh.csv'}",
            "%mlops end",
        ):
            with contextlib.redirect_stdout(io.StringIO()):
                result = shell.run_cell(cell, store_history=True)
            error = result.error_before_exec or result.error_in_exec
            if error is not None:
                raise RuntimeError(f"benchmark setup cell failed: {cell!r}: {error}")
    finally:
        os.chdir(before)
    return folder / "deploy" / "bench"


def _fit_seconds(store: Path) -> float:
    import sqlite3

    with sqlite3.connect(store) as conn:
        return conn.execute("SELECT value FROM metrics WHERE key = 'fit_s' ORDER BY rowid DESC LIMIT 1").fetchone()[0]


def lean_interpreters() -> list[tuple[str, str]]:
    """``(label, python)`` of each interpreter the job is timed with: this one (the test venv, with
    pytest and the notebook stack) and, when tests/test_engines.py has built it, the newest cached
    lean runtime venv (what a server's requirements.txt installs and cron runs: the fair place for
    the target)."""
    found = [("test venv", sys.executable)]
    cache = Path(os.environ.get("MLOPS_NB_TEST_CACHE") or "/tmp/mlops-nb-test-cache")
    lean = sorted(cache.glob("lean-py*/mlops-nb-ready"), key=lambda p: p.stat().st_mtime)
    if lean:
        found.append(("lean venv", str(lean[-1].parent / "bin" / "python")))
    return found


def _job_runs(python: str, tree: str | None, root: Path, store: Path, repeats: int) -> tuple[list, list]:
    """Wall times and recorded fit times of ``repeats`` fresh-process jobs (after one warm-up)."""
    # The environment cron gives the job (DESIGN.md section 7), plus what the crontab line sets.
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "SHELL": "/bin/sh",
           "MLOPS_NB_STORE": str(store)}
    if tree:  # measuring a checkout other than the installed one
        env["PYTHONPATH"] = tree
    totals, fits = [], []
    for _ in range(repeats + 1):  # the first is the warm-up (disk cache, .pyc files)
        started = time.perf_counter()
        # the exported cron line: mlops-nb's verifying entry point on the package root
        done = subprocess.run([python, "-P", "-m", "mlops_nb", "retrain", str(root), "--force"],
                              cwd=root, env=env, capture_output=True, text=True)
        totals.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"the retraining job failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        fits.append(_fit_seconds(store))
    return totals[1:], fits[1:]


def bench_job_overhead(ctx: Context) -> list[Row]:
    """The retraining job on 100,000 x 20 rows: wall time minus the fit, as a fresh process (in each
    interpreter of :func:`lean_interpreters`, this tree and the baseline tree alternating) and warm."""
    from mlops_nb.deploy.retrain import run_package

    repeats = max(3, ctx.repeats // 2 + 1)
    here = str(Path(__file__).resolve().parents[1])
    rows_out: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        folder = Path(tmp)
        store = folder / "mlops.db"
        os.environ["MLOPS_NB_STORE"] = str(store)
        root = _export_job_package(folder)
        rows = f"{JOB_ROWS:,} x {COLS}"
        for label, python in lean_interpreters():
            ours: dict[str, list] = {"t": [], "f": []}
            base: dict[str, list] = {"t": [], "f": []}
            for _ in range(repeats):  # one job of each tree at a time: a noisy neighbour slows both alike
                for side, tree in ((ours, here), (base, BASELINE_TREE)):
                    if tree is None:
                        continue
                    t, f = _job_runs(python, tree, root, store, 1)
                    side["t"] += t
                    side["f"] += f
            overhead = statistics.median(t - f for t, f in zip(ours["t"], ours["f"], strict=True))
            note = f"total {statistics.median(ours['t']):.3f} s, fit {statistics.median(ours['f']):.3f} s"
            if base["t"]:
                was = statistics.median(t - f for t, f in zip(base["t"], base["f"], strict=True))
                note += f"; {BASELINE_TREE}: {was:.3f} s"
            rows_out.append(Row(f"job overhead, {label}, fresh process", overhead, note, JOB_TARGET_S,
                                group=f"job {label}"))
            imports = median_s(lambda python=python: subprocess.run(
                [python, "-P", "-c", "import pandas, sklearn.linear_model, skops.io, mlops_nb.deploy.retrain"],
                check=True, env={**os.environ, "PYTHONPATH": here}), repeats)
            rows_out.append(Row(f"  {label}: start + imports", imports,
                                "python -c 'import pandas, sklearn, skops.io, mlops_nb.deploy.retrain'",
                                group="job-info"))
        warm_totals, warm_fits = [], []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            code = run_package(root, force=True, out=io.StringIO(), store=store)
            warm_totals.append(time.perf_counter() - started)
            warm_fits.append(_fit_seconds(store))
            assert code == 0, f"in-process job exited {code}"
        warm_totals, warm_fits = warm_totals[1:], warm_fits[1:]
    warm = statistics.median(t - f for t, f in zip(warm_totals, warm_fits, strict=True))
    rows_out.append(Row("job overhead in-process (warm imports)", warm,
                        f"run_package() minus fit ({statistics.median(warm_fits):.3f} s), {rows}", group="job-info"))
    return rows_out


MEASUREMENTS: list[Callable[[Context], list[Row]]] = [
    bench_reference_profile,
    bench_dataset_drift,
    bench_scipy_ks,
    bench_scipy_wasserstein,
    bench_naive_psi,
    bench_job_overhead,
]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    global BASELINE_TREE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--cols", type=int, default=COLS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--baseline-tree", default="/work/main", help="tree the job overhead is compared with")
    parser.add_argument("--job-only", action="store_true", help="only the retraining job's overhead")
    args = parser.parse_args(argv)
    BASELINE_TREE = args.baseline_tree or None
    ctx = make_context(10 if args.job_only else args.rows, args.cols, args.repeats)
    print(
        f"data: {args.rows:,} x {args.cols} float64 reference and fresh ({SHIFTED} fresh columns shifted), "
        f"{os.cpu_count()} CPUs, numpy {np.__version__}, pandas {pd.__version__}; medians of {args.repeats}"
    )
    rows: list[Row] = []
    for measure in [bench_job_overhead] if args.job_only else MEASUREMENTS:
        rows.extend(measure(ctx))
    ours = {r.group: r.seconds for r in reversed(rows) if r.target is not None}
    missed = 0
    print(f"{'measurement':<46} {'seconds':>8} {'x ours':>7}  note")
    for row in rows:
        ratio = f"{row.seconds / ours[row.group]:6.1f}x" if row.group in ours else " " * 7
        verdict = ""
        if row.target is not None:
            ok = row.seconds <= row.target
            missed += not ok
            verdict = f"  target <= {row.target:g} s: {'PASS' if ok else 'MISS'}"
        print(f"{row.label:<46} {row.seconds:8.3f} {ratio}  {row.note}{verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
