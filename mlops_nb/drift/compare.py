"""The fresh side of drift: compare a column, the champion's predictions, or a whole frame with the
reference profile, and return :class:`~mlops_nb.drift.report.ColumnDrift` verdicts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from mlops_nb.drift.columns import (
    as_float_array,
    bin_counts,
    bin_counts_unsorted,
    block_means,
    category_counts,
    finite_values,
    map_columns,
    sorted_finite,
    sorted_sample,
    std_from_sorted,
)
from mlops_nb.drift.decide import (
    categorical_decision,
    column_result,
    empty_decision,
    missing_details,
    numeric_decision,
    resolve_config,
)
from mlops_nb.drift.profiles import FORMAT, OTHER
from mlops_nb.drift.report import ColumnDrift, DriftReport
from mlops_nb.drift.statistics import chi2_test, jensen_shannon, ks_test, psi, wasserstein_from_sketches
from mlops_nb.errors import InvalidValue


def numeric_drift(
    ref: Mapping[str, Any],
    values: Any,
    *,
    column: str = "",
    sample: Any = None,
    n_tests: int = 1,
    config: Mapping[str, Any] | None = None,
) -> ColumnDrift:
    """Compare fresh numeric ``values`` (array or Series) with a :func:`numeric_profile`.

    PSI over the reference bins and the Wasserstein distance over the sketch, normalised by the
    reference ``std``, decide the verdict. When ``sample`` (the reference sample's values for this
    column) is given, the two-sample KS test decides instead, at ``alpha / n_tests`` (Bonferroni;
    :func:`dataset_drift` passes it only for references of at most ``small_sample`` rows).
    Missing values are counted and compared as a share, and left out of every other statistic.
    """
    cfg = resolve_config(config)
    try:
        arr = as_float_array(values)
    except (TypeError, ValueError) as exc:
        not_numeric = ("drift", "none", None, f"fresh values are not numeric ({exc})")
        return column_result(column, "numeric", {}, cfg, not_numeric)
    x, missing = finite_values(arr)
    return _numeric_from_values(ref, x, missing, column=column, sample=sample, n_tests=n_tests, cfg=cfg)


def categorical_drift(
    ref: Mapping[str, Any],
    values: Any,
    *,
    column: str = "",
    sample: Any = None,
    n_tests: int = 1,
    config: Mapping[str, Any] | None = None,
) -> ColumnDrift:
    """Compare fresh categorical ``values`` (Series, array or list) with a :func:`categorical_profile`.

    Fresh values are mapped onto the profiled categories by ``str()``; anything else, new
    categories included, counts toward :data:`OTHER`, and the Jensen-Shannon distance (base 2)
    between the two frequency vectors decides. New categories are listed in ``details``. When
    ``sample`` (the reference sample's values for this column) is given, a chi-squared test of
    homogeneity on the same categories decides instead, at ``alpha / n_tests`` (Bonferroni).
    """
    cfg = resolve_config(config)
    counts, missing, total = category_counts(values)
    details = missing_details(ref, missing, total)
    empty = empty_decision(ref, total - missing, total, details)
    if empty is not None:
        return column_result(column, "categorical", details, cfg, empty)
    ref_freq: dict[str, float] = dict(ref["frequencies"])
    keys = [k for k in ref_freq if k != OTHER]
    valid = total - missing
    matched = np.array([counts.get(k, 0) for k in keys], dtype=np.float64)
    cur_vec = np.append(matched, valid - matched.sum()) / valid
    ref_vec = np.array([ref_freq[k] for k in keys] + [ref_freq.get(OTHER, 0.0)], dtype=np.float64)
    js = jensen_shannon(ref_vec, cur_vec)
    known = set(keys)
    unseen = sorted(((k, c) for k, c in counts.items() if k not in known), key=lambda kv: (-kv[1], kv[0]))
    details.update(
        jensen_shannon=js,
        categories=len(keys),
        unseen_categories=dict(unseen[:10]),
        unseen_count=len(unseen),
        unseen_share=sum(c for _, c in unseen) / valid,
        ref_frequencies={k: float(v) for k, v in zip([*keys, OTHER], ref_vec, strict=True)},
        cur_frequencies={k: float(v) for k, v in zip([*keys, OTHER], cur_vec, strict=True)},
    )
    if ref.get("distinct", 0) > len(keys):
        details["note"] = (
            f"the reference kept its top {len(keys)} of {ref['distinct']} categories; "
            f"'unseen' means outside those, and all of them count as {OTHER}"
        )
    test = chi2_test(sample, keys, matched, valid - matched.sum(), n_tests, cfg) if sample is not None else None
    if test is not None:
        details.update(test)
    return column_result(column, "categorical", details, cfg, categorical_decision(js, test, cfg))


def prediction_drift(ref: Mapping[str, Any], scores: Any, *, config: Mapping[str, Any] | None = None) -> ColumnDrift:
    """PSI of the champion's predictions on fresh data against its predictions at training time.

    A label-free signal. ``ref`` is :func:`numeric_profile` of the training-time scores (one
    score per row, e.g. ``predict_proba(X)[:, 1]`` or a regressor's output) or
    :func:`categorical_profile` of predicted labels; ``scores`` are the fresh ones. The verdict
    uses the PSI thresholds only; the column is named ``"prediction"``.
    """
    cfg = resolve_config(config)
    name = "prediction"
    if ref.get("kind") == "categorical":
        counts, missing, total = category_counts(scores)
        details = missing_details(ref, missing, total)
        empty = empty_decision(ref, total - missing, total, details)
        if empty is not None:
            return column_result(name, "categorical", details, cfg, empty)
        keys = [k for k in ref["frequencies"] if k != OTHER]
        matched = [counts.get(k, 0) for k in keys]
        ref_fr = [ref["frequencies"][k] for k in keys] + [ref["frequencies"].get(OTHER, 0.0)]
        cur_fr = [*matched, total - missing - sum(matched)]
        details.update(ref_fractions=ref_fr, cur_fractions=(np.asarray(cur_fr) / (total - missing)).tolist())
    else:
        arr = as_float_array(scores)
        if arr.ndim > 1 and arr.size != arr.shape[0]:
            raise InvalidValue(
                f"prediction_drift needs one score per row, got shape {arr.shape}; "
                "pass e.g. predict_proba(X)[:, 1] for a binary classifier"
            )
        s, missing = sorted_finite(arr)
        details = missing_details(ref, missing, s.size + missing)
        empty = empty_decision(ref, s.size, s.size + missing, details)
        if empty is not None:
            return column_result(name, "numeric", details, cfg, empty)
        edges = np.asarray(ref["edges"], dtype=np.float64)
        ref_fr = list(ref["bin_fractions"])
        cur_fr = (bin_counts(s, edges) / s.size).tolist()
        details.update(edges=ref["edges"], ref_fractions=ref_fr, cur_fractions=cur_fr)
        details.update(ref_mean=ref.get("mean"), cur_mean=float(s.mean()))
    value = psi(ref_fr, cur_fr)
    details["psi"] = value
    kind = "categorical" if ref.get("kind") == "categorical" else "numeric"
    if value >= cfg["psi_drift"]:
        decision = ("drift", "psi", value, f"PSI {value:.3f} >= {cfg['psi_drift']}")
    elif value >= cfg["psi_warn"]:
        decision = ("warn", "psi", value, f"PSI {value:.3f} >= {cfg['psi_warn']}")
    else:
        decision = ("ok", "psi", value, f"PSI {value:.3f} < {cfg['psi_warn']}")
    return column_result(name, kind, details, cfg, decision)


def dataset_drift(
    reference: Mapping[str, Any],
    frame: Any,
    *,
    columns: Iterable[str] | None = None,
    sample: Any = None,
    config: Mapping[str, Any] | None = None,
) -> DriftReport:
    """Compare a fresh DataFrame with a :func:`reference_profile`, column by column.

    ``columns`` limits the comparison (default: every profiled column; unsupported ones are
    skipped). A name that is not in the profile raises :class:`~mlops_nb.errors.InvalidValue`; a
    profiled column absent from ``frame`` gets a ``drift`` verdict saying so. ``sample`` is the
    :func:`reference_sample` DataFrame: when the reference has at most ``small_sample`` rows and a
    sample is given, KS / chi-squared decide, Bonferroni-corrected over the columns tested (without
    a sample the distances decide and ``details["note"]`` says the tests were skipped).
    ``config`` overrides :data:`DEFAULT_CONFIG` keys. Columns are compared in ``threads`` threads.
    """
    cfg = resolve_config(config)
    if not isinstance(reference, Mapping) or reference.get("format") != FORMAT or "columns" not in reference:
        found = reference.get("format") if isinstance(reference, Mapping) else type(reference).__name__
        raise InvalidValue(
            f"not a drift reference profile (format {found!r}, expected {FORMAT}); "
            "build it with mlops_nb.drift.reference_profile(training_frame)"
        )
    profiles: Mapping[str, Any] = reference["columns"]
    if columns is None:
        names = [k for k, p in profiles.items() if p.get("kind") in ("numeric", "categorical")]
    else:
        names = [str(c) for c in columns]
        unknown = [c for c in names if c not in profiles]
        if unknown:
            raise InvalidValue(
                f"column(s) {', '.join(map(repr, unknown))} are not in the reference profile; "
                f"profiled columns: {', '.join(profiles)}"
            )
        names = [c for c in names if profiles[c].get("kind") in ("numeric", "categorical")]
    labels = {str(c): c for c in frame.columns}
    small = int(reference["n_rows"]) <= cfg["small_sample"]
    use_tests = small and sample is not None
    sample_labels = {str(c): c for c in sample.columns} if use_tests else {}
    tested = [c for c in names if c in labels and c in sample_labels]
    n_tests = max(len(tested), 1)

    def one(name: str) -> ColumnDrift:
        ref = profiles[name]
        kind = ref["kind"]
        if name not in labels:
            return column_result(name, kind, {}, cfg, ("drift", "none", None, "column is missing from the fresh data"))
        col_sample = sample[sample_labels[name]] if name in sample_labels else None
        compare = numeric_drift if kind == "numeric" else categorical_drift
        result = compare(ref, frame[labels[name]], column=name, sample=col_sample, n_tests=n_tests, config=cfg)
        if small and not use_tests:
            result.details["note"] = (
                f"the reference has {reference.get('n_rows')} rows (<= {cfg['small_sample']}) but no sample "
                "was given, so KS / chi-squared were skipped and the distances decided"
            )
        return result

    results = map_columns(one, names, int(cfg.get("threads", 1)))
    drifted = [r.column for r in results if r.verdict == "drift"]
    share = len(drifted) / len(results) if results else 0.0
    return DriftReport(
        columns=results,
        drifted=drifted,
        share=share,
        dataset_drift=bool(results) and share >= cfg["dataset_share"],
        config=cfg,
    )


def _numeric_from_values(
    ref: Mapping[str, Any],
    x: np.ndarray,
    missing: int,
    *,
    column: str,
    sample: Any,
    n_tests: int,
    cfg: Mapping[str, Any],
) -> ColumnDrift:
    # x: the finite fresh values, contiguous, unsorted. Every statistic but the sketch is one
    # linear pass over all of them; only the sketch needs sorted values, and past ``sketch_rows``
    # it sorts a fixed-seed sample (a sort is ~60 ms per million values, the passes ~1 ms each).
    n = x.size
    details = missing_details(ref, missing, n + missing)
    empty = empty_decision(ref, n, n + missing, details)
    if empty is not None:
        return column_result(column, "numeric", details, cfg, empty)
    edges = np.asarray(ref["edges"], dtype=np.float64)
    ref_fr = np.asarray(ref["bin_fractions"], dtype=np.float64)
    cap = int(cfg.get("sketch_rows") or 0)
    s = sorted_sample(x, cap)
    sampled = s.size < n
    cur_fr = (bin_counts_unsorted(x, edges) if sampled else bin_counts(s, edges)) / n
    psi_value = psi(ref_fr, cur_fr)
    ref_sketch = np.asarray(ref["sketch"], dtype=np.float64)
    cur_sketch = block_means(s, ref_sketch.size)
    w1 = wasserstein_from_sketches(ref_sketch, cur_sketch)
    std = float(ref.get("std") or 0.0)
    if std > 0:
        w_norm = w1 / std
        w_note = None
    else:
        # A constant reference: any spread or move is drift; the raw distance is reported.
        w_norm = w1
        w_note = "the reference is constant (std 0), so the Wasserstein distance is not normalised"
    # exact from the blocks when they cover every value; one pass over all of them otherwise
    cur_mean = float(x.mean()) if sampled else float(cur_sketch.mean())
    details.update(
        psi=psi_value,
        wasserstein=w1,
        wasserstein_norm=w_norm,
        ref_mean=ref.get("mean"),
        cur_mean=cur_mean,
        ref_std=ref.get("std"),
        cur_std=std_from_sorted(x, cur_mean),
        ref_min=ref.get("min"),
        ref_max=ref.get("max"),
        cur_min=float(x.min()) if sampled else float(s[0]),
        cur_max=float(x.max()) if sampled else float(s[-1]),
        edges=ref["edges"],
        ref_fractions=ref_fr.tolist(),
        cur_fractions=cur_fr.tolist(),
    )
    if sampled:
        details["sketch_rows"] = int(s.size)
    if w_note:
        details["wasserstein_note"] = w_note
    # the KS test sees every fresh value (scipy sorts them itself)
    test = ks_test(sample, x, n_tests, cfg) if sample is not None else None
    if test is not None:
        details.update(test)
    return column_result(column, "numeric", details, cfg, numeric_decision(psi_value, w_norm, test, cfg))


