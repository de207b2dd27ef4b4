"""The model registry, driven like a user: stage cells in an in-process IPython shell, then
`%mlops register` / `%mlops promote`, `mnb.register`, and `mlops-nb models` / `promote`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from IPython.core.error import UsageError

import mlops_nb as mnb
from mlops_nb.cli import main
from mlops_nb.errors import RegistryError
from mlops_nb.store import open_store
from mlops_nb.tracking import registry


def test_register_numbers_versions_links_run_and_artifact_and_sets_aliases(shell, capsys):
    run = shell.lifecycle()
    shell.run("%mlops register clf --name churn")
    shell.run("%mlops register clf --name churn --description 'same model again'")
    out = capsys.readouterr().out
    assert "registered churn version 1 (champion) from clf of run" in out
    assert "registered churn version 2 (challenger)" in out and "%mlops promote churn 2" in out

    store = open_store(shell.store)
    versions = registry.models("churn", store=store)
    assert [(v.version, v.aliases) for v in versions] == [(1, ["champion"]), (2, ["challenger"])]
    capture = next(c for c in store.captures(run.id) if c["name"] == "clf")
    for v in versions:
        assert (v.run_id, v.capture_id, v.artifact_id) == (run.id, capture["id"], capture["artifact_id"])
        assert v.class_path == "sklearn.linear_model._logistic.LogisticRegression"
    assert versions[1].description == "same model again"
    assert store.artifact(versions[0].artifact_id)["kind"] == "model"
    history = registry.alias_history("churn", store=store)
    assert [(h["alias"], h["version"], h["by"], h["run_id"], h["reason"]) for h in history] == [
        ("champion", 1, "%mlops register", run.id, "first registered version"),
        ("challenger", 2, "%mlops register", run.id, "registered"),
    ]


def test_promote_moves_champion_keeps_previous_and_clears_challenger(shell, capsys):
    run = shell.lifecycle()
    for _ in range(3):
        shell.run("%mlops register clf --name churn")
    shell.run("%mlops promote churn 3 --reason 'better on recent data'")
    assert "champion of churn is now version 3" in capsys.readouterr().out
    store = open_store(shell.store)
    assert store.aliases("churn") == {"champion": 3, "previous": 1}
    last = registry.alias_history("churn", store=store)[-3:]
    assert [(h["alias"], h["version"], h["previous_version"], h["reason"]) for h in last] == [
        ("champion", 3, 1, "better on recent data"),
        ("previous", 1, None, "replaced as champion by version 3"),
        ("challenger", None, 3, "promoted to champion"),
    ]
    assert {h["by"] for h in last} == {"%mlops promote"} and {h["run_id"] for h in last} == {run.id}
    assert all(h["time"] > 0 for h in last)

    # A rollback is a promote of `previous`; promoting the champion again changes nothing.
    mnb.promote("churn", "previous", store=store, reason="rollback")
    assert store.aliases("churn") == {"champion": 1, "previous": 3}
    before = len(registry.alias_history("churn", store=store))
    mnb.promote("churn", 1, store=store)
    assert len(registry.alias_history("churn", store=store)) == before
    mnb.promote("churn", 2, "challenger", store=store)
    assert registry.get_version("churn", "challenger", store=store).version == 2
    assert registry.get_version("churn", store=store).version == 1  # default: the champion


def test_register_from_python_by_object_by_run_and_by_name(shell):
    run = shell.lifecycle()
    model = shell.shell.user_ns["clf"]
    by_object = mnb.register(model, "churn")  # the notebook's capture of the variable bound to it
    by_run = mnb.register(run, "churn")
    by_id = mnb.register(run.id, "churn", description="by id")
    by_name = mnb.register("clf", "churn", run=run.id, store=shell.store)
    assert [v.version for v in (by_object, by_run, by_id, by_name)] == [1, 2, 3, 4]
    assert len({v.artifact_id for v in (by_object, by_run, by_id, by_name)}) == 1
    assert by_object.capture_id is not None

    # A model no stage captured gets its own artifact, linked to the run.
    from sklearn.tree import DecisionTreeClassifier

    fresh = DecisionTreeClassifier(max_depth=2).fit(shell.shell.user_ns["X"], shell.shell.user_ns["y"])
    with pytest.raises(RegistryError, match="no gate: no stage cell fitted this model"):
        mnb.register(fresh, "tree")  # nothing ever validated it
    other = mnb.register(fresh, "tree", force="a quick baseline")
    assert other.capture_id is None and other.run_id == run.id and other.aliases == ["challenger"]
    assert other.class_path.endswith("DecisionTreeClassifier") and other.forced == "a quick baseline"
    assert by_object.stage_id is not None and by_object.gate_passed is True and by_object.forced is None


def _version_count(shell) -> int:
    return len(open_store(shell.store).model_versions())


def test_register_refuses_a_model_whose_gate_failed_and_force_never_crowns_it(shell, capsys):
    shell.lifecycle(threshold=0.99)  # requirement f1 >= 0.99: FAILED
    assert "FAILED" in capsys.readouterr().out
    with pytest.raises(UsageError) as refused:
        shell.run("%mlops register clf --name churn")
    message = str(refused.value)
    assert "\n" not in message and "gate failed: requirement f1 >= 0.99 got" in message
    assert '--force "REASON"' in message
    assert _version_count(shell) == 0
    shell.run("%mlops register clf --name churn --force 'demo for the team'")
    assert "forced (demo for the team)" in capsys.readouterr().out
    version = registry.get_version("churn", 1, store=shell.store)
    assert version.aliases == ["challenger"] and version.gate_passed is False and version.forced == "demo for the team"
    assert "champion" not in open_store(shell.store).aliases("churn")
    with pytest.raises(RegistryError, match="force needs a reason"):
        mnb.register("clf", "churn", force=" ", store=shell.store)


def test_register_refuses_an_unvalidated_or_stale_model(shell):
    shell.run(f"%mlops start churn --store {shell.store}")
    shell.run("%mlops require f1 >= 0.5 --target churned")
    from shell_helpers import DATA, FEATURES, MODEL, VALIDATION

    for cell in (DATA, FEATURES, MODEL.format(C=1.0)):
        shell.run(cell)
    with pytest.raises(RegistryError, match="no gate: no validation stage measured f1 after this model"):
        mnb.register("clf", "churn")
    shell.run(VALIDATION)
    shell.run(FEATURES)  # features again: the fitted clf no longer matches what retrain.py would replay
    with pytest.raises(RegistryError, match="stale: model is stale: features ran again after it"):
        mnb.register("clf", "churn")
    assert _version_count(shell) == 0
    for cell in (MODEL.format(C=0.5), VALIDATION):
        shell.run(cell)
    assert mnb.register("clf", "churn").aliases == ["champion"]


def test_register_errors_name_the_fix(shell):
    run = shell.lifecycle()
    with pytest.raises(UsageError, match="no captured model 'model'; its captured models are: clf"):
        shell.run("%mlops register model --name churn")
    with pytest.raises(UsageError, match="cannot name a model"):
        shell.run("%mlops register clf --name 'bad name'")
    shell.run("from sklearn.dummy import DummyClassifier")
    shell.run("%%stage model\nbaseline = DummyClassifier().fit(X, y)")
    with pytest.raises(RegistryError, match=r"several models \(clf, baseline\); say which"):
        mnb.register(run, "churn")
    with pytest.raises(RegistryError, match="not fitted"):
        mnb.register(shell.shell.user_ns["DummyClassifier"](), "churn")
    with pytest.raises(RegistryError, match="no model named 'nope' .*no model is registered yet"):
        registry.get_version("nope", store=shell.store)
    shell.run("%mlops register clf --name churn")
    with pytest.raises(RegistryError, match="has no version 7; its versions are 1"):
        mnb.promote("churn", 7, store=shell.store)
    with pytest.raises(RegistryError, match="unknown alias 'best'"):
        mnb.promote("churn", 1, "best", store=shell.store)
    with pytest.raises(RegistryError, match="has no alias 'previous'"):
        registry.get_version("churn", "previous", store=shell.store)


def test_cli_models_and_promote(shell):
    shell.lifecycle()
    shell.run("%mlops register clf --name churn")
    shell.run("%mlops register clf --name churn")
    runner = CliRunner()
    store = ["--store", str(shell.store)]
    result = runner.invoke(main, [*store, "models"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "version", "aliases", "run", "class", "created"]
    assert lines[1].split()[:5] == ["churn", "1", "champion", "1", "LogisticRegression"]
    assert lines[2].split()[:3] == ["churn", "2", "challenger"]

    result = runner.invoke(main, [*store, "promote", "churn", "2", "--reason", "canary went fine"])
    assert result.exit_code == 0, result.output
    assert "champion of churn is now version 2" in result.output
    result = runner.invoke(main, [*store, "models", "churn"])
    assert "alias history" in result.output and "canary went fine" in result.output
    assert "mlops-nb promote" in result.output
    data = json.loads(runner.invoke(main, [*store, "models", "churn", "--format", "json"]).output)
    assert [v["aliases"] for v in data["versions"]] == [["previous"], ["champion"]]
    assert data["alias_history"][-1]["alias"] == "challenger"

    result = runner.invoke(main, [*store, "models", "nope"])
    assert result.exit_code == 1 and "no model named 'nope'" in result.output


def test_a_search_registers_as_the_estimator_it_saved(shell):
    """A tuning stage's GridSearchCV saves its refitted best estimator: the registry names that class,
    which is what load_model returns, not the search's."""
    shell.lifecycle()
    shell.run("""%%stage tuning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression()), {"logisticregression__C": [0.1, 1.0]},
                      cv=3).fit(X, y)
""")
    shell.run("%%stage validation\nf1 = f1_score(y, search.predict(X))")
    shell.run("%mlops register search --name churn-tuned")
    [version] = registry.models("churn-tuned", store=shell.store)
    assert version.class_path == "sklearn.pipeline.Pipeline"
