"""A promotion against its readers and its crashes: pruning a version while `load_model` reads it,
and the registry and the package agreeing after a promotion dies half way (the kill -9 loop over
a real package is in test_retrain.py)."""

from __future__ import annotations

import threading

import pytest

import mlops_nb as mnb
from mlops_nb.deploy import model as model_module
from mlops_nb.deploy.layout import current_version, prune_versions, switch_current, versions, write_version


def _package(root, n_versions: int = 1):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    data = sio.dumps(fitted)
    for _ in range(n_versions):
        _promote(root, data, keep=1)
    return data


def _promote(root, data: bytes, keep: int) -> None:
    """What a retraining job does to the package: a new version, signed before the swap, the prune."""
    from mlops_nb.deploy import trust

    manifest = {"format": 1, "model": {"name": "churn", "version": len(versions(root)) + 1}}
    folder, _ = write_version(root, {"model.skops": data, "schema.json": b"{}"}, manifest)
    trust.sign(folder, root, root.parent / "mlops.db")  # a key beside a (store-less) store path
    switch_current(root, folder)
    prune_versions(root, keep)


def test_load_model_follows_current_when_its_version_is_pruned_mid_load(tmp_path, monkeypatch):
    root = tmp_path / "churn"
    data = _package(root)
    real_verify = model_module.verify
    pruned = []

    def verify_then_promote(folder, **options):
        if not pruned:  # the reader resolved `current`; a promotion with keep_versions=1 now removes it
            _promote(root, data, keep=1)
            pruned.append(folder)
        return real_verify(folder, **options)

    monkeypatch.setattr(model_module, "verify", verify_then_promote)
    assert mnb.load_model(root).predict([[3.0]]).tolist() == [1]
    assert not pruned[0].exists() and current_version(root) != pruned[0]

    # a version folder named explicitly is not silently swapped for another one
    monkeypatch.setattr(model_module, "verify", real_verify)
    only = current_version(root)
    _promote(root, data, keep=1)
    with pytest.raises(Exception):  # noqa: B017 (gone: PackageError or FileNotFoundError, never another model)
        mnb.load_model(only)


def test_a_loop_of_loads_racing_promotions_and_prunes_never_fails(tmp_path):
    root = tmp_path / "churn"
    data = _package(root)
    done = threading.Event()
    errors: list[BaseException] = []

    def promoter():
        try:
            for _ in range(60):
                _promote(root, data, keep=1)
        except BaseException as exc:  # pragma: no cover (reported below)
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=promoter)
    thread.start()
    loads = 0
    while not done.is_set() or loads < 5:
        assert mnb.load_model(root).predict([[0.0]]).tolist() == [0]
        loads += 1
    thread.join()
    assert not errors and loads >= 5
    assert len(versions(root)) == 1


def test_missing_values_in_an_imputed_column_pass_up_to_max_missing():
    import numpy as np
    import pandas as pd

    from mlops_nb.deploy.schema import allow_missing, check_frame, columns, imputes

    train = pd.DataFrame({"age": np.arange(100.0), "income": np.arange(100.0)})
    schema = {"data": {"columns": columns(train)}, "input": {"columns": columns(train)}}
    fresh = train.copy()
    fresh.loc[:4, "income"] = np.nan  # five NaNs: 5%
    assert "income" in check_frame(fresh, schema["data"]["columns"])[0][0]  # no imputer: refused as before
    pipeline = {"class": "sklearn.pipeline.Pipeline", "params": {"steps": [
        ["impute", {"estimator": {"class": "sklearn.impute._base.SimpleImputer", "params": {}}}]]}}
    assert imputes(pipeline) and not imputes({"class": "sklearn.linear_model.LogisticRegression"})
    widened = allow_missing(schema, 0.05, imputes(pipeline))
    assert check_frame(fresh, widened["data"]["columns"])[0] == []
    assert check_frame(fresh, widened["input"]["columns"])[0] == []
    fresh.loc[:9, "income"] = np.nan  # 10%: more than the imputer is trusted with
    problems = check_frame(fresh, widened["data"]["columns"])[0]
    assert problems == ["column 'income' has 10 missing values; more than the 5% the pipeline's imputer is trusted "
                        "with (\"max_missing\" in settings.json)"]
