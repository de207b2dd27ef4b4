"""capture: what a cell produced, as JSON-safe records. Real pandas and scikit-learn, small data."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlops_nb import capture
from mlops_nb.capture import (
    changed,
    describe,
    describe_dataframe,
    describe_estimator,
    describe_search,
    dump_model,
    fingerprint,
    fingerprints,
    frames,
    json_safe,
    scalar_metrics,
    snapshot,
    untrusted_reason,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture
def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


@pytest.fixture
def cancer():
    return load_breast_cancer(return_X_y=True, as_frame=True)


def mixed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.5, 2.0, np.nan, 4.0],
            "n": [1, 2, 3, 4],
            "s": ["a", "b", None, "a"],
            "c": pd.Categorical(["lo", "hi", "lo", "lo"]),
            "b": [True, False, True, True],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02", None, "2024-01-04"]),
            "i": pd.array([1, None, 3, 4], dtype="Int64"),
        },
        index=[10, 11, 12, 13],
    )


# ---------------------------------------------------------------- importing stays cheap


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, mlops_nb.capture\nprint([m for m in ('pandas', 'numpy', 'sklearn', 'skops') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- namespace diff


def test_changed_detects_created_rebound_and_in_place_modified(wine):
    ns = {"df": wine, "n": 1, "untouched": [1, 2], "_private": 1, "In": [], "np": np}
    before = snapshot(ns)
    assert set(before) == {"df", "n", "untouched"}

    ns["df"]["ratio"] = ns["df"]["alcohol"] / 2  # in place: identity kept
    ns["n"] = 2  # rebound
    ns["new"] = pd.Series([1, 2])  # created
    ns["_hidden"] = 3  # ignored
    ns["json"] = json  # modules ignored
    assert changed(before, ns) == ["df", "n", "new"]


def test_changed_detects_replaced_column_and_refit(cancer):
    X, y = cancer
    clf = LogisticRegression(max_iter=200)
    ns = {"X": X.copy(), "clf": clf}
    before = snapshot(ns)
    assert changed(before, ns) == []

    ns["X"]["mean radius"] = ns["X"]["mean radius"] * 2  # same shape, same columns
    assert changed(before, ns) == ["X"]

    before = snapshot(ns)
    clf.fit(X, y)
    assert changed(before, ns) == ["clf"]
    before = snapshot(ns)
    clf.fit(X.iloc[:300], y.iloc[:300])  # refit: same attribute names, new arrays
    assert changed(before, ns) == ["clf"]


def test_changed_detects_pipeline_fitted_in_place(cancer):
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    ns = {"pipe": pipe}
    before = snapshot(ns)
    pipe.fit(X, y)
    assert changed(before, ns) == ["pipe"]


def test_snapshot_is_cheap_for_a_hundred_objects():
    ns = {f"v{i}": [i] if i % 2 else f"s{i}" for i in range(100)}
    start = time.perf_counter()
    for _ in range(100):
        before = snapshot(ns)
        changed(before, ns)
    per_call = (time.perf_counter() - start) / 100
    assert per_call < 0.001


# ---------------------------------------------------------------- fingerprint


def test_fingerprint_is_stable_for_equal_data(wine):
    fp = fingerprint(wine)
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert fingerprint(wine.copy()) == fp
    assert fingerprint(load_wine(as_frame=True).frame) == fp
    assert fingerprint(mixed_frame()) == fingerprint(mixed_frame())


def test_fingerprint_is_the_same_in_another_process():
    code = (
        "import pandas as pd\n"
        "from mlops_nb.capture import fingerprint\n"
        "print(fingerprint(pd.DataFrame({'a': [1.0, 2.0], 's': ['x', 'y']})))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == fingerprint(pd.DataFrame({"a": [1.0, 2.0], "s": ["x", "y"]}))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda df: df.__setitem__("x", df["x"].replace(2.0, 2.5)), id="float value"),
        pytest.param(lambda df: df.__setitem__("n", df["n"].replace(3, 30)), id="int value"),
        pytest.param(lambda df: df.__setitem__("s", df["s"].replace("b", "z")), id="string value"),
        pytest.param(lambda df: df.__setitem__("c", df["c"].cat.rename_categories(["HI", "lo"])), id="category"),
        pytest.param(lambda df: df.__setitem__("t", df["t"] + pd.Timedelta("1s")), id="datetime"),
        pytest.param(lambda df: df.__setitem__("i", df["i"].fillna(0)), id="nullable int"),
        pytest.param(lambda df: df.rename(columns={"x": "y"}, inplace=True), id="column name"),
        pytest.param(lambda df: df.__setitem__("n", df["n"].astype("float64")), id="dtype"),
        pytest.param(lambda df: df.__setitem__("x", df["x"].astype("float32")), id="float width"),
        pytest.param(lambda df: setattr(df, "index", [10, 11, 12, 14]), id="index value"),
        pytest.param(lambda df: df.reset_index(drop=True, inplace=True), id="index kind"),
        pytest.param(lambda df: df.drop(index=13, inplace=True), id="row dropped"),
    ],
)
def test_fingerprint_changes_with_any_change(change):
    df = mixed_frame()
    before = fingerprint(df)
    change(df)
    assert fingerprint(df) != before


def test_fingerprint_sees_column_order_and_swapped_values():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    assert fingerprint(df[["b", "a"]]) != fingerprint(df)
    assert fingerprint(df.rename(columns={"a": "b", "b": "a"})) != fingerprint(df)
    assert fingerprint(pd.DataFrame({"a": [2.0, 1.0], "b": [3.0, 4.0]})) != fingerprint(df)


def test_fingerprint_of_object_column_with_unhashable_values():
    df = pd.DataFrame({"lists": [[1, 2], [3]]})
    assert fingerprint(df) == fingerprint(pd.DataFrame({"lists": [[1, 2], [3]]}))
    assert fingerprint(df) != fingerprint(pd.DataFrame({"lists": [[1, 2], [4]]}))


def test_fingerprint_of_large_frame_is_threaded_and_consistent(monkeypatch):
    df = pd.DataFrame(np.random.default_rng(1).random((20_000, 8)))
    threaded = fingerprint(df)
    monkeypatch.setattr(fingerprints, "_PARALLEL_BYTES", 1)
    assert fingerprint(df) == threaded
    monkeypatch.setattr(fingerprints, "_PARALLEL_BYTES", 10**15)
    assert fingerprint(df) == threaded


# ---------------------------------------------------------------- dataframe records and profiles


def test_describe_dataframe_schema_and_profile_match_pandas(wine):
    wine.loc[:4, "alcohol"] = np.nan
    record = describe_dataframe("wine", wine, profile=True)
    json.dumps(record, allow_nan=False)
    assert record["kind"] == "dataframe"
    assert record["rows"] == 178
    assert record["columns"][0] == {"name": "alcohol", "dtype": "float64"}
    assert record["fingerprint"] == fingerprint(wine)
    profile = record["profile"]
    assert profile["rows"] == 178 and profile["sampled"] is None

    alcohol = profile["columns"][0]
    assert alcohol["kind"] == "numeric"
    assert alcohol["count"] == 173 and alcohol["missing"] == 5
    col = wine["alcohol"]
    assert alcohol["mean"] == pytest.approx(col.mean())
    assert alcohol["std"] == pytest.approx(col.std())
    assert alcohol["min"] == pytest.approx(col.min())
    assert alcohol["max"] == pytest.approx(col.max())
    for q in capture.QUANTILES:
        assert alcohol["quantiles"][str(q)] == pytest.approx(col.quantile(q))
    assert sum(alcohol["histogram"]["counts"]) == 173
    assert len(alcohol["histogram"]["edges"]) == capture.HISTOGRAM_BINS + 1

    target = profile["columns"][-1]
    assert target["name"] == "target" and target["kind"] == "numeric"


def test_profile_of_categorical_string_bool_and_datetime_columns():
    df = mixed_frame()
    columns = {c["name"]: c for c in describe_dataframe("df", df, profile=True)["profile"]["columns"]}
    assert columns["s"]["kind"] == "categorical"
    assert columns["s"]["missing"] == 1
    assert columns["s"]["n_unique"] == 2
    assert columns["s"]["top"][0] == {"value": "a", "count": 2}
    assert columns["c"]["top"] == [{"value": "lo", "count": 3}, {"value": "hi", "count": 1}]
    assert columns["b"]["kind"] == "boolean"
    assert columns["b"]["top"][0] == {"value": True, "count": 3}
    assert columns["t"]["kind"] == "datetime"
    assert columns["t"]["min"].startswith("2024-01-01")
    assert columns["i"]["kind"] == "numeric"
    assert columns["i"]["mean"] == pytest.approx(8 / 3)
    json.dumps(columns, allow_nan=False)


def test_top_values_are_bounded():
    df = pd.DataFrame({"id": [f"u{i % 50}" for i in range(500)]})
    column = describe_dataframe("df", df, profile=True)["profile"]["columns"][0]
    assert column["n_unique"] == 50
    assert len(column["top"]) == capture.TOP_VALUES


def test_profile_samples_large_frames_deterministically():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(size=150_000), "g": rng.choice(["x", "y"], size=150_000)})
    first = describe_dataframe("big", df, profile=True)
    second = describe_dataframe("big", df.copy(), profile=True)
    assert first["rows"] == 150_000
    assert first["profile"]["sampled"] == capture.PROFILE_SAMPLE_ROWS
    assert first["profile"]["rows"] == capture.PROFILE_SAMPLE_ROWS
    assert first["profile"]["columns"][0]["count"] == capture.PROFILE_SAMPLE_ROWS
    assert first["profile"] == second["profile"]
    assert first["profile"]["columns"][0]["mean"] == pytest.approx(df["a"].mean(), abs=0.02)


def test_profile_off_and_too_large_frames(monkeypatch, wine):
    assert describe_dataframe("wine", wine, profile=False)["profile"] is None
    monkeypatch.setattr(frames, "MAX_PROFILE_CELLS", 100)
    record = describe("wine", wine, profile=True)
    assert record["profile"] is None
    assert "cells" in record["profile_skipped"]
    assert record["fingerprint"] == fingerprint(wine)
    assert len(record["columns"]) == 14


def test_series_is_a_one_column_frame(wine):
    record = describe("alcohol", wine["alcohol"], profile=True)
    assert record["kind"] == "series"
    assert record["columns"] == [{"name": "alcohol", "dtype": "float64"}]
    assert record["profile"]["columns"][0]["mean"] == pytest.approx(wine["alcohol"].mean())
    assert record["fingerprint"] != fingerprint(wine[["alcohol"]])
    assert describe("s", pd.Series([1, 2]))["columns"] == [{"name": "0", "dtype": "int64"}]


# ---------------------------------------------------------------- estimators


def test_describe_fitted_logistic_regression(cancer):
    X, y = cancer
    clf = LogisticRegression(C=0.5, max_iter=50).fit(X, y)
    record = describe_estimator("clf", clf)
    json.dumps(record, allow_nan=False)
    assert record["kind"] == "estimator"
    assert record["class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert record["params"]["C"] == 0.5
    assert record["params"]["max_iter"] == 50
    assert record["feature_names_in"] == list(X.columns)
    assert record["n_features_in"] == 30
    assert "steps" not in record


def test_describe_pipeline_lists_its_steps(cancer):
    X, y = cancer
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("select", SelectKBest(f_classif, k=10)),
            ("clf", LogisticRegression(max_iter=200)),
        ]
    ).fit(X, y)
    record = describe("pipe", pipe)
    json.dumps(record, allow_nan=False)
    assert record["class"] == "sklearn.pipeline.Pipeline"
    assert record["params"]["steps"] == [
        ["scale", "sklearn.preprocessing._data.StandardScaler"],
        ["select", "sklearn.feature_selection._univariate_selection.SelectKBest"],
        ["clf", "sklearn.linear_model._logistic.LogisticRegression"],
    ]
    steps = record["steps"]
    assert [s["name"] for s in steps] == ["scale", "select", "clf"]
    assert steps[1]["params"]["score_func"] == "sklearn.feature_selection._univariate_selection.f_classif"
    assert steps[1]["params"]["k"] == 10
    assert steps[2]["params"]["max_iter"] == 200
    assert record["feature_names_in"] == list(X.columns)
    assert record["n_features_in"] == 30


def test_unfitted_estimator_is_not_described():
    assert describe_estimator("clf", LogisticRegression()) is None
    assert describe("clf", LogisticRegression()) is None
    assert describe("pipe", make_pipeline(StandardScaler(), LogisticRegression())) is None
    assert describe("cls", LogisticRegression) is None


def test_describe_grid_search(wine):
    X, y = wine.drop(columns="target"), wine["target"]
    grid = {"logisticregression__C": [0.1, 1.0, 10.0], "standardscaler__with_mean": [True, False]}
    search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)), grid, cv=3)
    search.fit(X, y)
    record = describe("search", search)
    json.dumps(record, allow_nan=False)
    assert record["kind"] == "search"
    assert record["class"] == "sklearn.model_selection._search.GridSearchCV"
    assert record["n_candidates"] == len(record["candidates"]) == 6
    ranks = sorted(c["rank_test_score"] for c in record["candidates"])
    assert ranks[0] == 1 and all(isinstance(r, int) for r in ranks)
    best = record["candidates"][record["best_index"]]
    assert best["rank_test_score"] == 1
    assert best["params"] == record["best_params"]
    assert record["best_score"] == pytest.approx(search.best_score_)
    assert best["mean_test_score"] == pytest.approx(search.best_score_)
    assert record["scoring"] is None


def test_describe_multi_metric_search_uses_refit_metric(cancer):
    X, y = cancer
    search = GridSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"max_depth": [1, 2, 3]},
        scoring={"acc": "accuracy", "f1": "f1"},
        refit="f1",
        cv=3,
    ).fit(X, y)
    record = describe_search("search", search)
    assert record["refit_metric"] == "f1"
    assert record["scoring"] == {"acc": "accuracy", "f1": "f1"}
    means = [c["mean_test_score"] for c in record["candidates"]]
    assert means == pytest.approx(list(search.cv_results_["mean_test_f1"]))
    assert record["best_score"] == pytest.approx(max(means))


def test_unfitted_search_is_not_described():
    assert describe("s", GridSearchCV(LogisticRegression(), {"C": [1.0]})) is None


# ---------------------------------------------------------------- model artifacts


def test_dump_model_roundtrips_with_its_untrusted_types(cancer):
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), SelectKBest(f_classif, k=5), LogisticRegression()).fit(X, y)
    data, untrusted = dump_model(pipe)
    assert untrusted == ["sklearn.feature_selection._univariate_selection.f_classif"]
    assert untrusted_reason(untrusted, est=pipe) is None
    loaded = sio.loads(data, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))


def test_lambda_in_function_transformer_is_reported(cancer):
    X, y = cancer
    pipe = make_pipeline(FunctionTransformer(lambda a: a), LogisticRegression(max_iter=50)).fit(X, y)
    _, untrusted = dump_model(pipe)
    assert "__main__.<lambda>" in untrusted or any("<lambda>" in t for t in untrusted)
    reason = untrusted_reason(untrusted, est=pipe)
    assert reason is not None and "\n" not in reason
    assert "uses a lambda (FunctionTransformer(func=<lambda>))" in reason
    assert "skops cannot load it safely" in reason
    assert "importable module" in reason
    # without the estimator, the type name itself is given
    assert "__main__.<lambda>" in untrusted_reason(["__main__.<lambda>"])


def test_notebook_defined_function_is_reported():
    reason = untrusted_reason(["__main__.clip", "sklearn.tree._tree.Tree"])
    assert "defined in the notebook (__main__.clip)" in reason
    assert untrusted_reason(["sklearn.tree._tree.Tree"]) is None
    assert untrusted_reason([]) is None


# ---------------------------------------------------------------- json_safe, metrics, dispatch


def test_json_safe_converts_and_bounds():
    def named(a):
        return a

    value = {
        "np_int": np.int64(3),
        "np_float": np.float32(0.5),
        "nan": float("nan"),
        "np_nan": np.float64("nan"),
        "arr": np.arange(5000),
        "matrix": np.eye(2),
        "func": named,
        "lambda": lambda a: a,
        "est": LogisticRegression(),
        "cls": LogisticRegression,
        "tuple": (1, "a", None),
        "set": {2, 1},
        "ts": pd.Timestamp("2024-01-01"),
        "nat": pd.NaT,
        "na": pd.NA,
        1: "int key",
        "obj": object(),
        "long": types.SimpleNamespace(text="x" * 1000),
    }
    out = json_safe(value)
    json.dumps(out, allow_nan=False)
    assert out["np_int"] == 3 and type(out["np_int"]) is int
    assert out["np_float"] == 0.5
    assert out["nan"] is None and out["np_nan"] is None
    assert len(out["arr"]) == capture.MAX_ITEMS and out["arr"][:3] == [0, 1, 2]
    assert out["matrix"] == [1.0, 0.0, 0.0, 1.0]
    assert out["func"].endswith("test_json_safe_converts_and_bounds.<locals>.named")
    assert out["lambda"].endswith("<lambda>")
    assert out["est"] == out["cls"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert out["tuple"] == [1, "a", None]
    assert out["set"] == [1, 2]
    assert out["ts"] == "2024-01-01T00:00:00"
    assert out["nat"] is None and out["na"] is None
    assert out["1"] == "int key"
    assert out["obj"].startswith("<object object")
    assert len(out["long"]) == capture.MAX_REPR


def test_scalar_metrics_keeps_real_numbers_only():
    ns = {
        "f1": 0.91,
        "auc": np.float64(0.8),
        "n": 3,
        "k": np.int32(7),
        "flag": True,
        "npflag": np.bool_(True),
        "nan": float("nan"),
        "arr": np.array([1.0]),
        "text": "0.5",
        "z": 1 + 2j,
    }
    metrics = scalar_metrics(list(ns) + ["missing"], ns)
    assert metrics == {"f1": 0.91, "auc": 0.8, "n": 3.0, "k": 7.0}
    assert all(type(v) is float for v in metrics.values())


class Hostile:
    """An object that breaks on any attribute access."""

    def __getattr__(self, name):
        raise RuntimeError(f"no {name} for you\nsecond line")


class HostileFrame(pd.DataFrame):
    @property
    def shape(self):
        raise RuntimeError("shape is broken")


class BrokenEstimator(LogisticRegression):
    """Fits fine, then fails to list its params."""

    def get_params(self, deep=True):
        if getattr(self, "_broken", False):
            raise ValueError("cannot list params")
        return super().get_params(deep=deep)


def test_describe_never_raises(cancer):
    X, y = cancer
    assert describe("h", Hostile()) is None
    assert describe("n", 3) is None
    assert describe("f", print) is None
    assert describe("t", types) is None

    skipped = describe("hf", HostileFrame({"a": [1]}))
    assert skipped == {"kind": "skipped", "name": "hf", "reason": "RuntimeError: shape is broken"}

    broken = BrokenEstimator(max_iter=50).fit(X, y)
    broken._broken = True
    skipped = describe("b", broken)
    assert skipped["kind"] == "skipped" and skipped["reason"] == "ValueError: cannot list params"

    ns = {"h": Hostile(), "hf": HostileFrame({"a": [1]}), "b": broken}
    before = snapshot(ns)
    assert changed(before, ns) == []


def test_profile_of_awkward_numbers_is_json_safe_and_silent():
    df = pd.DataFrame({"x": [np.inf, 1.0, 2.0, np.nan], "empty": [np.nan] * 4, "z": [1j, 2j, 3j, 4j]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        record = describe("df", df, profile=True)
    json.dumps(record, allow_nan=False)
    x, empty, z = record["profile"]["columns"]
    assert x["count"] == 3 and x["missing"] == 1 and x["infinite"] == 1
    assert x["mean"] == 1.5 and x["max"] == 2.0
    assert empty["count"] == 0 and empty["mean"] is None
    assert z["kind"] == "other" and z["count"] == 4
