"""Drift statistics: export profiles the training frame once, retraining compares fresh frames with it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlops_nb.drift import (
    DEFAULT_CONFIG,
    OTHER,
    ColumnDrift,
    DriftReport,
    categorical_drift,
    categorical_profile,
    dataset_drift,
    jensen_shannon,
    numeric_drift,
    numeric_profile,
    prediction_drift,
    psi,
    reference_profile,
    reference_sample,
)
from mlops_nb.errors import InvalidValue


def training_frame(n: int = 20_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "visits": rng.poisson(3, n),
            "city": rng.choice(["paris", "lyon", "nice", "lille"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "member": rng.random(n) < 0.3,
        }
    )


def roundtrip(obj):
    return json.loads(json.dumps(obj, allow_nan=False))


# --------------------------------------------------------------------------- the workflow


def test_same_distribution_does_not_drift():
    reference = roundtrip(reference_profile(training_frame(seed=0)))  # as export writes and retrain reads it
    report = dataset_drift(reference, training_frame(seed=1))
    assert [c.verdict for c in report.columns] == ["ok"] * 5, report.summary()
    assert report.drifted == [] and report.share == 0.0 and not report.dataset_drift
    assert report.summary() == "drift in 0 of 5 columns (0%)"
    age = report.column("age")
    assert age.statistic == "psi" and age.value < 0.01
    assert age.details["wasserstein_norm"] < 0.05
    assert report.column("city").details["jensen_shannon"] < 0.02


def test_mean_shift_of_one_std_drifts_by_psi_and_wasserstein():
    reference = reference_profile(training_frame())
    fresh = training_frame(seed=1)
    fresh["age"] += 10  # one reference std
    result = dataset_drift(reference, fresh).column("age")
    assert result.verdict == "drift"
    assert result.statistic == "psi" and result.value >= DEFAULT_CONFIG["psi_drift"]
    assert result.details["wasserstein_norm"] == pytest.approx(1.0, abs=0.05)
    assert result.details["cur_mean"] - result.details["ref_mean"] == pytest.approx(10, abs=0.5)
    assert "PSI" in result.details["reason"]


def test_scaled_variance_drifts_by_wasserstein_even_when_psi_is_mild():
    rng = np.random.default_rng(0)
    ref = numeric_profile(rng.normal(0, 1, 50_000))
    result = numeric_drift(ref, rng.normal(0, 1.25, 50_000), column="x")
    # W1 between N(0,1) and N(0,1.25^2) is 0.25 * sqrt(2/pi) ~ 0.2 reference stds.
    assert result.details["wasserstein_norm"] == pytest.approx(0.25 * np.sqrt(2 / np.pi), rel=0.05)
    assert result.details["psi"] < DEFAULT_CONFIG["psi_drift"]
    assert result.verdict == "drift" and result.statistic == "wasserstein_norm"
    assert result.details["cur_std"] == pytest.approx(1.25, rel=0.02)


def test_psi_between_warn_and_drift_is_a_warning():
    rng = np.random.default_rng(0)
    ref = numeric_profile(rng.normal(0, 1, 100_000))
    result = numeric_drift(ref, rng.normal(0, 1, 100_000), config={"psi_warn": 0.0, "distance_drift": 10})
    assert result.verdict == "warn" and result.statistic == "psi"


def test_categorical_frequency_shift_drifts_by_jensen_shannon():
    reference = reference_profile(training_frame())
    fresh = training_frame(seed=1)
    rng = np.random.default_rng(2)
    fresh["city"] = rng.choice(["paris", "lyon", "nice", "lille"], len(fresh), p=[0.1, 0.2, 0.3, 0.4])
    result = dataset_drift(reference, fresh).column("city")
    assert result.kind == "categorical"
    assert result.verdict == "drift" and result.statistic == "jensen_shannon"
    true_js = jensenshannon([0.4, 0.3, 0.2, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4, 0.0], base=2)
    assert result.value == pytest.approx(true_js, abs=0.02)
    assert result.details["cur_frequencies"]["lille"] == pytest.approx(0.4, abs=0.02)


def test_unseen_categories_go_to_other_and_are_listed():
    ref = categorical_profile(pd.Series(["a"] * 500 + ["b"] * 500))
    assert ref["frequencies"] == {"a": 0.5, "b": 0.5, OTHER: 0.0}
    fresh = pd.Series(["a"] * 400 + ["b"] * 400 + ["z"] * 150 + ["y"] * 50)
    result = categorical_drift(ref, fresh, column="letter")
    assert result.details["cur_frequencies"][OTHER] == pytest.approx(0.2)
    assert result.details["unseen_categories"] == {"z": 150, "y": 50}
    assert result.details["unseen_share"] == pytest.approx(0.2)
    assert result.verdict == "drift"  # 20% of mass on never-seen values moves JS past 0.1


def test_top_categories_pool_the_rest_in_other():
    values = pd.Series([f"c{i:03d}" for i in range(150) for _ in range(i + 1)])
    ref = categorical_profile(values)
    assert len(ref["frequencies"]) == 101 and ref["distinct"] == 150
    assert sum(ref["frequencies"].values()) == pytest.approx(1.0)
    result = categorical_drift(ref, values)
    assert result.verdict == "ok" and result.value == pytest.approx(0.0, abs=1e-6)
    assert "top 100 of 150" in result.details["note"]


def test_missing_values_are_compared_as_a_share_and_left_out_of_psi():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 50_000)
    ref = numeric_profile(np.where(rng.random(50_000) < 0.05, np.nan, base))
    assert ref["missing"] == pytest.approx(2500, rel=0.1) and ref["n"] == 50_000
    fresh = rng.normal(0, 1, 50_000)
    fresh[rng.random(50_000) < 0.40] = np.nan
    result = numeric_drift(ref, fresh, column="x")
    assert result.details["psi"] < 0.01  # the 40% NaN do not enter the bins
    assert result.details["missing_ref_share"] == pytest.approx(0.05, abs=0.01)
    assert result.details["missing_cur_share"] == pytest.approx(0.40, abs=0.01)
    assert result.verdict == "warn" and result.statistic == "missing_share"
    # a modest change stays ok; infinities count as missing
    fresh2 = rng.normal(0, 1, 50_000)
    fresh2[:2000] = np.inf
    ok = numeric_drift(ref, fresh2)
    assert ok.verdict == "ok" and ok.details["missing_cur_share"] == pytest.approx(0.04)


def test_categorical_missing_values_counted():
    ref = categorical_profile(pd.Series(["a", "b", None, "a"]))
    assert ref["n"] == 4 and ref["missing"] == 1
    assert ref["frequencies"]["a"] == pytest.approx(2 / 3)
    result = categorical_drift(ref, pd.Series(["a", "b", "a", None, None, None]))
    assert result.details["missing_cur_share"] == pytest.approx(0.5)
    assert result.verdict == "warn"


# --------------------------------------------------------------------------- small references


def test_small_reference_uses_ks_and_chi2_with_bonferroni():
    train = training_frame(n=600)
    reference = reference_profile(train)
    sample = reference_sample(train)
    assert len(sample) == 600  # the whole small reference
    fresh = training_frame(n=800, seed=1)
    fresh["age"] += 10
    fresh["city"] = "paris"
    report = dataset_drift(reference, fresh, sample=sample)
    age, city, visits = report.column("age"), report.column("city"), report.column("visits")
    for col in (age, city, visits):
        assert col.details["small_sample"] is True
        assert col.details["bonferroni_m"] == 5
        assert col.details["alpha_corrected"] == pytest.approx(0.05 / 5)
    assert age.details["test"] == "ks" and city.details["test"] == "chi2"
    expected = stats.ks_2samp(train["age"], fresh["age"]).pvalue
    assert age.details["p_value"] == pytest.approx(expected)
    assert age.verdict == "drift" and age.statistic == "ks_p_value"
    assert city.verdict == "drift" and city.statistic == "chi2_p_value"
    assert visits.verdict == "ok" and visits.details["p_value"] > 0.01


def test_small_reference_of_the_same_distribution_is_ok_even_when_distances_pass_by_chance():
    rng = np.random.default_rng(11)
    reference = rng.normal(0, 1, 120)
    verdicts, distances = [], []
    for seed in range(20):
        fresh = np.random.default_rng(seed).normal(0, 1, 120)
        result = numeric_drift(numeric_profile(reference), fresh, sample=reference, n_tests=5)
        verdicts.append(result.verdict)
        distances.append(result.details["wasserstein_norm"])
    assert max(distances) >= 0.1  # the distance alone would have flagged some of these
    assert verdicts.count("ok") >= 19  # the test, at alpha 0.05 / 5, keeps them quiet


def test_bonferroni_correction_changes_the_verdict():
    rng = np.random.default_rng(5)
    ref_values = rng.normal(0, 1, 300)
    fresh = rng.normal(0.15, 1, 300)
    p = stats.ks_2samp(ref_values, fresh).pvalue
    ref = numeric_profile(ref_values)
    cfg = {"alpha": min(1.0, p * 2)}  # p < alpha, but p > alpha / 4
    alone = numeric_drift(ref, fresh, sample=ref_values, n_tests=1, config=cfg)
    corrected = numeric_drift(ref, fresh, sample=ref_values, n_tests=4, config=cfg)
    assert alone.verdict == "drift" and alone.details["rejected"]
    assert corrected.verdict != "drift" and not corrected.details["rejected"]
    assert corrected.details["p_adjusted"] == pytest.approx(min(1.0, p * 4))


def test_large_reference_does_not_run_the_tests():
    train = training_frame(n=5000)
    report = dataset_drift(reference_profile(train), training_frame(n=5000, seed=1), sample=reference_sample(train))
    assert all("p_value" not in c.details for c in report.columns)


def test_small_reference_without_sample_says_the_tests_were_skipped():
    train = training_frame(n=500)
    report = dataset_drift(reference_profile(train), training_frame(n=500, seed=1))
    assert "KS / chi-squared were skipped" in report.column("age").details["note"]


def test_reference_sample_is_bounded_and_reproducible():
    train = training_frame(n=20_000)
    a = reference_sample(train, sample_rows=1000, seed=3)
    b = reference_sample(train, sample_rows=1000, seed=3)
    assert len(a) == 1000 and a.equals(b)
    assert list(a.columns) == list(train.columns)


# --------------------------------------------------------------------------- the dataset verdict


def test_dataset_drift_when_at_least_half_the_columns_drift():
    train = training_frame()
    reference = reference_profile(train, columns=["age", "income", "visits", "city"])
    fresh = training_frame(seed=1)
    fresh["age"] += 10
    one = dataset_drift(reference, fresh)
    assert one.drifted == ["age"] and one.share == 0.25 and not one.dataset_drift
    fresh["income"] *= 3
    two = dataset_drift(reference, fresh)
    assert two.drifted == ["age", "income"] and two.share == 0.5 and two.dataset_drift
    assert two.summary() == "drift in 2 of 4 columns (50%): age, income; dataset drift"
    assert dataset_drift(reference, fresh, config={"dataset_share": 0.75}).dataset_drift is False
    assert dataset_drift(reference, fresh, columns=["visits"]).columns[0].column == "visits"


def test_unknown_columns_and_config_keys_are_named():
    reference = reference_profile(training_frame(n=100))
    with pytest.raises(InvalidValue, match="'height'.*profiled columns: age"):
        dataset_drift(reference, training_frame(n=100), columns=["height"])
    with pytest.raises(InvalidValue, match="'psi_max'.*known keys"):
        dataset_drift(reference, training_frame(n=100), config={"psi_max": 1})
    with pytest.raises(InvalidValue, match="not a drift reference profile.*reference_profile"):
        dataset_drift({"rows": 100, "columns": {}}, training_frame(n=100))
    with pytest.raises(InvalidValue, match="'height' not in the frame"):
        reference_profile(training_frame(n=100), columns=["height"])


def test_column_missing_from_fresh_data_is_drift():
    reference = reference_profile(training_frame(n=2000))
    result = dataset_drift(reference, training_frame(n=2000, seed=1).drop(columns=["city"])).column("city")
    assert result.verdict == "drift" and "missing from the fresh data" in result.details["reason"]


# --------------------------------------------------------------------------- prediction drift


def test_prediction_drift_on_scores_and_labels():
    rng = np.random.default_rng(0)
    ref = numeric_profile(rng.beta(2, 5, 20_000))
    same = prediction_drift(ref, rng.beta(2, 5, 20_000))
    assert same.column == "prediction" and same.verdict == "ok" and same.statistic == "psi"
    moved = prediction_drift(ref, rng.beta(5, 2, 20_000))
    assert moved.verdict == "drift" and moved.value >= 0.25
    assert moved.value == pytest.approx(psi(moved.details["ref_fractions"], moved.details["cur_fractions"]))
    labels = categorical_profile(pd.Series(["yes"] * 300 + ["no"] * 700))
    assert prediction_drift(labels, ["yes"] * 700 + ["no"] * 300).verdict == "drift"
    assert prediction_drift(labels, ["yes"] * 30 + ["no"] * 70).verdict == "ok"
    with pytest.raises(InvalidValue, match=r"predict_proba\(X\)\[:, 1\]"):
        prediction_drift(ref, rng.random((100, 3)))


# --------------------------------------------------------------------------- the statistics themselves


def test_psi_formula_and_smoothing():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    expected = (0.7 - 0.5) * np.log(0.7 / 0.5) + (0.3 - 0.5) * np.log(0.3 / 0.5)
    assert psi([0.5, 0.5], [0.7, 0.3]) == pytest.approx(expected)
    assert psi([50, 50], [70, 30]) == pytest.approx(expected)  # counts are normalised
    assert np.isfinite(psi([1.0, 0.0], [0.0, 1.0]))  # empty bins are smoothed by eps
    with pytest.raises(ValueError, match="same bins"):
        psi([0.5, 0.5], [1.0])


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: (rng.normal(0, 1, 50_000), rng.normal(0.3, 1, 50_000)),
        lambda rng: (rng.normal(0, 1, 50_000), rng.normal(0, 1.5, 30_000)),
        lambda rng: (rng.lognormal(0, 1, 50_000), rng.lognormal(0.2, 1.2, 40_000)),  # heavy right tail
        lambda rng: (rng.exponential(1, 1234), rng.exponential(1.3, 777)),  # sizes not multiples of the sketch
        lambda rng: (rng.normal(0, 1, 300), rng.normal(1, 2, 5000)),  # a reference smaller than the sketch
        lambda rng: (rng.uniform(0, 1, 20_000), np.concatenate([rng.uniform(0, 1, 19_000), rng.uniform(5, 6, 1000)])),
    ],
    ids=["shift", "scale", "lognormal", "odd-sizes", "tiny-ref", "outliers"],
)
def test_wasserstein_sketch_matches_scipy(make):
    ref_values, fresh = make(np.random.default_rng(0))
    exact = stats.wasserstein_distance(ref_values, fresh)
    ref = numeric_profile(ref_values)
    result = numeric_drift(ref, fresh)
    assert result.details["wasserstein"] == pytest.approx(exact, rel=0.02)
    assert result.details["wasserstein"] <= exact * (1 + 1e-9)  # block averaging never overestimates
    assert result.details["wasserstein_norm"] == pytest.approx(exact / ref["std"], rel=0.02)


def test_wasserstein_sketch_of_same_distribution_is_small_in_absolute_terms():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 100_000), rng.normal(0, 1, 100_000)
    result = numeric_drift(numeric_profile(a), b)
    assert abs(result.details["wasserstein"] - stats.wasserstein_distance(a, b)) < 0.005


def test_numeric_profile_is_compact_and_consistent():
    rng = np.random.default_rng(0)
    values = rng.normal(5, 2, 100_000)
    ref = numeric_profile(values)
    assert len(ref["edges"]) == 11 and len(ref["bin_fractions"]) == 12 and len(ref["sketch"]) == 1000
    assert ref["edges"][0] == ref["min"] and ref["edges"][-1] == ref["max"]
    assert np.all(np.diff(ref["sketch"]) >= 0)
    assert ref["bin_fractions"][1:11] == pytest.approx([0.1] * 10, abs=1e-4)
    assert ref["bin_fractions"][-1] == 0.0
    assert ref["mean"] == pytest.approx(values.mean()) and ref["std"] == pytest.approx(values.std(ddof=1))
    # the reference compared with itself: every statistic is exactly zero
    same = numeric_drift(ref, values)
    assert same.details["psi"] == 0.0 and same.details["wasserstein"] == pytest.approx(0.0, abs=1e-12)


def test_ties_give_point_masses_their_own_bins():
    ref = numeric_profile(np.array([0] * 700 + [1] * 300))
    assert ref["edges"] == [0.0, 1.0] and ref["bin_fractions"] == [0.7, 0.3, 0.0]
    flipped = numeric_drift(ref, np.array([0] * 300 + [1] * 700))
    assert flipped.details["cur_fractions"] == [0.3, 0.7, 0.0]
    assert flipped.verdict == "drift"


def test_constant_reference():
    ref = numeric_profile(np.full(1000, 3.0))
    assert ref["std"] == 0.0 and ref["edges"] == [3.0]
    assert numeric_drift(ref, np.full(500, 3.0)).verdict == "ok"
    moved = numeric_drift(ref, np.full(500, 4.0))
    assert moved.verdict == "drift" and "constant" in moved.details["wasserstein_note"]
    below = numeric_drift(ref, np.full(500, 2.0))  # shares PSI's lowest bin; Wasserstein still sees it
    assert below.verdict == "drift" and below.statistic == "wasserstein_norm"


def test_dtypes_ints_bools_datetimes_and_nullable():
    frame = pd.DataFrame(
        {
            "n": pd.array([1, 2, None, 4] * 250, dtype="Int64"),
            "flag": [True, False, True, True] * 250,
            "when": pd.to_datetime(["2024-01-01", "2024-06-01", None, "2025-01-01"] * 250),
            "cat": pd.Categorical(["x", "y", "x", "x"] * 250),
            "z": np.full(1000, 1 + 1j),
        }
    )
    reference = roundtrip(reference_profile(frame))
    kinds = {k: v["kind"] for k, v in reference["columns"].items()}
    assert kinds == {"n": "numeric", "flag": "categorical", "when": "numeric", "cat": "categorical", "z": "unsupported"}
    assert reference["columns"]["n"]["missing"] == 250
    assert set(reference["columns"]["flag"]["frequencies"]) == {"True", "False", OTHER}
    report = dataset_drift(reference, frame)
    assert [c.column for c in report.columns] == ["n", "flag", "when", "cat"]
    assert all(c.verdict == "ok" for c in report.columns), report.summary()


def test_non_numeric_fresh_values_for_a_numeric_column_are_drift_not_a_crash():
    ref = numeric_profile(np.arange(100.0))
    result = numeric_drift(ref, pd.Series(["a", "b"]), column="x")
    assert result.verdict == "drift" and "not numeric" in result.details["reason"]


def test_fresh_data_is_not_modified():
    frame = training_frame(n=1000)
    before = frame.copy()
    dataset_drift(reference_profile(frame), frame)
    pd.testing.assert_frame_equal(frame, before)


# --------------------------------------------------------------------------- empty columns, JSON


def test_empty_and_all_null_columns_get_a_verdict_with_a_reason():
    ref_full = numeric_profile(np.arange(100.0))
    ref_null = numeric_profile(np.full(100, np.nan))
    assert ref_null["mean"] is None and ref_null["edges"] == [] and ref_null["missing"] == 100
    all_null = numeric_drift(ref_full, np.full(50, np.nan), column="x")
    assert all_null.verdict == "drift" and "all 50 fresh values are missing" in all_null.details["reason"]
    both = numeric_drift(ref_null, np.full(50, np.nan))
    assert both.verdict == "ok" and "no values" in both.details["reason"]
    appeared = numeric_drift(ref_null, np.arange(10.0))
    assert appeared.verdict == "drift" and "reference had no values" in appeared.details["reason"]
    no_rows = numeric_drift(ref_full, np.array([]))
    assert no_rows.verdict == "warn" and "no fresh rows" in no_rows.details["reason"]
    cat_null = categorical_drift(categorical_profile(pd.Series(["a", "b"])), pd.Series([None, None]))
    assert cat_null.verdict == "drift"
    empty_frame = training_frame(n=100).iloc[:0]
    report = dataset_drift(reference_profile(training_frame(n=100)), empty_frame)
    assert {c.verdict for c in report.columns} == {"warn"}
    assert reference_profile(empty_frame)["columns"]["age"]["n"] == 0


def test_report_json_round_trip():
    train = training_frame(n=3000)
    fresh = training_frame(n=3000, seed=1)
    fresh["age"] += 10
    fresh.loc[:10, "income"] = np.nan
    report = dataset_drift(roundtrip(reference_profile(train)), fresh)
    data = roundtrip(report.to_dict())
    assert data == report.to_dict()
    again = DriftReport.from_dict(data)
    assert again.to_dict() == data and again.summary() == report.summary()
    assert isinstance(again.columns[0], ColumnDrift)
    assert data["columns"][0]["verdict"] == "drift" and data["drifted"] == ["age"]
    assert set(data["config"]) == set(DEFAULT_CONFIG)


def test_column_to_dict_converts_numpy_values_without_changing_them():
    from dataclasses import asdict

    from mlops_nb.drift.report import _json_safe

    details = {"edges": np.linspace(0, 1, 4), "psi": np.float64(0.25), "n": np.int64(7), "flag": np.bool_(True),
               "nested": {"x": [np.float32(1.5), float("nan")], 3: (1, "a")}, "inf": float("inf"), "none": None}
    column = ColumnDrift("age", "numeric", "psi", 0.25, "drift", details)
    data = column.to_dict()
    assert data == _json_safe(asdict(column))  # the same as the deep copy it no longer makes
    assert data["details"]["edges"] == [0.0, 1 / 3, 2 / 3, 1.0] and type(data["details"]["n"]) is int
    assert data["details"]["nested"] == {"x": [1.5, None], "3": [1, "a"]} and data["details"]["inf"] is None
    assert isinstance(column.details["edges"], np.ndarray)  # the column itself is left as it was


def test_summary_lists_warnings_and_truncates():
    cols = [ColumnDrift(f"c{i}", "numeric", "psi", 0.3, "drift", {}) for i in range(12)]
    cols.append(ColumnDrift("w", "numeric", "psi", 0.15, "warn", {}))
    report = DriftReport(cols, [c.column for c in cols[:12]], 12 / 13, True)
    line = report.summary()
    assert line.startswith("drift in 12 of 13 columns (92%): c0, c1,")
    assert "c9 and 2 more; warn: w; dataset drift" in line


@pytest.mark.parametrize(
    ("p", "q"),
    [
        ([0.4, 0.3, 0.2, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4, 0.0]),
        ([1, 0], [0, 1]),
        ([3, 1, 0], [3, 1, 0]),
        ([5, 0, 2], [1, 4, 0]),
    ],
)
def test_jensen_shannon_equals_scipy(p, q):
    assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)


def test_importing_mlops_nb_does_not_import_drift_and_drift_does_not_import_scipy():
    code = (
        "import sys, mlops_nb; print('mlops_nb.drift' in sys.modules); "
        "import mlops_nb.drift; print('scipy' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]


# --------------------------------------------------------------------------- the sketch's row cap


@pytest.mark.parametrize("shift", [0.0, 0.03, 0.1, 0.2, 0.5])
def test_sketch_on_a_capped_sample_gives_the_full_computations_verdicts(shift):
    # Past `sketch_rows` fresh values the Wasserstein sketch sorts a fixed-seed sample; a cap 15x
    # smaller than the column here (the default, 100,000, is 10x below a million rows) keeps every verdict.
    rng = np.random.default_rng(7)
    reference = roundtrip(reference_profile(training_frame(seed=0, n=20_000)))
    fresh = training_frame(seed=3, n=300_000)
    fresh["age"] = fresh["age"] + shift * 10
    fresh["income"] = fresh["income"] * (1 + shift)
    fresh.loc[rng.random(len(fresh)) < 0.05, "visits"] = np.nan
    full = dataset_drift(reference, fresh, config={"sketch_rows": 0})
    capped = dataset_drift(reference, fresh, config={"sketch_rows": 20_000})
    assert [c.verdict for c in capped.columns] == [c.verdict for c in full.columns], capped.summary()
    for name in ("age", "income", "visits"):
        a, b = full.column(name).details, capped.column(name).details
        assert b["sketch_rows"] == 20_000 and "sketch_rows" not in a
        assert abs(a["wasserstein_norm"] - b["wasserstein_norm"]) < 0.01
        for key in ("psi", "cur_mean", "cur_std", "cur_min", "cur_max", "missing_cur_share"):
            assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12), key
    again = dataset_drift(reference, fresh, config={"sketch_rows": 20_000})
    assert [c.details["wasserstein"] for c in again.columns if c.kind == "numeric"] == [
        c.details["wasserstein"] for c in capped.columns if c.kind == "numeric"
    ]
    expected = ["ok"] * 5 if shift <= 0.03 else None
    if expected:
        assert [c.verdict for c in capped.columns] == expected
    if shift >= 0.2:
        assert {"age", "income"} <= set(capped.drifted)
