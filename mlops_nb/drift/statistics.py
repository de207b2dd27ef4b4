"""The statistics that compare two distributions: PSI, Wasserstein from sketches, Jensen-Shannon,
and the two-sample tests (Kolmogorov-Smirnov, chi-squared) used for small references.

The distances are numpy only. scipy (about 1 s to import here) is imported inside the two tests,
which only small references reach, so a retraining run on a large reference never loads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlops_nb.drift.columns import as_float_array, category_counts, sorted_finite


def psi(
    ref_fractions: Sequence[float] | np.ndarray, cur_fractions: Sequence[float] | np.ndarray, eps: float = 1e-4
) -> float:
    """Population Stability Index: ``sum((c - r) * ln(c / r))`` over bins.

    Both inputs are per-bin fractions (or counts: each is divided by its sum). Fractions below
    ``eps`` are raised to ``eps`` first, so an empty bin on one side costs a finite amount.
    Raises ``ValueError`` when the lengths differ.
    """
    r = np.asarray(ref_fractions, dtype=np.float64)
    c = np.asarray(cur_fractions, dtype=np.float64)
    if r.shape != c.shape:
        raise ValueError(f"psi needs the same bins on both sides, got {r.size} reference and {c.size} current bins")
    if r.size == 0:
        return 0.0
    r = np.maximum(r / r.sum() if r.sum() > 0 else r, eps)
    c = np.maximum(c / c.sum() if c.sum() > 0 else c, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def wasserstein_from_sketches(
    ref_sketch: Sequence[float] | np.ndarray, cur_sketch: Sequence[float] | np.ndarray
) -> float:
    """Wasserstein-1 distance between two equal-length quantile-block sketches.

    The approximation, and how far it is from the exact distance, is explained in :mod:`mlops_nb.drift`.
    """
    a = np.asarray(ref_sketch, dtype=np.float64)
    b = np.asarray(cur_sketch, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"sketches differ in length: {a.size} vs {b.size}")
    return float(np.mean(np.abs(a - b))) if a.size else 0.0


def jensen_shannon(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon distance, base 2 (0 = same, 1 = disjoint): ``scipy.spatial.distance.jensenshannon(p, q,
    base=2)``, computed here in numpy because importing ``scipy.spatial`` costs ~0.7 s of every retraining run.

    Inputs are normalised to sum to 1; ``tests/test_drift.py`` checks the two agree to 1e-12.
    """
    a = np.asarray(p, dtype=np.float64)
    b = np.asarray(q, dtype=np.float64)
    a, b = a / a.sum(), b / b.sum()
    m = (a + b) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(a > 0, a * np.log(a / m), 0.0)
        right = np.where(b > 0, b * np.log(b / m), 0.0)
    divergence = (left.sum() + right.sum()) / np.log(2.0)
    return float(np.sqrt(max(divergence, 0.0) / 2))


def ks_test(sample: Any, s: np.ndarray, n_tests: int, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Two-sample Kolmogorov-Smirnov test of the reference ``sample`` against the finite fresh values ``s`` (any order),
    at ``alpha / n_tests`` (Bonferroni); ``p_value`` is ``None`` when the sample has no values."""
    ref_values, _ = sorted_finite(as_float_array(sample))
    out: dict[str, Any] = {"small_sample": True, "test": "ks", "bonferroni_m": n_tests}
    if ref_values.size == 0:
        out.update(p_value=None, test_note="the reference sample has no values in this column")
        return out
    from scipy import stats  # only small references get here; the import costs ~1 s

    result = stats.ks_2samp(ref_values, s)
    out.update(ks_statistic=float(result.statistic), **_bonferroni(float(result.pvalue), n_tests, cfg))
    return out


def _bonferroni(p: float, n_tests: int, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A test's p-value judged at ``alpha / n_tests``: what every small-sample test reports."""
    alpha = cfg["alpha"] / n_tests
    return {"p_value": p, "p_adjusted": min(1.0, p * n_tests), "alpha": cfg["alpha"], "alpha_corrected": alpha,
            "rejected": p < alpha}


def chi2_test(
    sample: Any, keys: list[str], matched: np.ndarray, other: float, n_tests: int, cfg: Mapping[str, Any]
) -> dict[str, Any]:
    """Chi-squared test of homogeneity: the reference ``sample``'s counts over ``keys`` (plus the rest)
    against the fresh ``matched`` counts and ``other``, at ``alpha / n_tests`` (Bonferroni)."""
    counts, _, _ = category_counts(sample)
    ref_row = [counts.get(k, 0) for k in keys]
    ref_row.append(sum(counts.values()) - sum(ref_row))
    table = np.array([ref_row, [*matched.tolist(), other]], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    out: dict[str, Any] = {"small_sample": True, "test": "chi2", "bonferroni_m": n_tests}
    if table[0].sum() == 0:
        out.update(p_value=None, test_note="the reference sample has no values in this column")
        return out
    if table.shape[1] < 2:
        out.update(chi2_statistic=0.0, **_bonferroni(1.0, n_tests, cfg),
                   test_note="one category on both sides: nothing to test")
        return out
    from scipy import stats

    result = stats.chi2_contingency(table)
    out.update(chi2_statistic=float(result.statistic), dof=int(result.dof),
               **_bonferroni(float(result.pvalue), n_tests, cfg))
    return out
