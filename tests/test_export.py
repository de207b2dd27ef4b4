"""Export: a notebook run in a real kernel becomes a checksummed package that a fresh process loads
safely, predicts with, and retrains from; and the refusals that keep a bad model out of production."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from croniter import croniter
from IPython.core.error import UsageError
from notebook_helpers import notebook, run_notebook, text_of
from shell_helpers import DATA, FEATURES, MODEL, VALIDATION

import mlops_nb as mnb
from mlops_nb.cli import main
from mlops_nb.deploy import export as export_module
from mlops_nb.deploy.exits import EXIT_KEPT, EXIT_NO_DATA, EXIT_PROMOTED
from mlops_nb.deploy.layout import package_dir
from mlops_nb.deploy.model import TRUSTED_TYPES, rebuild_estimator, untrusted_types
from mlops_nb.deploy.pipeline import _encode, pipeline_spec
from mlops_nb.deploy.schema import bind, check_frame, conform, read_schema
from mlops_nb.deploy.script.clean import clean_cell
from mlops_nb.deploy.script.load import load_script
from mlops_nb.deploy.script.render import indent
from mlops_nb.deploy.sources import read_table
from mlops_nb.deploy.verify import read_manifest, reseal, verify, version_mismatches
from mlops_nb.errors import ChecksumError, DataNotFound, ExportError, PackageError, SchemaMismatch, UntrustedTypes
from mlops_nb.store import close_all, open_store

SCHEDULE = "30 2 * * 1-5"
PARQUET = importlib.util.find_spec("pyarrow") is not None  # the reference sample falls back to CSV
SAMPLE = "reference/sample.parquet" if PARQUET else "reference/sample.csv"
CELLS = [
    "%load_ext mlops_nb\n%mlops start cancer\n%mlops require f1 >= 0.9 --target target",
    "import pandas as pd\nSEED = 0",
    "%%stage data\ndf = pd.read_csv('data.csv')\ndf.head()",
    # magics and a shell line, which retrain.py must drop
    "%%stage features\n%env MLOPS_NB_TEST=1\n!echo building features\n"
    "df['ratio'] = df['mean radius'] / df['mean texture']\nX = df.drop(columns=['target'])\ny = df['target']",
    "%%stage selection\nfrom sklearn.feature_selection import SelectKBest, f_classif\n\n"
    "selector = SelectKBest(f_classif, k=8).fit(X, y)\nX = X.loc[:, selector.get_support()]",
    "%%stage model\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\nfrom sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import StandardScaler\n\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=SEED)\n"
    "clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)",
    "%%stage validation\nfrom sklearn.metrics import f1_score\n\nf1 = f1_score(y_test, clf.predict(X_test))",
    "%mlops register clf --name cancer",
    f'%mlops export cancer --to deploy/cancer --schedule "{SCHEDULE}" --data data.csv --airflow --kubernetes',
    "import json\nX_test.head(25).to_csv('rows.csv', index=False)\nrows = pd.read_csv('rows.csv')\n"
    "with open('expected.json', 'w') as f:\n    json.dump(clf.predict_proba(rows).tolist(), f)",
]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """The notebook above, run in a real kernel: its folder, store, package and cell outputs."""
    from sklearn.datasets import load_breast_cancer

    folder = tmp_path_factory.mktemp("notebook")
    load_breast_cancer(as_frame=True).frame.to_csv(folder / "data.csv", index=False)
    store = folder / "mlops.db"
    nb = run_notebook(notebook(CELLS), folder, store=store, timeout=300)
    outputs = [text_of(cell.get("outputs", [])) for cell in nb.cells]
    yield {"folder": folder, "store": store, "package": folder / "deploy" / "cancer", "outputs": outputs}
    close_all()


@pytest.fixture
def damaged(deployed, tmp_path):
    """A copy of the package's current version (a package on its own) that a test may break."""
    return Path(shutil.copytree(package_dir(deployed["package"]), tmp_path / "cancer"))


def python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter: no notebook, no kernel, nothing imported yet."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def test_export_writes_every_file_with_checksums_and_says_when_it_runs(deployed):
    pkg = deployed["package"]
    out = deployed["outputs"][CELLS.index(next(c for c in CELLS if c.startswith("%mlops export")))]
    assert f"exported cancer version 1 (champion) of run 1 to {pkg}" in out
    runs = re.search(r"next runs: (.+)", out).group(1).split(", ")
    assert len(runs) == 3 and all(re.fullmatch(r"\d{4}-\d\d-\d\d 02:30", r) for r in runs)

    assert os.readlink(pkg / "current") == "versions/v0001"  # a root of versions, and a link to the serving one
    assert package_dir(pkg) == pkg / "versions" / "v0001"
    assert json.loads((pkg / "settings.json").read_text())["on_drift"] == "hold"
    listed = verify(pkg)["files"]
    expected = {"model.skops", "pipeline.json", "schema.json", "reference/profile.json", SAMPLE,
                "metrics.json", "requirements.txt", "input_example.json", "retrain.py", "features.py", "crontab.txt",
                "airflow_dag.py", "cronjob.yaml", "serving.yaml", "Dockerfile", "skops_defaults.json"}
    assert set(listed) == expected
    version = pkg / "versions" / "v0001"
    unlisted = {"MANIFEST.json", "SIGNATURE", "public_key.pem"}  # the manifest and the signature over it
    on_disk = {str(p.relative_to(version)) for p in version.rglob("*") if p.is_file()} - unlisted
    assert on_disk == expected  # nothing half-written or left over
    assert sorted(p.name for p in pkg.iterdir()) == ["current", "settings.json", "versions"]
    for name, entry in listed.items():
        data = (version / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    manifest = read_manifest(pkg)
    assert manifest["format"] == 1 and manifest["run"]["id"] == 1 and manifest["package_version"] == 1
    assert manifest["model"]["name"] == "cancer" and manifest["model"]["version"] == 1
    assert manifest["model"]["variable"] == "clf" and manifest["model"]["stage"] == "model"
    assert manifest["store"] == str(deployed["store"]) and manifest["schedule"] == SCHEDULE
    assert manifest["data_source"] == str(deployed["folder"] / "data.csv") and manifest["forced"] is None
    # no temporary folder left; the lock file stays (deleting a lock file races its next taker)
    assert [p.name for p in pkg.parent.iterdir() if p.name.startswith(".")] == [".cancer.lock"]

    pins = dict(line.split("==") for line in (version / "requirements.txt").read_text().splitlines()
                if not line.startswith("#"))
    from importlib import metadata

    for dist in ("scikit-learn", "numpy", "scipy", "pandas", "skops", "mlops-nb", *(["pyarrow"] if PARQUET else [])):
        assert pins[dist] == metadata.version(dist)
    assert version_mismatches(pkg) == []
    metrics = json.loads((version / "metrics.json").read_text())
    assert metrics["gate"]["passed"] == 1 and metrics["metrics"]["f1"] > 0.9
    assert metrics["requirement"]["target"] == "target"


def test_export_is_recorded_as_the_runs_deployment_stage(deployed):
    store = open_store(deployed["store"])
    details = store.run_details(1)
    deployment = [s for s in details["stages"] if s["stage"] == "deployment"]
    assert len(deployment) == 1 and deployment[0]["status"] == "ok"
    manifest = next(a for a in details["artifacts"] if a["kind"] == "manifest")
    current = package_dir(deployed["package"])
    assert manifest["sha256"] == hashlib.sha256((current / "MANIFEST.json").read_bytes()).hexdigest()
    summary = next(c for c in store.captures(1) if c["kind"] == "deployment")["summary"]
    assert summary["path"] == str(deployed["package"]) and summary["schedule"] == SCHEDULE
    assert summary["reproduced"] == {"df": True, "X": True}  # retrain.py's steps gave the notebook's frames
    source = store.rows("SELECT source FROM stages WHERE stage = 'deployment'")[0]["source"]
    assert source.startswith("%mlops export cancer --to deploy/cancer") and "--airflow" in source


def test_a_fresh_process_loads_the_model_and_predicts_like_the_notebook(deployed):
    result = python("""
        import json, sys
        import pandas as pd
        import mlops_nb as mnb

        model = mnb.load_model("deploy/cancer")
        print(json.dumps(model.predict_proba(pd.read_csv("rows.csv")).tolist()))
        print(sorted(m for m in sys.modules if m.startswith("IPython") or m == "nbclient"))
    """, deployed["folder"])
    assert result.returncode == 0, result.stderr
    predicted, imported = result.stdout.splitlines()
    assert json.loads(predicted) == json.loads((deployed["folder"] / "expected.json").read_text())
    assert imported == "[]"  # no notebook machinery needed to load a model


def test_a_flipped_byte_in_any_listed_file_refuses_to_load(damaged):
    for name in ("model.skops", "schema.json", SAMPLE):
        path = damaged / name
        original = path.read_bytes()
        flipped = bytearray(original)
        flipped[len(flipped) // 2] ^= 0x01
        path.write_bytes(bytes(flipped))
        with pytest.raises(ChecksumError, match=f"checksum error in package .*{re.escape(name)} \\(sha256"):
            mnb.load_model(damaged)
        path.write_bytes(original)
    mnb.load_model(damaged)
    (damaged / "requirements.txt").write_text("scikit-learn==0.1\nnot-a-real-dist==1.0\n")
    assert version_mismatches(damaged) == [
        f"scikit-learn==0.1 is pinned, {_installed('scikit-learn')} is installed",
        "not-a-real-dist==1.0 is pinned, nothing is installed",
    ]
    (damaged / "metrics.json").unlink()
    with pytest.raises(ChecksumError, match=r"metrics.json \(missing\)"):
        verify(damaged)
    result = CliRunner().invoke(main, ["predict", str(damaged), str(damaged.parent / "none.csv")])
    assert result.exit_code == EXIT_NO_DATA


def test_a_model_with_a_type_outside_the_allow_list_is_refused_by_name(damaged, tmp_path, monkeypatch):
    """The manifest is not a signature: a package whose model.skops was replaced and re-hashed must
    still not load a type mlops-nb's code does not trust."""
    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    (tmp_path / "evil_transformers.py").write_text(textwrap.dedent("""
        from sklearn.base import BaseEstimator, TransformerMixin

        class Doubler(TransformerMixin, BaseEstimator):
            def fit(self, X, y=None):
                return self

            def transform(self, X):
                return X * 2
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    from evil_transformers import Doubler

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = make_pipeline(Doubler(), LogisticRegression()).fit(frame, [0, 1, 0, 1])
    (damaged / "model.skops").write_bytes(sio.dumps(model))
    reseal(damaged, ["model.skops"])
    del sys.modules["evil_transformers"]
    with pytest.raises(UntrustedTypes, match=r"outside mlops-nb's allow-list: evil_transformers\.Doubler"):
        mnb.load_model(damaged)
    assert "evil_transformers" not in sys.modules  # refused before anything was imported
    assert mnb.load_model(damaged, extra_trusted=["evil_transformers.Doubler"]).predict(frame).tolist() == [0, 1, 0, 1]


def test_retrain_script_is_plain_python_that_reproduces_the_notebooks_frames(deployed):
    pkg = deployed["package"]
    script = (pkg / "current" / "retrain.py").read_text()
    compile(script, "retrain.py", "exec")
    assert not [line for line in script.splitlines() if line.lstrip().startswith(("%", "!"))]
    assert "get_ipython" not in script and "df.head()" not in script
    for function in ("def load_data(ns):", "def build_features(ns):", "def select_features(ns):",
                     "def notebook_data():", "def prepare(frames):"):
        assert function in script
    assert "import pandas as pd" in script  # from the unstaged cell the data step relied on
    assert "mlops_nb.deploy.runtime.main(__file__, prepare=prepare, notebook_data=notebook_data)" in script

    # In a fresh process, on the same data file: the frames the notebook's stages recorded.
    result = python("""
        import json
        from mlops_nb.capture import fingerprint
        from mlops_nb.deploy.schema import bind, read_schema
        from mlops_nb.deploy.script.load import load_script
        from mlops_nb.deploy.sources import read_table

        script = load_script("deploy/cancer")
        frames = bind(read_table("data.csv"), read_schema("deploy/cancer"))
        before = fingerprint(frames["df"])
        X, y = script.prepare(frames)
        again = script.notebook_data()
        print(json.dumps({"df": before, "X": fingerprint(X), "y": fingerprint(y), "again": fingerprint(again["df"])}))
    """, deployed["folder"])
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    captures = {(c["stage"], c["name"]): c["fingerprint"] for c in open_store(deployed["store"]).captures(1)}
    assert got["df"] == got["again"] == captures[("data", "df")]
    assert got["X"] == captures[("selection", "X")]
    assert got["y"] == captures[("features", "y")]
    assert not (pkg / "current" / "__pycache__").exists()


def test_retrain_script_runs_its_steps_under_crons_bare_environment(deployed):
    pkg = deployed["package"]
    lines = [line for line in (pkg / "current" / "crontab.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    assert " ".join(fields[:5]) == SCHEDULE and croniter.is_valid(SCHEDULE)
    command = fields[5]
    log = pkg.parent / "cancer-retrain.log"
    assert command == (f"cd {pkg} && MLOPS_NB_STORE={deployed['store']} {sys.executable} -P -m mlops_nb retrain {pkg} "
                       f"--data {deployed['folder'] / 'data.csv'} >> {log} 2>&1")
    # Cron's bare environment; PYTHONPATH only when the tests run a checkout other than the installed one.
    bare = {"PATH": "/usr/bin:/bin", **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    done = subprocess.run(["sh", "-c", command.replace("\\%", "%")], env=bare, timeout=300)
    assert done.returncode in (EXIT_PROMOTED, EXIT_KEPT)
    text = log.read_text()
    assert "files verified" in text and "read 569 rows" in text and "X 569 rows x 8 columns" in text
    assert f"exit {done.returncode} (" in text.splitlines()[-1]


def _installed(dist: str) -> str:
    from importlib import metadata

    return metadata.version(dist)


def test_scheduler_files_carry_the_schedule_and_one_guarded_task(deployed):
    pkg = deployed["package"]
    job = yaml.safe_load((pkg / "current" / "cronjob.yaml").read_text())
    assert job["kind"] == "CronJob" and job["apiVersion"] == "batch/v1"
    assert job["spec"]["schedule"] == SCHEDULE and job["spec"]["concurrencyPolicy"] == "Forbid"
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:6] == ["python", "-P", "-m", "mlops_nb", "retrain", str(pkg)]
    assert container["workingDir"] == str(pkg)
    assert {"name": "MLOPS_NB_STORE", "value": str(deployed["store"])} in container["env"]

    tree = ast.parse((pkg / "current" / "airflow_dag.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    dag = next(c for c in calls if c.func.id == "DAG")
    dag_args = {k.arg: ast.literal_eval(k.value) for k in dag.keywords if k.arg != "start_date"}
    assert dag_args["schedule"] == SCHEDULE and dag_args["max_active_runs"] == 1 and dag_args["catchup"] is False
    tasks = [c for c in calls if c.func.id == "BashOperator"]
    assert len(tasks) == 1
    task = {k.arg: ast.literal_eval(k.value) for k in tasks[0].keywords}
    assert task["skip_on_exit_code"] == 99 and task["task_id"] == "retrain"
    assert task["bash_command"].startswith(f"cd {pkg} && MLOPS_NB_STORE=")
    assert f"-P -m mlops_nb retrain {pkg} --data" in task["bash_command"]


def test_predict_checks_the_input_against_the_schema(deployed, tmp_path):
    pkg, folder = deployed["package"], deployed["folder"]
    runner = CliRunner()
    out = tmp_path / "predictions.csv"
    result = runner.invoke(main, ["predict", str(pkg), str(folder / "rows.csv"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    import pandas as pd

    predictions = pd.read_csv(out)
    expected = json.loads((folder / "expected.json").read_text())
    assert list(predictions.columns) == ["prediction", "probability_0", "probability_1"]
    assert predictions["probability_1"].round(12).tolist() == [round(p[1], 12) for p in expected]

    rows = pd.read_csv(folder / "rows.csv")
    column = rows.columns[2]
    rows.drop(columns=[column]).to_csv(tmp_path / "missing.csv", index=False)
    result = runner.invoke(main, ["predict", str(pkg), str(tmp_path / "missing.csv")])
    assert result.exit_code == 65
    assert f"column '{column}' is missing" in result.output

    rows.assign(**{column: "abc"}).to_csv(tmp_path / "text.csv", index=False)
    result = runner.invoke(main, ["predict", str(pkg), str(tmp_path / "text.csv")])
    assert result.exit_code == 65
    assert f"column '{column}' has dtype" in result.output and "the model expects float64 (numeric)" in result.output

    rows.assign(extra=1).to_csv(tmp_path / "extra.csv", index=False)  # extra columns are ignored
    assert runner.invoke(main, ["predict", str(pkg), str(tmp_path / "extra.csv")]).exit_code == 0


def test_schema_reference_and_pipeline_describe_the_training_data(deployed):
    import numpy as np
    import pandas as pd
    from sklearn.base import clone

    pkg = deployed["package"]
    schema = read_schema(pkg)
    data = pd.read_csv(deployed["folder"] / "data.csv")
    assert schema["target"] == "target"
    assert schema["data"]["binding"] == {"mode": "frame", "frame": "df"}
    assert [c["name"] for c in schema["data"]["columns"]] == list(data.columns)
    assert schema["data"]["columns"][-1] == {"name": "target", "dtype": "int64", "kind": "numeric", "nullable": False}
    model = mnb.load_model(pkg)
    assert [c["name"] for c in schema["input"]["columns"]] == list(model.feature_names_in_)
    assert schema["input"]["name"] == "X" and schema["output"] == {"name": "y", "target": "target", "classes": [0, 1]}

    current = package_dir(pkg)
    profile = json.loads((current / "reference/profile.json").read_text())
    radius = profile["columns"]["mean radius"]
    assert profile["n_rows"] == 569 and radius["n"] == 569 and radius["missing"] == 0
    assert radius["edges"] == sorted(set(np.quantile(data["mean radius"], np.linspace(0, 1, 11),
                                                     method="lower").tolist()))
    assert radius["mean"] == pytest.approx(data["mean radius"].mean())
    assert radius["std"] == pytest.approx(data["mean radius"].std())
    scores = profile["scores"]
    assert scores["kind"] == "numeric" and scores["score"] == "probability of class 1" and scores["n"] == 569
    # the profile is the drift module's own: fresh data of the same distribution does not drift
    from mlops_nb import drift

    sample = pd.read_parquet(current / SAMPLE) if PARQUET else pd.read_csv(current / SAMPLE)
    assert not drift.dataset_drift(profile, data, sample=sample).drifted
    assert drift.prediction_drift(scores, model.predict_proba(data[list(model.feature_names_in_)])[:, 1]
                                  ).verdict == "ok"
    pd.testing.assert_frame_equal(sample, data)  # fewer than 10,000 rows: all of them
    example = pd.read_json(current / "input_example.json", orient="split")
    # raw rows, as the data stage produced them without the target: what predict and serve take
    assert list(example.columns) == [c["name"] for c in schema["raw"]["columns"]] and len(example) == 3
    assert list(example.columns) == [c for c in data.columns if c != "target"]

    spec = json.loads((current / "pipeline.json").read_text())
    assert spec["rebuildable"] and spec["class"] == "sklearn.pipeline.Pipeline"
    rebuilt = rebuild_estimator(spec)
    assert pipeline_spec(rebuilt) == {"class": spec["class"], "params": spec["params"]}
    assert repr(rebuilt) == repr(clone(model))
    X, y = data[list(model.feature_names_in_)], data["target"]
    assert (rebuilt.fit(X, y).predict(X) == clone(model).fit(X, y).predict(X)).all()


# -- refusals and overrides (an in-process shell: milliseconds, not a kernel) ---------------------------


def test_a_model_that_failed_its_gate_is_refused_until_forced(shell, tmp_path, capsys):
    run = shell.lifecycle(threshold=0.999)
    shell.run("%mlops register clf --name churn --force 'the demo needs a package'")
    with pytest.raises(UsageError) as refused:
        shell.run("%mlops export churn --to deploy")
    message = str(refused.value)
    assert "export of churn version 1 (challenger) (run 1) refused" in message
    assert "gate failed: requirement f1 >= 0.999 got 0." in message
    assert '--force "REASON"' in message and "the reason is recorded" in message
    assert not (tmp_path / "deploy").exists()

    shell.run('%mlops export churn --to deploy --force "approved for the demo by Ana"')
    assert "forced (approved for the demo by Ana): gate failed: requirement" in capsys.readouterr().out
    manifest = verify(tmp_path / "deploy")
    assert manifest["forced"] == "approved for the demo by Ana"
    assert manifest["overridden"][0].startswith("gate failed: requirement")
    summary = next(c for c in open_store(shell.store).captures(run.id) if c["kind"] == "deployment")["summary"]
    assert summary["forced"] == "approved for the demo by Ana" and summary["overridden"] == manifest["overridden"]


def test_never_validated_stale_and_no_data_stage_are_refused(shell, tmp_path):
    shell.run(f"%mlops start churn --store {shell.store}")
    shell.run("%mlops require f1 >= 0.5 --target churned")
    for cell in (DATA, FEATURES, MODEL.format(C=1.0)):
        shell.run(cell)
    mnb.register("clf", "churn", force="registered before validation, to test export")
    with pytest.raises(ExportError, match="no gate: no validation stage measured f1 after this model"):
        mnb.export("churn", to=tmp_path / "a")

    shell.run(VALIDATION)
    shell.run(FEATURES)  # the features ran again after the model: the model is stale
    with pytest.raises(ExportError, match="stale: model is stale: features ran again after it"):
        mnb.export("churn", version=1, to=tmp_path / "a")
    assert not (tmp_path / "a").exists()

    shell.run("%mlops start other")
    shell.run("%mlops require f1 >= 0.5 --target churned")
    shell.run(DATA.replace("%%stage data", "# no stage"))
    for cell in (FEATURES, MODEL.format(C=1.0), VALIDATION):
        shell.run(cell)
    version = mnb.register("clf", "other")
    with pytest.raises(ExportError, match="no data stage: retraining needs to know which frames hold the data"):
        mnb.export("other", to=tmp_path / "b")
    result = mnb.export("other", to=tmp_path / "b", force="one-off export for a demo")
    assert result.overridden == [r for r in result.overridden if r.startswith("no data stage")]
    assert read_schema(tmp_path / "b")["data"] is None
    assert mnb.load_model(tmp_path / "b").predict(shell.shell.user_ns["X"]).shape == (200,)
    assert version.run_id != 1


def test_export_judges_the_versions_own_attempt_not_the_runs_latest_state(shell, tmp_path):
    shell.lifecycle()
    mnb.register("clf", "churn")  # version 1, validated
    for cell in (FEATURES, MODEL.format(C=0.5), VALIDATION):  # everything again: the run is fine now...
        shell.run(cell)
    with pytest.raises(ExportError, match="stale: model is stale: features ran again after it"):
        mnb.export("churn", version=1, to=tmp_path / "old")  # ...but version 1 was fitted on the old features
    assert not (tmp_path / "old").exists()
    mnb.register("clf", "churn")  # version 2, from the new attempt: a challenger
    assert mnb.export("churn", version=2, to=tmp_path / "new").version == 2


def test_export_of_a_non_champion_into_a_package_needs_make_champion(shell, tmp_path, capsys):
    shell.lifecycle()
    shell.run("%mlops register clf --name churn")
    shell.run(MODEL.format(C=0.5))
    shell.run(VALIDATION)
    shell.run("%mlops register clf --name churn")
    shell.run("%mlops export churn --to deploy")  # the champion, version 1
    store = open_store(shell.store)
    with pytest.raises(UsageError) as refused:
        shell.run("%mlops export churn --version 2 --to deploy")
    message = str(refused.value)
    assert "whose champion is version 1" in message and "--make-champion" in message and "\n" not in message
    assert read_manifest(tmp_path / "deploy")["model"]["version"] == 1 and store.aliases("churn")["champion"] == 1

    shell.run("%mlops export churn --version 2 --to deploy --make-champion")
    assert "exported churn version 2 (champion)" in capsys.readouterr().out
    assert read_manifest(tmp_path / "deploy")["model"]["version"] == 2
    assert store.aliases("churn") == {"champion": 2, "previous": 1}
    moved = registry_history(store)[-3:]
    assert [(h["alias"], h["version"]) for h in moved] == [("champion", 2), ("previous", 1), ("challenger", None)]
    assert moved[0]["by"].startswith("%mlops export churn") and "exported to" in moved[0]["reason"]


def registry_history(store):
    return store.alias_history("churn")


def test_a_lambda_model_is_refused_as_unloadable(shell, tmp_path):
    shell.lifecycle()
    shell.run("%%stage model\nfrom sklearn.pipeline import make_pipeline\n"
              "from sklearn.preprocessing import FunctionTransformer\n"
              "clf = make_pipeline(FunctionTransformer(lambda v: v), LogisticRegression()).fit(X, y)")
    shell.run(VALIDATION)
    mnb.register("clf", "churn")
    with pytest.raises(ExportError, match=r"unloadable: the model uses a lambda \(FunctionTransformer"):
        mnb.export("churn", to=tmp_path / "pkg")


def test_ambiguous_frames_ask_for_X_and_y(shell, tmp_path):
    shell.lifecycle()
    shell.run("%%stage features\nX = df[['age', 'income']]\nX_copy = X.copy()\ny = df['churned']")
    shell.run(MODEL.format(C=1.0))
    shell.run(VALIDATION)
    mnb.register("clf", "churn")
    with pytest.raises(ExportError, match=r"several frames fit \(X, X_copy\); export with --X NAME --y NAME"):
        mnb.export("churn", to=tmp_path / "pkg")
    result = mnb.export("churn", to=tmp_path / "pkg", X="X_copy", y="y")
    assert "return ns['X_copy'], ns['y']" in (result.path / "current" / "retrain.py").read_text()

    shell.run("%%stage data\nimport pandas as pd\ntrain = df.copy()\nholdout = df.copy()")
    for cell in (FEATURES, MODEL.format(C=1.0), VALIDATION):
        shell.run(cell)
    assert mnb.register("clf", "churn").aliases == ["challenger"]
    with pytest.raises(ExportError, match="cannot tell which frame fresh data replaces: the data stage produced "
                                          r"train \(dataframe\), holdout \(dataframe\)"):
        mnb.export("churn", version="challenger", to=tmp_path / "other")


def test_a_data_stage_split_into_X_and_y_binds_fresh_data_by_columns(shell, tmp_path):
    shell.run(f"%mlops start split --store {shell.store}")
    shell.run("%mlops require f1 >= 0.5 --target target")
    shell.run("%%stage data\nfrom sklearn.datasets import load_breast_cancer\n"
              "X, y = load_breast_cancer(return_X_y=True, as_frame=True)\nX = X.iloc[:, :5]")
    shell.run("%%stage model\nfrom sklearn.linear_model import LogisticRegression\n"
              "clf = LogisticRegression(max_iter=2000).fit(X, y)")
    shell.run(VALIDATION)
    mnb.register("clf", "split")
    result = mnb.export("split", to=tmp_path / "pkg")
    schema = read_schema(result.path)
    assert schema["data"]["binding"] == {"mode": "split", "X": "X", "y": "y"}
    table = shell.shell.user_ns["X"].assign(target=shell.shell.user_ns["y"])
    frames = bind(table, schema)
    assert list(frames) == ["X", "y"] and frames["y"].name == "target"
    script = load_script(result.path)
    X, y = script.prepare(frames)
    assert X.equals(shell.shell.user_ns["X"]) and y.equals(shell.shell.user_ns["y"])


def test_export_is_atomic_and_never_clobbers_a_foreign_folder(shell, tmp_path, monkeypatch):
    shell.lifecycle()
    mnb.register("clf", "churn")
    first = mnb.export("churn", to=tmp_path / "pkg")
    before = (package_dir(first.path) / "MANIFEST.json").read_bytes()

    def crash(root, version):
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "switch_current", crash)
    with pytest.raises(OSError, match="disk full"):
        mnb.export("churn", to=tmp_path / "pkg", schedule="0 4 * * *")
    assert (package_dir(first.path) / "MANIFEST.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".pkg")) == [".pkg.lock"]
    assert [p.name for p in (first.path / "versions").iterdir()] == ["v0001"]  # the failed version is gone
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)

    second = mnb.export("churn", to=tmp_path / "pkg", schedule="0 4 * * *")  # the next version, now current
    assert read_manifest(second.path)["schedule"] == "0 4 * * *"
    assert os.readlink(second.path / "current") == "versions/v0002"
    verify(second.path)

    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not a package to replace"):
        mnb.export("churn", to=foreign)
    with pytest.raises(ExportError, match="is not a cron schedule"):
        mnb.export("churn", to=tmp_path / "x", schedule="every monday")
    with pytest.raises(ExportError, match="needs a reason"):
        mnb.export("churn", to=tmp_path / "x", force=" ")
    assert (foreign / "todo.txt").read_text() == "keep me" and not (tmp_path / "x").exists()


def test_cli_export_and_reseal(shell, tmp_path):
    shell.lifecycle()
    mnb.register("clf", "churn")
    runner = CliRunner()
    target = tmp_path / "cli-pkg"
    result = runner.invoke(main, ["--store", str(shell.store), "export", "churn", "--to", str(target),
                                  "--schedule", "15 1 * * *", "--data", "incoming/*.csv"])
    assert result.exit_code == 0, result.output
    assert f"exported churn version 1 (champion) of run 1 to {target}" in result.output
    assert "nothing matches" in result.output and "incoming/*.csv yet" in result.output
    crontab = (target / "current" / "crontab.txt").read_text()
    assert f"--data '{tmp_path}/incoming/*.csv'" in crontab

    with (target / "current" / "retrain.py").open("a") as f:
        f.write("# tuned by hand\n")
    with pytest.raises(ChecksumError, match="retrain.py"):
        verify(target)
    result = runner.invoke(main, ["reseal", str(target)])
    assert result.exit_code == 0 and "re-sealed retrain.py" in result.output
    assert verify(target)["resealed"]["files"] == ["retrain.py"]

    result = runner.invoke(main, ["--store", str(shell.store), "export", "churn", "--to", str(target),
                                  "--schedule", "61 * * * *"])
    assert result.exit_code == 78 and "is not a cron schedule" in result.output


# -- units ------------------------------------------------------------------------------------------


def _models():
    import numpy as np
    from sklearn import (
        calibration,
        compose,
        ensemble,
        feature_selection,
        linear_model,
        neural_network,
        pipeline,
        preprocessing,
        tree,
    )

    return {
        "forest": ensemble.RandomForestClassifier(n_estimators=3, random_state=0),
        "tree": tree.DecisionTreeClassifier(max_depth=3),
        "hist_gradient_boosting": ensemble.HistGradientBoostingClassifier(max_iter=5),
        "select_k_best": pipeline.make_pipeline(feature_selection.SelectKBest(feature_selection.f_classif, k=3),
                                                linear_model.LogisticRegression()),
        "chi2": pipeline.make_pipeline(preprocessing.MinMaxScaler(),
                                       feature_selection.SelectKBest(feature_selection.chi2, k=3),
                                       linear_model.LogisticRegression()),
        "mlp": neural_network.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5),
        "voting": ensemble.VotingClassifier([("lr", linear_model.LogisticRegression()),
                                             ("dt", tree.DecisionTreeClassifier())], voting="soft"),
        "column_selector": pipeline.make_pipeline(
            compose.ColumnTransformer([("num", preprocessing.StandardScaler(),
                                        compose.make_column_selector(dtype_include=np.number))]),
            linear_model.LogisticRegression()),
        "calibrated": calibration.CalibratedClassifierCV(linear_model.LogisticRegression(), cv=3),
        "log1p": pipeline.make_pipeline(preprocessing.FunctionTransformer(np.log1p),
                                        linear_model.LogisticRegression()),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_common_models_load_with_the_allow_list_and_rebuild_from_their_spec(name):
    import warnings

    import skops.io as sio
    from sklearn.base import clone
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = _models()[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    data = sio.dumps(model)
    assert untrusted_types(data) == []
    sio.loads(data, trusted=list(TRUSTED_TYPES))
    spec = json.loads(json.dumps(pipeline_spec(model)))
    rebuilt = rebuild_estimator(spec)
    assert type(rebuilt) is type(clone(model))
    assert json.loads(json.dumps(pipeline_spec(rebuilt))) == spec


def test_rebuild_refuses_modules_outside_its_list():
    spec = {"class": "os.system", "params": {}}
    with pytest.raises(PackageError, match="outside the modules mlops-nb rebuilds from"):
        rebuild_estimator(spec)
    lam = _encode(lambda v: v)
    assert "unrebuildable" in lam
    with pytest.raises(PackageError, match="cannot rebuild"):
        rebuild_estimator({"class": "sklearn.preprocessing.FunctionTransformer", "params": {"func": lam}})


def test_check_frame_kinds_nulls_and_categories():
    import pandas as pd

    columns = [
        {"name": "n", "dtype": "float64", "kind": "numeric", "nullable": False},
        {"name": "c", "dtype": "str", "kind": "categorical", "nullable": True, "categories": ["a", "b"]},
        {"name": "d", "dtype": "datetime64[ns]", "kind": "datetime", "nullable": False},
    ]
    good = pd.DataFrame({"n": [1, 2], "c": ["a", None], "d": ["2026-01-01", "2026-01-02"], "z": [0, 0]})
    problems, notes = check_frame(good, columns)
    assert problems == [] and notes == ["ignoring 1 column not in the schema: z"]
    assert pd.api.types.is_datetime64_any_dtype(conform(good, columns)["d"])
    bad = pd.DataFrame({"n": [1.0, None], "c": [1, 2], "d": ["2026-01-01", "2026-01-03"]})
    problems, _ = check_frame(bad, columns)
    assert problems == [
        "column 'n' has 1 missing value; the training data had none",
        "column 'c' has dtype int64 (numeric); the model expects str (categorical)",
    ]
    with pytest.raises(SchemaMismatch, match="column 'd' is missing"):
        conform(good.drop(columns=["d"]), columns)
    _, notes = check_frame(pd.DataFrame({"n": [1.0], "c": ["zzz"], "d": ["2026-01-01"]}), columns)
    assert notes == ["column 'c' has 1 value never seen in training: zzz"]


def test_read_table_formats_globs_and_missing_data(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    frame.to_csv(tmp_path / "part1.csv", index=False)
    frame.to_csv(tmp_path / "part2.csv", index=False)
    if PARQUET:
        frame.to_parquet(tmp_path / "f.parquet")
    frame.to_json(tmp_path / "f.json", orient="records")
    frame.to_json(tmp_path / "f.jsonl", orient="records", lines=True)
    assert len(read_table(tmp_path / "part*.csv")) == 4
    for name in (*(["f.parquet"] if PARQUET else []), "f.json", "f.jsonl"):
        assert read_table(tmp_path / name)["a"].tolist() == [1, 2]
    with pytest.raises(DataNotFound, match="no file matches"):
        read_table(tmp_path / "nothing-*.csv")
    (tmp_path / "empty.csv").write_text("a,b\n")
    with pytest.raises(DataNotFound, match="holds no rows"):
        read_table(tmp_path / "empty.csv")


def test_clean_cell_strips_magics_shell_and_echoes_but_keeps_code_and_strings():
    source = textwrap.dedent('''
        %%stage features
        %matplotlib inline
        files = !ls
        !echo hi
        query = """
        %s is not a magic inside a string
        """
        df["x"] = 1  # keep the comment
        df.drop(columns=["y"], inplace=True)
        display(df)
        df.head()
        df
    ''')
    code, notes = clean_cell(source)
    assert code == textwrap.dedent('''\
        query = """
        %s is not a magic inside a string
        """
        df["x"] = 1  # keep the comment
        df.drop(columns=["y"], inplace=True)
    ''')
    assert len(notes) == 3
    assert clean_cell("%%time\nx = 1\n")[0] == "x = 1\n"
    assert clean_cell("%%bash\necho hi\n") == ("", ["dropped a %%bash cell, which is not Python"])
    indented = indent('q = """\nline\n"""\nx = 1')
    assert indented == '    q = """\nline\n"""\n    x = 1'


def test_clean_cell_drops_ipython_forms_but_keeps_continuations_blocks_and_strings():
    source = textwrap.dedent('''
        %%stage data
        ratio = (10
        % 3)
        total = 7 \\
        % 4
        for i in range(2):
            %time fit(i)
        result = %timeit -o fit(0)
        df?
        ??df.head
        %config Completer.use_jedi=False \\
            IPCompleter.greedy=True
        note = "100% sure!"  # why?
        text = """
        !not a shell line
        %not a magic
        """
    ''')
    code, notes = clean_cell(source)
    assert code == textwrap.dedent('''\
        ratio = (10
        % 3)
        total = 7 \\
        % 4
        for i in range(2):
            pass
        note = "100% sure!"  # why?
        text = """
        !not a shell line
        %not a magic
        """
    ''')
    compile(code, "cell", "exec")
    assert notes == [f"dropped notebook-only line: {line}" for line in (
        "%time fit(i)", "result = %timeit -o fit(0)", "df?", "??df.head", "%config Completer.use_jedi=False \\")]
    assert clean_cell("%%capture out\nprint(1)\n") == ("print(1)\n", [])
    assert clean_cell("%%writefile x.py\nx = 1\n") == ("", ["dropped a %%writefile cell, which is not Python"])
    assert clean_cell("  \n%%stage features\n\nx = 1\nx\n") == ("x = 1\n", [])
    with pytest.raises(ExportError, match=r"does not parse as Python \(.*line 1\)"):
        clean_cell("x = = 1\n")


def test_export_runs_the_replayed_cells_in_a_subprocess_and_leaves_the_kernel_alone(shell, tmp_path, capsys):
    data = DATA.replace("import numpy as np\n", "import os\nimport numpy as np\n") + (
        'print("REPLAYED-DATA-CELL")\n'
        'with open("pids.txt", "a") as f:\n'
        '    f.write(f"{os.getpid()} {os.getcwd()}\\n")\n')
    shell.run(f"%mlops start churn --store {shell.store}")
    shell.run("%mlops require f1 >= 0.5 --target churned")
    for cell in (data, FEATURES.replace("y = ", 'print("REPLAYED-FEATURES")\ny = '), MODEL.format(C=1.0), VALIDATION):
        shell.run(cell)
    mnb.register("clf", "churn")
    capsys.readouterr()
    before = os.getcwd()
    result = mnb.export("churn", to=tmp_path / "pkg")
    assert os.getcwd() == before
    printed = capsys.readouterr()
    assert "REPLAYED" not in printed.out + printed.err
    (kernel_pid, kernel_cwd), (replay_pid, replay_cwd) = [
        line.split(" ", 1) for line in (tmp_path / "pids.txt").read_text().splitlines()]
    assert int(kernel_pid) == os.getpid() and int(replay_pid) != os.getpid()  # the replay ran in another process
    assert kernel_cwd == replay_cwd == str(tmp_path)  # ... from the notebook's folder
    assert result.warnings == [] and result.path == tmp_path / "pkg"


@pytest.mark.parametrize("server", ["warm", "0"])
def test_a_data_step_that_fails_outside_the_notebook_is_one_line_naming_the_fix(shell, tmp_path, monkeypatch, server):
    import pandas as pd

    if server == "0":  # no warm server: a new interpreter replays (as where there is no fork)
        monkeypatch.setenv("MLOPS_NB_REPLAY_SERVER", "0")

    pd.DataFrame({"age": range(40), "income": range(40), "churned": [0, 1] * 20}).to_csv("train.csv", index=False)
    shell.run(f"%mlops start churn --store {shell.store}")
    shell.run("%mlops require f1 >= 0.5 --target churned")
    shell.run("%%stage data\nimport pandas as pd\ndf = pd.read_csv('train.csv')")
    for cell in (FEATURES, MODEL.format(C=1.0), VALIDATION):
        shell.run(cell)
    mnb.register("clf", "churn")
    os.remove("train.csv")
    with pytest.raises(ExportError) as raised:
        mnb.export("churn", to=tmp_path / "pkg")
    message = str(raised.value)
    assert message.startswith("retrain.py could not run the notebook's data step outside the notebook "
                              "(FileNotFoundError: ")
    assert "make the data cell self-contained" in message and "\n" not in message and "Traceback" not in message
    assert not (tmp_path / "pkg").exists()


def test_retrain_py_and_mlops_nb_retrain_are_one_command(deployed):
    script = deployed["package"] / "current" / "retrain.py"
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    cli = CliRunner().invoke(main, ["retrain", "--help"])
    assert cli.exit_code == 0

    def options(text: str) -> list[str]:
        return re.findall(r"^ {2}(-{1,2}[\w-]+(?:, --[\w-]+)?)", text.split("Options:")[1], re.M)

    assert options(cli.output) == ["--data", "--query", "--force", "--public-key", "-h, --help"]
    words = [" ".join(text.split("Options:")[1].split()) for text in (done.stdout, cli.output)]
    assert words[0] == words[1]  # word for word (the wrapping follows the terminal's width)
    assert "Usage: retrain.py [OPTIONS]" in done.stdout and "81 drift needs a person" in done.stdout
    bad = subprocess.run([sys.executable, str(script), "--bogus"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == CliRunner().invoke(main, ["retrain", str(deployed["package"]), "--bogus"]).exit_code == 78
    assert "No such option '--bogus'" in bad.stderr
