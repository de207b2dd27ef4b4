"""Drift statistics: profile the training data once, compare fresh data against it cheaply.

Two sides use this package. ``export`` calls :func:`reference_profile` (and :func:`reference_sample`)
once on the training frame and writes both into the package's ``reference/`` folder; the
retraining runtime calls :func:`dataset_drift` on each batch of fresh data, and
:func:`prediction_drift` on the champion's scores. Everything here is pure: no files, no store.
Importing it costs numpy only: scipy (~1 s to import here) is loaded by the small-reference tests
alone, and the Jensen-Shannon distance is computed in numpy (:func:`jensen_shannon`).

Where things live (import the public names from here, ``mlops_nb.drift``):

``profiles``    the reference side: :func:`reference_profile`, :func:`reference_sample`, the column
                profiles and :func:`column_kind`;
``compare``     the fresh side: :func:`numeric_drift`, :func:`categorical_drift`,
                :func:`prediction_drift`, :func:`dataset_drift`;
``statistics``  PSI, Wasserstein from sketches, Jensen-Shannon, and the KS / chi-squared tests;
``decide``      :data:`DEFAULT_CONFIG` and the rules that turn statistics into verdicts;
``report``      the results, :class:`ColumnDrift` and :class:`DriftReport`;
``columns``     a column's values as sorted floats or category counts, and the bins and sketch over them.

The rules (issue 6, thresholds as in Evidently):

- numeric columns: PSI over the reference deciles (``psi_warn`` 0.1 -> warn, ``psi_drift`` 0.25 ->
  drift) and the Wasserstein-1 distance divided by the reference standard deviation
  (``distance_drift`` 0.1 -> drift);
- categorical columns (object, category, string, bool): Jensen-Shannon distance, base 2
  (``distance_drift`` 0.1 -> drift);
- when the reference has at most ``small_sample`` (1,000) rows, the two-sample tests decide instead:
  Kolmogorov-Smirnov for numeric and chi-squared for categorical columns, each p-value compared
  with ``alpha`` divided by the number of columns tested (Bonferroni). The distances are still
  computed; past their drift threshold they give ``warn``;
- a column whose share of missing values moved by ``missing_warn`` (0.1) or more is at least ``warn``;
- the dataset drifts when at least ``dataset_share`` (half) of the columns compared drift.

How it stays fast (1,000,000 x 20 fresh rows in about 0.3 s): the reference is reduced at export
time to decile edges, the reference fraction in each bin, and a sketch of :data:`SKETCH_SIZE`
quantile-block means. At check time each fresh column is copied once into a contiguous array of its
finite values; PSI's bin counts (one comparison pass per edge), mean, standard deviation, minimum and
maximum are linear passes over all of them. Only the sketch needs sorted values: a column of at most
``sketch_rows`` values is sorted whole, a longer one through a sample of ``sketch_rows`` values drawn
with ``default_rng(0)`` (the same rows on every call), its sketch a ``reduceat`` over them. A sort is
~60 ms per million values; the sample's, ~5 ms. The sample moves W1 by its sampling noise, about
0.004 reference standard deviations at 100,000 values against a drift threshold of 0.1;
``tests/test_drift.py`` checks that capped and full computations give the same verdicts on shifted and
unshifted data. The small-reference KS test always sees every fresh value. No pass over the full
reference is needed again.

Wasserstein approximation. W1 = integral over q in [0, 1] of ``|Q_ref(q) - Q_cur(q)|``, Q the
quantile functions. The sketch cuts [0, 1] into K equal blocks and keeps the mean of Q over each
(exactly, fractional rows included), so ``mean_j |m_ref[j] - m_cur[j]|`` is W1 between the two
block-averaged distributions. It is exact when the quantile functions do not cross inside a block
(any shift, any spread change, values far outside the reference range included) and never larger
than the true W1; where they cross often (two samples of nearly the same distribution) it is lower
by the part of ``|Q_ref - Q_cur|`` that cancels inside blocks, a small absolute amount. Measured
against ``scipy.stats.wasserstein_distance``: shift, rescale, lognormal, outliers, a 300-row
reference: relative error below 0.01%; 1,234 vs 777 rows: 0.2%; two samples of one normal: 0.5%
(of a W1 of 0.006 std); Student t(2) against 1.1 x t(2), heavy tails crossing near the centre: 1.7%.
``tests/test_drift.py`` checks < 2% and that the estimate never exceeds scipy's.

Config keys (:data:`DEFAULT_CONFIG`, any subset may be passed):

``psi_warn`` (0.1), ``psi_drift`` (0.25)
    PSI at or above which a numeric column (and the prediction score) is ``warn`` / ``drift``.
``distance_drift`` (0.1)
    normalised Wasserstein and Jensen-Shannon distance at or above which a column is ``drift``.
``dataset_share`` (0.5)
    share of compared columns that must drift for ``dataset_drift`` to be true.
``small_sample`` (1000)
    a reference of at most this many rows is judged by KS / chi-squared on the reference sample.
``alpha`` (0.05)
    family-wise significance of those tests, Bonferroni-corrected over the columns tested.
``missing_warn`` (0.1)
    absolute change in the share of missing values that makes a column at least ``warn``.
``threads`` (2)
    worker threads for :func:`dataset_drift` (numpy's sort releases the GIL); 1 runs serially.
``sketch_rows`` (100,000)
    fresh values per numeric column beyond which the Wasserstein sketch uses a fixed-seed sample of
    that many (0: always sort every value).
"""

from __future__ import annotations

from mlops_nb.drift.compare import categorical_drift, dataset_drift, numeric_drift, prediction_drift
from mlops_nb.drift.decide import DEFAULT_CONFIG
from mlops_nb.drift.profiles import (
    FORMAT,
    OTHER,
    SKETCH_SIZE,
    TOP_CATEGORIES,
    categorical_profile,
    column_kind,
    numeric_profile,
    reference_profile,
    reference_sample,
)
from mlops_nb.drift.report import ColumnDrift, DriftReport
from mlops_nb.drift.statistics import jensen_shannon, psi, wasserstein_from_sketches

__all__ = [
    "DEFAULT_CONFIG",
    "FORMAT",
    "OTHER",
    "SKETCH_SIZE",
    "TOP_CATEGORIES",
    "ColumnDrift",
    "DriftReport",
    "categorical_drift",
    "categorical_profile",
    "column_kind",
    "dataset_drift",
    "jensen_shannon",
    "numeric_drift",
    "numeric_profile",
    "prediction_drift",
    "psi",
    "reference_profile",
    "reference_sample",
    "wasserstein_from_sketches",
]
