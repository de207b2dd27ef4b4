"""The Python API as a user drives it: start a run, log to it, end it, read it back with runs()."""

from __future__ import annotations

import hashlib
import math
import sqlite3
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

import mlops_nb as mnb
from mlops_nb.errors import FilterError, InvalidValue, RunEnded, RunNotFound
from mlops_nb.store import open_store


def only_row(store_path, **filters) -> pd.Series:
    frame = mnb.runs(store=store_path, **filters)
    assert len(frame) == 1, frame
    return frame.iloc[0]


def test_a_run_records_params_metrics_tags_and_an_artifact(store_path, tmp_path):
    report = tmp_path / "report.txt"
    report.write_text("confusion matrix\n")

    run = mnb.start("churn", name="baseline", store=store_path)
    run.log_param("model", "rf")
    run.log_params({"C": 0.5, "max_depth": 7, "features": ["age", "plan"]})
    run.log_metric("loss", 0.9)
    run.log_metrics({"f1": 0.91, "accuracy": 0.88})
    run.set_tag("team", "growth")
    sha = run.log_artifact(report)
    run.end()

    row = only_row(store_path)
    assert row["run_id"] == run.id
    assert (row["project"], row["name"], row["kind"], row["status"]) == ("churn", "baseline", "script", "finished")
    assert row["params.model"] == "rf"
    assert row["params.C"] == 0.5 and row["params.max_depth"] == 7  # numbers stay numbers
    assert row["params.features"] == '["age", "plan"]'  # lists and dicts are JSON text
    assert (row["metrics.loss"], row["metrics.f1"], row["metrics.accuracy"]) == (0.9, 0.91, 0.88)
    assert row["tags.team"] == "growth"
    assert row["start_time"] <= row["end_time"]

    assert sha == hashlib.sha256(b"confusion matrix\n").hexdigest()
    details = open_store(store_path).run_details(run.id)
    [artifact] = details["artifacts"]
    assert artifact["name"] == "report.txt" and artifact["sha256"] == sha
    copy = store_path.parent / artifact["path"]
    assert copy.read_bytes() == report.read_bytes()


def test_the_same_artifact_bytes_are_stored_once(store_path, tmp_path):
    first, second = tmp_path / "a.pkl", tmp_path / "b.pkl"
    first.write_bytes(b"\x00model")
    second.write_bytes(b"\x00model")
    with mnb.start("churn", store=store_path) as run:
        assert run.log_artifact(first) == run.log_artifact(second, name="model")
    stored = [p for p in (store_path.parent / "mlops-artifacts").rglob("*") if p.is_file()]
    assert len(stored) == 1
    names = [a["name"] for a in open_store(store_path).run_details(run.id)["artifacts"]]
    assert names == ["a.pkl", "model"]


def test_logging_a_missing_file_as_artifact_is_an_invalid_value(store_path, tmp_path):
    with mnb.start("churn", store=store_path) as run, pytest.raises(InvalidValue, match="no such file"):
        run.log_artifact(tmp_path / "nope.png")


def test_the_default_store_is_the_environment_variable_not_the_working_folder(
    _isolated_store, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with mnb.start("churn") as run:
        run.log_metric("f1", 0.9)
    assert _isolated_store.exists()
    assert not (tmp_path / "mlops.db").exists()
    assert list(mnb.runs()["run_id"]) == [run.id]


def test_leaving_the_with_block_finishes_the_run(store_path):
    with mnb.start("churn", store=store_path) as run:
        run.log_metric("f1", 0.9)
        assert run.status == "running"
    assert run.status == "finished"
    assert only_row(store_path)["status"] == "finished"


def test_an_exception_in_the_with_block_fails_the_run_with_its_text_and_propagates(store_path):
    with pytest.raises(ZeroDivisionError), mnb.start("churn", store=store_path) as run:
        run.log_metric("f1", 0.9)
        1 / 0  # noqa: B018
    assert run.status == "failed"
    recorded = open_store(store_path).run(run.id)
    assert recorded["status"] == "failed"
    assert recorded["error"] == "ZeroDivisionError: division by zero"
    assert recorded["end_time"] is not None
    assert only_row(store_path)["metrics.f1"] == 0.9  # what was logged before the error stays


def test_ending_a_run_inside_the_with_block_is_kept(store_path):
    with mnb.start("churn", store=store_path) as run:
        run.end("interrupted")
    assert only_row(store_path)["status"] == "interrupted"


def test_relogging_a_param_replaces_it_and_keeps_the_old_value_in_history(store_path):
    with mnb.start("churn", store=store_path) as run:
        run.log_param("C", 1.0)
        run.log_param("C", 0.1)
        run.log_params({"C": 0.01, "model": "lr"})
        run.log_param("model", "lr")  # the same value again is not a change

    assert only_row(store_path)["params.C"] == 0.01
    history = open_store(store_path).rows(
        "SELECT key, value, time, replaced FROM param_history WHERE run_id = ? ORDER BY rowid", (run.id,)
    )
    assert [(h["key"], h["value"]) for h in history] == [("C", 1.0), ("C", 0.1)]
    assert all(h["time"] <= h["replaced"] for h in history)


@pytest.mark.parametrize(
    "action",
    [
        lambda run, tmp: run.log_param("C", 1),
        lambda run, tmp: run.log_params({"C": 1}),
        lambda run, tmp: run.log_metric("f1", 0.9),
        lambda run, tmp: run.log_metrics({"f1": 0.9}),
        lambda run, tmp: run.set_tag("team", "growth"),
        lambda run, tmp: run.log_artifact(tmp),
        lambda run, tmp: run.end(),
    ],
    ids=["log_param", "log_params", "log_metric", "log_metrics", "set_tag", "log_artifact", "end"],
)
def test_logging_after_the_end_raises_run_ended_and_writes_nothing(store_path, tmp_path, action):
    artifact = tmp_path / "a.txt"
    artifact.write_text("x")
    with mnb.start("churn", name="baseline", store=store_path) as run:
        pass
    before = open_store(store_path).run_details(run.id)

    with pytest.raises(RunEnded) as info:
        action(run, artifact)

    message = str(info.value)
    assert f"run {run.id} (baseline) has ended (finished)" in message
    assert "mnb.start('churn')" in message  # the fix
    assert open_store(store_path).run_details(run.id) == before


def test_a_handle_on_an_ended_run_refuses_to_log(store_path):
    with mnb.start("churn", store=store_path) as run:
        pass
    again = mnb.get_run(run.id, store=store_path)
    assert again.status == "finished"
    with pytest.raises(RunEnded):
        again.log_metric("f1", 0.9)


def test_metric_steps_count_up_per_key_unless_given(store_path):
    with mnb.start("churn", store=store_path) as run:
        for loss in (0.9, 0.7, 0.5):
            run.log_metric("loss", loss)
        run.log_metric("f1", 0.8)
        run.log_metrics({"loss": 0.4, "f1": 0.85})
        run.log_metric("lr", 0.1, step=10)
        run.log_metric("lr", 0.05)  # continues after the explicit step
        run.log_metrics({"lr": 0.01}, step=20)
        run.log_metric("lr", 0.005)

    assert list(mnb.metric_history(run.id, "loss", store=store_path)["step"]) == [0, 1, 2, 3]
    assert list(mnb.metric_history(run.id, "f1", store=store_path)["step"]) == [0, 1]
    assert list(mnb.metric_history(run.id, "lr", store=store_path)["step"]) == [10, 11, 20, 21]


def test_a_second_handle_on_a_running_run_continues_its_steps(store_path):
    run = mnb.start("churn", store=store_path)
    run.log_metric("loss", 0.9)
    run.log_metric("loss", 0.8)
    again = mnb.get_run(run.id, store=store_path)
    again.log_metric("loss", 0.7)
    assert list(mnb.metric_history(run.id, "loss", store=store_path)["step"]) == [0, 1, 2]


def test_numpy_numbers_are_accepted_as_values_and_steps(store_path):
    with mnb.start("churn", store=store_path) as run:
        for step in np.arange(3):
            run.log_metric("loss", np.float32(0.5) / (step + 1), step=step)
        run.log_metrics({"f1": np.float64(0.75)}, step=np.int64(7))
        run.log_param("n_estimators", np.int64(200))

    history = mnb.metric_history(run.id, "loss", store=store_path)
    assert list(history["step"]) == [0, 1, 2]
    assert list(history["value"]) == [0.5, 0.25, pytest.approx(0.5 / 3)]
    assert list(mnb.metric_history(run.id, "f1", store=store_path)["step"]) == [7]
    assert only_row(store_path)["params.n_estimators"] == 200


@pytest.mark.parametrize("step", [1.5, "3", True], ids=["float", "text", "bool"])
def test_a_step_that_is_not_a_whole_number_is_refused_by_both_log_calls(store_path, step):
    with mnb.start("churn", store=store_path) as run:
        with pytest.raises(InvalidValue, match="step for metric 'loss'"):
            run.log_metric("loss", 0.5, step=step)
        with pytest.raises(InvalidValue, match="step for metric 'loss'"):
            run.log_metrics({"loss": 0.5}, step=step)
    assert mnb.metric_history(run.id, "loss", store=store_path).empty


def test_nan_and_infinities_are_stored_faithfully(store_path):
    with mnb.start("churn", store=store_path) as run:
        run.log_metric("loss", math.nan)
        run.log_metric("loss", math.inf)
        run.log_metric("loss", -math.inf)
        run.log_metric("loss", 0.25)
        run.log_metrics({"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")})

    history = mnb.metric_history(run.id, "loss", store=store_path)
    assert history["value"].dtype == "float64"
    values = list(history["value"])
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 0.25]

    row = only_row(store_path)
    assert math.isnan(row["metrics.nan"])
    assert row["metrics.inf"] == math.inf and row["metrics.ninf"] == -math.inf
    assert list(mnb.runs(store=store_path, where="metrics.inf > 1e308")["run_id"]) == [run.id]
    assert list(mnb.runs(store=store_path, where="metrics.ninf < -1e308")["run_id"]) == [run.id]


def test_runs_has_one_row_per_run_with_the_latest_metric_values(store_path):
    with mnb.start("churn", name="a", store=store_path) as first:
        first.log_param("model", "rf")
        for f1 in (0.5, 0.7, 0.6):
            first.log_metric("f1", f1)
    with mnb.start("churn", name="b", store=store_path) as second:
        second.log_metric("loss", 0.3)
        second.set_tag("team", "growth")
    with mnb.start("fraud", name="c", store=store_path):
        pass

    frame = mnb.runs(store=store_path)
    assert list(frame.columns) == [
        "run_id", "project", "name", "kind", "status", "start_time", "end_time",
        "params.model", "metrics.f1", "metrics.loss", "tags.team",
    ]  # fmt: skip
    assert list(frame["name"]) == ["a", "b", "c"]
    assert frame["metrics.f1"][0] == 0.6  # the last value logged, not the best
    assert math.isnan(frame["metrics.f1"][1])
    assert pd.isna(frame["params.model"][1])
    assert str(frame["start_time"].dtype) == "datetime64[ns, UTC]"
    assert list(mnb.runs("churn", store=store_path)["name"]) == ["a", "b"]
    assert list(mnb.runs("fraud", store=store_path).columns) == [
        "run_id", "project", "name", "kind", "status", "start_time", "end_time",
    ]  # fmt: skip
    assert mnb.runs("nobody", store=store_path).empty


def test_metric_history_lists_every_value_in_step_order(store_path):
    with mnb.start("churn", store=store_path) as run:
        run.log_metric("loss", 0.5, step=2)
        run.log_metric("loss", 0.9, step=0)
        run.log_metric("loss", 0.7, step=1)
    history = mnb.metric_history(run.id, "loss", store=store_path)
    assert list(history.columns) == ["step", "value", "time"]
    assert list(history["value"]) == [0.9, 0.7, 0.5]
    assert history["time"].dt.tz is not None
    assert mnb.metric_history(run.id, "never-logged", store=store_path).empty


@pytest.fixture
def four_runs(store_path):
    """rf 0.9, rf 0.7, logreg 0.95, hgb 0.95 then 0.5 (its latest); ids in that order."""
    ids = []
    for name, model, f1s, team in (
        ("baseline-rf", "rf", [0.9], "growth"),
        ("small-rf", "rf", [0.7], "growth"),
        ("tuned-logreg", "logreg", [0.95], "risk"),
        ("tuned-hgb", "hgb", [0.95, 0.5], "risk"),
    ):
        with mnb.start("churn", name=name, store=store_path) as run:
            run.log_params({"model": model, "C": 1.0 if model == "rf" else 0.1})
            for f1 in f1s:
                run.log_metric("f1", f1)
            run.set_tag("team", team)
        ids.append(run.id)
    return ids


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("metrics.f1 > 0.8 and params.model = 'rf'", [0]),
        ("metrics.f1 > 0.8", [0, 2]),  # the hgb run's latest f1 is 0.5
        ("not params.model = 'rf'", [2, 3]),
        ("params.model = 'logreg' or metrics.f1 < 0.75", [1, 2, 3]),
        ("(params.model = 'rf' or params.model = 'hgb') and not metrics.f1 < 0.8", [0]),
        ("params.model in ('rf', 'hgb')", [0, 1, 3]),
        ("params.model not in ('rf', 'hgb')", [2]),
        ("name like 'tuned-%'", [2, 3]),
        ("name not like '%rf'", [2, 3]),
        ("params.C < 0.5", [2, 3]),  # numbers compare as numbers
        ("0.8 < metrics.f1", [0, 2]),
        ("tags.team = 'risk' and status = 'finished'", [2, 3]),
        ("project = 'churn' and kind = 'script'", [0, 1, 2, 3]),
    ],
)
def test_where_filters_runs(store_path, four_runs, where, expected):
    frame = mnb.runs(store=store_path, where=where)
    assert list(frame["run_id"]) == [four_runs[i] for i in expected]


def test_where_compares_dates_with_start_time(store_path, four_runs):
    old = datetime(2021, 6, 1, 12, tzinfo=timezone.utc).timestamp()
    with sqlite3.connect(store_path) as conn:  # a run started in 2021: no API backdates a run, so SQL
        conn.execute("UPDATE runs SET start_time = ? WHERE id = ?", (old, four_runs[0]))

    before = mnb.runs(store=store_path, where="start_time < '2022-01-01'")
    assert list(before["run_id"]) == [four_runs[0]]
    assert before["start_time"][0] == pd.Timestamp("2021-06-01 12:00", tz="UTC")
    after = mnb.runs(store=store_path, where="start_time >= '2022-01-01T00:00'")
    assert list(after["run_id"]) == four_runs[1:]
    window = mnb.runs(store=store_path, where="start_time > '2021-06-01T11:59' and start_time < '2021-06-01T12:01'")
    assert list(window["run_id"]) == [four_runs[0]]


def test_a_date_that_does_not_parse_is_a_filter_error(store_path, four_runs):
    with pytest.raises(FilterError, match="not a date"):
        mnb.runs(store=store_path, where="start_time > 'last tuesday'")


def test_an_injection_attempt_is_refused_and_the_runs_table_survives(store_path, four_runs):
    with pytest.raises(FilterError, match="unexpected character ';'"):
        mnb.runs(store=store_path, where="params.model = 'x'; DROP TABLE runs; --")
    # Quoted properly it is just a value that matches nothing.
    assert mnb.runs(store=store_path, where="params.model = 'x''; DROP TABLE runs; --'").empty
    with pytest.raises(FilterError, match="unknown column"):
        mnb.runs(store=store_path, where="`params.model'; DROP TABLE runs; --` = 'rf'")

    assert len(mnb.runs(store=store_path)) == 4
    with sqlite3.connect(store_path) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 4


def test_an_unknown_column_error_lists_the_columns_that_exist(store_path, four_runs):
    with pytest.raises(FilterError) as info:
        mnb.runs(store=store_path, where="metrics.f2 > 0.8")
    message = str(info.value)
    assert "unknown column 'metrics.f2'" in message
    for column in ("metrics.f1", "params.model", "params.C", "tags.team", "start_time", "status"):
        assert column in message


def test_a_filter_syntax_error_points_at_the_bad_token(store_path, four_runs):
    expression = "metrics.f1 > > 0.8"
    with pytest.raises(FilterError) as info:
        mnb.runs(store=store_path, where=expression)
    bad = expression.index(">", expression.index(">") + 1)
    lines = str(info.value).splitlines()
    assert f"position {bad}" in lines[0] and "expected a value" in lines[0]
    assert lines[-2].strip() == expression
    assert lines[-1].index("^") - 2 == bad


def test_an_unknown_run_id_is_run_not_found_naming_the_fix(store_path):
    with mnb.start("churn", store=store_path):
        pass
    for call in (
        lambda: mnb.get_run(999, store=store_path),
        lambda: mnb.metric_history(999, "f1", store=store_path),
        lambda: mnb.start("churn", parent=999, store=store_path),
    ):
        with pytest.raises(RunNotFound) as info:
            call()
        assert "no run 999" in str(info.value) and "mlops-nb runs" in str(info.value)
    with pytest.raises(RunNotFound, match="not a run id"):
        mnb.get_run("latest", store=store_path)
    assert len(mnb.runs(store=store_path)) == 1  # the refused child run was not created


@pytest.mark.parametrize("value", ["high", None, b"0.9", [0.9], True], ids=["str", "none", "bytes", "list", "bool"])
def test_a_metric_that_is_not_a_number_is_invalid_and_writes_nothing(store_path, value):
    with mnb.start("churn", store=store_path) as run:
        run.log_metric("f1", 0.5)
        with pytest.raises(InvalidValue) as info:
            run.log_metric("f1", value)
        assert "metric 'f1' must be a number" in str(info.value) and "log a float or int" in str(info.value)
        with pytest.raises(InvalidValue):
            run.log_metrics({"loss": 0.1, "f1": value})  # one bad value: the whole call is refused
        run.log_metric("f1", 0.6)
    assert list(mnb.metric_history(run.id, "f1", store=store_path)["step"]) == [0, 1]
    assert mnb.metric_history(run.id, "loss", store=store_path).empty


def test_an_unserialisable_param_is_invalid_and_writes_nothing(store_path):
    class Model:
        pass

    with mnb.start("churn", store=store_path) as run:
        with pytest.raises(InvalidValue) as info:
            run.log_param("model", Model())
        assert "param 'model' is a Model" in str(info.value) and "str(value)" in str(info.value)
        with pytest.raises(InvalidValue):
            run.log_params({"C": 1.0, "model": Model()})
        with pytest.raises(InvalidValue, match="artifact"):
            run.log_param("vocabulary", ["word"] * 20000)
    assert open_store(store_path).run_details(run.id)["params"] == {}


def test_a_project_must_be_named(store_path):
    for project in ("", "  ", None):
        with pytest.raises(InvalidValue, match="project"):
            mnb.start(project, store=store_path)


def test_an_unknown_end_status_is_refused_and_the_run_keeps_running(store_path):
    run = mnb.start("churn", store=store_path)
    with pytest.raises(InvalidValue, match="finished, failed, interrupted"):
        run.end("done")
    assert open_store(store_path).run(run.id)["status"] == "running"
    run.end()


@pytest.mark.parametrize("key", [None, "", "  ", 3, ("a", "b")], ids=["none", "empty", "blank", "int", "tuple"])
def test_a_name_that_is_not_a_non_empty_string_is_invalid_and_writes_nothing(store_path, key):
    with mnb.start("churn", store=store_path) as run:
        for call, kind in (
            (lambda: run.log_metric(key, 0.5), "metric"),
            (lambda: run.log_metrics({"f1": 0.5, key: 0.5}), "metric"),
            (lambda: run.log_param(key, 1), "param"),
            (lambda: run.log_params({"C": 1, key: 1}), "param"),
            (lambda: run.set_tag(key, "x"), "tag"),
        ):
            with pytest.raises(InvalidValue, match=f"a {kind} name must be a non-empty string"):
                call()
    assert list(mnb.runs(store=store_path).columns) == [
        "run_id", "project", "name", "kind", "status", "start_time", "end_time",
    ]  # fmt: skip


def test_a_where_inside_a_project_knows_only_that_projects_columns(store_path, four_runs):
    with mnb.start("fraud", name="iforest", store=store_path) as run:
        run.log_metric("recall", 0.6)

    assert list(mnb.runs("churn", store=store_path, where="metrics.f1 > 0.8")["run_id"]) == [four_runs[0], four_runs[2]]
    assert list(mnb.runs("fraud", store=store_path, where="metrics.recall > 0.5")["run_id"]) == [run.id]
    with pytest.raises(FilterError) as info:
        mnb.runs("fraud", store=store_path, where="metrics.f1 > 0.8")
    message = str(info.value)
    assert "unknown column 'metrics.f1'" in message and "metrics.recall" in message
    assert "params.model" not in message


def test_runs_of_an_empty_store_is_an_empty_table_with_the_run_columns(store_path):
    frame = mnb.runs(store=store_path)
    assert frame.empty
    assert list(frame.columns) == ["run_id", "project", "name", "kind", "status", "start_time", "end_time"]


# -- tracking writes the lifecycle, deployments and retraining -----------------------------------------


def test_a_restarted_kernel_resumes_its_run_with_the_restart_in_its_lineage(store_path):
    from mlops_nb.tracking import lifecycle

    run = mnb.start("churn", store=store_path, kind="notebook", kernel="kernel-1.json")
    lifecycle.record_cell(run, source="x = 1", cell_id="c1", execution_count=1, status="ok")
    run.end("finished", reason="kernel exit")

    assert lifecycle.resume_after_restart("kernel-2.json", store=store_path) is None  # another kernel
    resumed = lifecycle.resume_after_restart("kernel-1.json", store=store_path)
    assert (resumed.id, resumed.status) == (run.id, "running")
    assert [(e["kind"], e["source"]) for e in open_store(store_path).events(run.id)] == [
        ("cell", "x = 1"), ("restart", None)]
    resumed.end()
    assert lifecycle.resume_after_restart("kernel-1.json", store=store_path) is None  # ended on purpose


def test_a_stage_records_its_model_bytes_gate_and_warnings_once(store_path):
    from mlops_nb.stages import Requirement
    from mlops_nb.tracking import lifecycle

    run = mnb.start("churn", store=store_path, kind="notebook")
    lifecycle.set_requirement(run, Requirement("f1", ">=", 0.8), target="y", notes="beat the baseline")
    model = lifecycle.begin_stage(run, "model", source="clf.fit(X, y)", cell_id="c1", execution_count=1)
    lifecycle.finish_stage(run, model, duration=0.5, status="ok", variables=["clf"], execution_count=7,
                           captures=[{"name": "clf", "kind": "estimator", "artifact": b"skops bytes"}])
    validation = lifecycle.begin_stage(run, "validation", source="f1 = 0.9", cell_id="c2", execution_count=8)
    lifecycle.finish_stage(run, validation, duration=0.1, status="ok", metrics={"f1": 0.9},
                           gate={"metric": "f1", "op": ">=", "threshold": 0.8, "value": 0.9, "passed": 1})
    store = open_store(store_path)
    details = store.run_details(run.id)
    assert [(s["stage"], s["execution_count"]) for s in details["stages"]] == [("model", 7), ("validation", 8)]
    capture = store.captures(run.id)[0]
    artifact = store.artifact(capture["artifact_id"])
    assert store.artifact_path(artifact["path"]).read_bytes() == b"skops bytes"
    assert "artifact" not in capture["summary"]
    assert details["metrics"] == {"f1": 0.9} and details["gates"][0]["passed"] == 1
    assert details["requirement"]["notes"] == "beat the baseline"

    assert lifecycle.judge(run) == []
    lifecycle.begin_stage(run, "model", source="clf.fit(X2, y)", cell_id="c1", execution_count=9)
    assert lifecycle.judge(run) == ["validation"]  # the model ran again after it
    assert lifecycle.judge(run) == []  # nothing new: nothing rewritten


def test_an_export_is_recorded_as_a_deployment_stage_with_its_manifest(store_path):
    from mlops_nb.tracking.deployments import record_deployment

    run = mnb.start("churn", store=store_path)
    stage_id = record_deployment(run.id, source="mlops-nb export churn --to pkg", start_time=1000.0, duration=2.0,
                                 summary={"model": "churn", "version": 3, "path": "/srv/pkg"},
                                 manifest=b'{"format": 1}', store=store_path)
    store = open_store(store_path)
    stage = store.run_details(run.id)["stages"][-1]
    assert (stage["id"], stage["stage"], stage["status"], stage["duration"]) == (stage_id, "deployment", "ok", 2.0)
    assert store.deployments("churn") == [{"run_id": run.id, "path": "/srv/pkg", "version": 3, "time": 1000.0}]
    manifest = next(a for a in store.run_details(run.id)["artifacts"] if a["kind"] == "manifest")
    assert store.artifact_path(manifest["path"]).read_bytes() == b'{"format": 1}'


def test_a_retraining_outcome_is_recorded_whole_or_not_at_all(store_path, monkeypatch):
    from mlops_nb.store.writer import Writer
    from mlops_nb.tracking import retraining

    notebook = mnb.start("churn", store=store_path)
    job = mnb.start("churn", store=store_path, kind="retraining", parent=notebook)
    version = retraining.register_candidate(job.id, "churn", b"candidate", class_path="sklearn.X",
                                            description="retrained", store=store_path)
    retraining.mark_promoting(job.id, version, store=store_path)

    def killed(*args, **kwargs):  # the process dies as the end is written, after params, tags, metrics
        raise KeyboardInterrupt("killed")

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(Writer, "end_run", killed)
        retraining.finish_retraining(job.id, ok=True, params={"margin": 0.01}, tags={"decision": "promote"},
                                     metrics={"candidate_f1": 0.93}, store=store_path)
    store = open_store(store_path)
    child = store.child_runs(notebook.id)[0]
    assert (child["status"], child["tags"], child["metrics"]) == ("running", {"promoting": "1"}, {})
    assert store.model_versions("churn")[0]["aliases"] == []  # registered, no alias moved

    retraining.finish_retraining(job.id, ok=False, error="worse than the champion", params={"margin": None},
                                 tags={"decision": "keep"}, metrics={"candidate_f1": 0.7}, store=store_path)
    child = store.child_runs(notebook.id)[0]
    assert (child["status"], child["error"], child["tags"]["decision"]) == ("failed", "worse than the champion", "keep")
    assert child["metrics"] == {"candidate_f1": 0.7} and store.run_details(job.id)["params"] == {}
