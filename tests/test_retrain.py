"""Scheduled retraining, driven like an operator: a notebook run in a real kernel trains a model on a
small noisy sample and exports it; then the exported retrain.py (and `mlops-nb retrain`) run as
separate processes on fresh data, and the package, the registry and the store are inspected.

The tests of this module share one package and run in order, each starting from the state the
previous one left (as a real package lives through its retraining runs).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from notebook_helpers import notebook, run_notebook

import mlops_nb as mnb
from mlops_nb.cli import main
from mlops_nb.deploy.exits import EXIT_KEPT
from mlops_nb.deploy.layout import package_dir, versions
from mlops_nb.deploy.metrics import evaluate, metric_key
from mlops_nb.deploy.retrain.progress import STEPS
from mlops_nb.deploy.settings import DEFAULT_SETTINGS, read_settings
from mlops_nb.deploy.sources import describe_source, read_source
from mlops_nb.deploy.verify import read_manifest, verify
from mlops_nb.errors import DataNotFound, PackageError
from mlops_nb.store import close_all, open_store

FEATURES = [f"f{i}" for i in range(8)]
CELLS = [
    "%load_ext mlops_nb\n%mlops start churn\n%mlops require f1 >= 0.7 --target label",
    "import pandas as pd",
    "%%stage data\ndf = pd.read_csv('data.csv')",
    "%%stage features\nX = df.drop(columns=['label'])\ny = df['label']",
    "%%stage model\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\nfrom sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import StandardScaler\n\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)\n"
    "clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)",
    "%%stage validation\nfrom sklearn.metrics import f1_score\n\nf1 = f1_score(y_test, clf.predict(X_test))",
    "%mlops register clf --name churn",
    "%mlops export churn --to deploy/churn --data incoming/fresh.csv",
]

#: Runs a job with pauses where a crash matters (the product has no such hook).
FAULTS = Path(__file__).with_name("faults.py")


def write_data(folder: Path) -> dict[str, Path]:
    """The notebook's training data (120 rows, a quarter of the labels flipped) and fresh batches:
    ``better`` (3,000 clean rows of the same distribution), ``shifted`` (a new world: every feature
    moved by three units and the labels' meaning reversed), ``random`` (labels that mean nothing)."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=8000, n_features=8, n_informative=6, n_redundant=0, random_state=0)
    df = pd.DataFrame(X, columns=FEATURES).round(6)
    df["label"] = y
    noisy = df.iloc[:120].copy()
    flip = np.random.default_rng(8).random(len(noisy)) < 0.25
    noisy.loc[flip, "label"] = 1 - noisy.loc[flip, "label"]
    paths = {name: folder / f"{name}.csv" for name in ("data", "better", "shifted", "random")}
    noisy.to_csv(paths["data"], index=False)
    df.iloc[1000:4000].to_csv(paths["better"], index=False)
    shifted = df.iloc[4000:6000].copy()
    shifted[FEATURES] += 3.0
    shifted["label"] = 1 - shifted["label"]
    shifted.to_csv(paths["shifted"], index=False)
    noise = df.iloc[6000:8000].copy()
    noise["label"] = np.random.default_rng(3).integers(0, 2, len(noise))
    noise.to_csv(paths["random"], index=False)
    return paths


def build_package(folder: Path) -> dict:
    """Write the data into ``folder``, run the notebook above there in a real kernel (it exports
    ``deploy/churn``), and return the paths: ``folder``, ``store``, ``root`` and the data files."""
    paths = write_data(folder)
    store = folder / "mlops.db"
    run_notebook(notebook(CELLS), folder, store=store, timeout=300)
    return {"folder": folder, "store": store, "root": folder / "deploy" / "churn", **paths}


@pytest.fixture(scope="module")
def pkg(tmp_path_factory):
    yield build_package(tmp_path_factory.mktemp("retrain"))
    close_all()


def env_for(pkg: dict, **extra: str) -> dict[str, str]:
    return {**os.environ, "MLOPS_NB_STORE": str(pkg["store"]), **extra}


def job(pkg: dict, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the exported script as cron does (from the package root), wait, return what happened."""
    return subprocess.run([sys.executable, "current/retrain.py", *args], cwd=pkg["root"], capture_output=True,
                          text=True, env=env_for(pkg, **env), timeout=300)


def cli(pkg: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "mlops-nb"), *args], cwd=pkg["folder"],
                          capture_output=True, text=True, env=env_for(pkg), timeout=300)


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stdout.strip().splitlines()[-1]


def retraining_runs(pkg: dict) -> list[dict]:
    store = open_store(pkg["store"])
    return store.rows("SELECT * FROM runs WHERE kind = 'retraining' ORDER BY id")


def latest_run(pkg: dict) -> dict:
    store = open_store(pkg["store"])
    return store.run_details(retraining_runs(pkg)[-1]["id"])


def current_name(pkg: dict) -> str:
    return os.readlink(pkg["root"] / "current")


def champion(pkg: dict) -> int:
    return open_store(pkg["store"]).aliases("churn")["champion"]


def set_settings(pkg: dict, **changes) -> None:
    settings = {**DEFAULT_SETTINGS, **changes}
    (pkg["root"] / "settings.json").write_text(json.dumps(settings))
    # settings.json is sealed with the package: an edit is accepted with `mlops-nb reseal`.
    result = CliRunner().invoke(main, ["--store", str(pkg["store"]), "reseal", str(pkg["root"])])
    assert result.exit_code == 0, result.output


# -- 1, 2: a real improvement is promoted; the same data again keeps the champion ----------------------


def test_better_data_is_promoted_and_the_run_is_recorded(pkg):
    from mlops_nb.capture import fingerprint

    assert current_name(pkg) == "versions/v0001" and champion(pkg) == 1
    result = job(pkg, "--data", str(pkg["better"]))
    assert result.returncode == 0, result.stdout + result.stderr
    steps = [line for line in result.stdout.splitlines() if "mlops-nb retrain churn: [" in line]
    assert [line.split("] ")[1].split(":")[0] for line in steps] == list(STEPS)  # one line per step
    assert "exit 0 (promoted): promoted churn version 2 (package v0002): candidate f1 0.85" in last_line(result)

    assert current_name(pkg) == "versions/v0002"
    aliases = open_store(pkg["store"]).aliases("churn")
    assert aliases["champion"] == 2 and aliases["previous"] == 1
    model = mnb.load_model(pkg["root"])  # verifies every checksum of the new version first
    [retrained] = [v for v in mnb.models("churn", store=pkg["store"]) if v.version == 2]
    assert retrained.class_path == f"{type(model).__module__}.{type(model).__qualname__}"  # what serves
    import pandas as pd

    better = pd.read_csv(pkg["better"])
    assert model.predict(better[FEATURES]).shape == (3000,)
    manifest = read_manifest(pkg["root"])
    assert manifest["model"]["version"] == 2 and manifest["package_version"] == 2
    assert manifest["run"]["id"] == 1 and manifest["retrained"]["from_model_version"] == 1

    run = latest_run(pkg)
    assert run["kind"] == "retraining" and run["parent_id"] == 1 and run["status"] == "finished"
    assert run["tags"]["decision"] == "promoted" and run["tags"]["exit_code"] == "0"
    assert run["tags"]["data_fingerprint"] == fingerprint(better)
    assert run["metrics"]["candidate_f1"] > run["metrics"]["champion_f1"] + 0.05
    assert run["metrics"]["exit_code"] == 0 and run["metrics"]["duration_s"] > 0 and run["metrics"]["rows"] == 3000
    assert {d["column_name"] for d in run["drift"]} == {*FEATURES, "label", "prediction"}
    assert run["params"]["data_source"] == str(pkg["better"]) and run["params"]["metric"] == "f1"
    # the requirement and the candidate's gate are rows, as a notebook run's are: `show` says them
    shown = CliRunner().invoke(main, ["--store", str(pkg["store"]), "show", str(run["id"])]).output
    assert "requirement: f1 >= " in shown and "gates: none" not in shown and "requirement: none" not in shown
    version = open_store(pkg["store"]).model_version("churn", 2)
    assert version["run_id"] == run["id"]  # the new model version is linked to the retraining run
    assert version["gate_passed"] == 1 and version["forced"] is None
    # the retrained champion exports without complaint, replaying the notebook run it came from
    again = mnb.export("churn", to=pkg["folder"] / "again", store=pkg["store"], workdir=pkg["folder"])
    assert (again.version, again.run_id, again.forced, again.overridden) == (2, 1, None, [])
    assert verify(again.path)["model"]["version"] == 2
    shutil.rmtree(again.path)  # `rollback churn` below finds the package by its latest export

    frame = mnb.runs("churn", store=pkg["store"])
    row = frame[frame["run_id"] == run["id"]].iloc[0]
    assert row["kind"] == "retraining" and row["tags.decision"] == "promoted"
    shown = cli(pkg, "show", str(run["id"]))
    assert "retraining run in project churn" in shown.stdout and "parent run 1" in shown.stdout
    drift_table = shown.stdout.split("\ndrift\n", 1)[1]
    assert "column" in drift_table and "prediction  prediction  psi" in drift_table


def test_the_same_data_again_keeps_the_champion_with_a_progress_bar_at_a_terminal(pkg):
    command = [str(Path(sys.executable).parent / "mlops-nb"), "retrain", str(pkg["root"]), "--data", str(pkg["better"])]
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))  # a 120-column terminal
    proc = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, cwd=pkg["folder"],
                            env=env_for(pkg))
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the job closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert proc.wait(timeout=300) == EXIT_KEPT
    text = output.decode()
    assert "/11" in text and "\r" in text  # tqdm's bar, redrawn in place
    assert "[1/11] lock:" not in text  # no step lines at a terminal
    assert "exit 99 (kept champion): champion kept: candidate f1" in text and "below the margin 0.005" in text
    assert current_name(pkg) == "versions/v0002" and champion(pkg) == 2
    assert latest_run(pkg)["tags"]["decision"] == "kept champion"


# -- 3, 4: bad data and no data -------------------------------------------------------------------------


def test_bad_data_exits_65_naming_the_column_and_promotes_nothing(pkg, tmp_path):
    import pandas as pd

    better = pd.read_csv(pkg["better"])
    better.drop(columns=["f3"]).to_csv(tmp_path / "missing.csv", index=False)
    better.assign(f5="abc").to_csv(tmp_path / "text.csv", index=False)
    result = job(pkg, "--data", str(tmp_path / "missing.csv"))
    assert result.returncode == 65
    assert "exit 65 (bad data)" in last_line(result) and "column 'f3' is missing" in last_line(result)
    result = job(pkg, "--data", str(tmp_path / "text.csv"))
    assert result.returncode == 65
    assert "column 'f5' has dtype" in last_line(result) and "the model expects float64 (numeric)" in last_line(result)
    assert current_name(pkg) == "versions/v0002" and champion(pkg) == 2
    run = latest_run(pkg)
    assert run["status"] == "failed" and "column 'f5'" in run["error"] and run["tags"]["decision"] == "bad data"


def test_missing_or_empty_data_exits_66(pkg, tmp_path):
    (tmp_path / "header-only.csv").write_text(",".join([*FEATURES, "label"]) + "\n")
    (tmp_path / "zero.csv").write_bytes(b"")
    for source, says in ((tmp_path / "nothing-*.csv", "no file matches"), (tmp_path / "header-only.csv", "no rows"),
                         (tmp_path / "zero.csv", "no rows")):
        result = job(pkg, "--data", str(source))
        assert result.returncode == 66, result.stdout + result.stderr
        assert "exit 66 (no data)" in last_line(result) and says in last_line(result)
    assert latest_run(pkg)["tags"]["decision"] == "no data"
    assert current_name(pkg) == "versions/v0002"


# -- 5: drift, per the package's settings ---------------------------------------------------------------


def test_drift_is_recorded_per_column_and_acts_as_configured(pkg):
    set_settings(pkg)  # the default: drift holds the candidate for a person
    result = job(pkg, "--data", str(pkg["shifted"]))
    assert result.returncode == 81, result.stdout + result.stderr
    assert "exit 81 (drift needs a person)" in last_line(result) and "--force" in last_line(result)
    assert "drifted columns: f0, f1, f2, f3, f4, f5, f6, f7; candidate held" in last_line(result)
    run = latest_run(pkg)
    rows = {d["column_name"]: d for d in run["drift"]}
    assert set(rows) == {*FEATURES, "label", "prediction"}
    assert all(rows[f]["verdict"] == "drift" and rows[f]["statistic"] in ("psi", "wasserstein_norm")
               for f in FEATURES)
    assert rows["label"]["verdict"] == "ok" and rows["f0"]["value"] > 0.25
    assert run["tags"]["dataset_drift"] == "true" and current_name(pkg) == "versions/v0002"

    (pkg["root"] / "settings.json").write_text('{"drift": "retrain"}')  # an older package's key: only on drift
    reseal = CliRunner().invoke(main, ["--store", str(pkg["store"]), "reseal", str(pkg["root"])])
    assert reseal.exit_code == 0, reseal.output
    result = job(pkg, "--data", str(pkg["better"]))
    assert result.returncode == 99 and "no drift found" in last_line(result)
    assert "fit" not in {line.split("] ")[1].split(":")[0] for line in result.stdout.splitlines() if "] " in line}

    set_settings(pkg, on_drift="retrain")  # drift is recorded, the job goes on: the shifted world needs a new model
    result = job(pkg, "--data", str(pkg["shifted"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "drift in 8 of 9 columns" in result.stdout and "dataset drift" in result.stdout
    run = latest_run(pkg)
    assert run["tags"]["dataset_drift"] == "true" and run["tags"]["decision"] == "promoted"
    assert current_name(pkg) == "versions/v0003" and champion(pkg) == 3
    # the reference stays the data stage's table, whatever the features cell adds to its frames
    profile = json.loads((pkg["root"] / "current" / "reference" / "profile.json").read_text())
    assert sorted(profile["columns"]) == sorted([*FEATURES, "label"])


# -- 6: below the requirement; rollback ------------------------------------------------------------------


def test_a_candidate_below_the_requirement_exits_80_and_the_champion_stays(pkg):
    before = (package_dir(pkg["root"]) / "model.skops").read_bytes()
    result = job(pkg, "--data", str(pkg["random"]), "--force")  # even forced: the requirement is the floor
    assert result.returncode == 80, result.stdout + result.stderr
    line = last_line(result)
    assert "candidate below the requirement: f1 0.3" in line and "does not meet f1 >= 0.7" in line
    assert current_name(pkg) == "versions/v0003" and champion(pkg) == 3
    assert (package_dir(pkg["root"]) / "model.skops").read_bytes() == before
    verify(pkg["root"])
    run = latest_run(pkg)
    assert run["tags"]["decision"] == "below requirement" and run["tags"]["gate"].startswith("f1 >= 0.7: failed")


def test_rollback_swaps_back_and_forth(pkg):
    runner = CliRunner()
    result = runner.invoke(main, ["--store", str(pkg["store"]), "rollback", "churn", "--reason", "checking"])
    assert result.exit_code == 0, result.output
    assert "current v0003 -> v0002 (churn version 2)" in result.output
    assert current_name(pkg) == "versions/v0002" and champion(pkg) == 2
    assert open_store(pkg["store"]).aliases("churn")["previous"] == 3
    history = open_store(pkg["store"]).alias_history("churn")[-2:]
    assert {h["by"] for h in history} == {"mlops-nb rollback"} and history[0]["reason"] == "checking"
    result = runner.invoke(main, ["--store", str(pkg["store"]), "rollback", str(pkg["root"])])
    assert result.exit_code == 0 and "current v0002 -> v0003" in result.output
    assert current_name(pkg) == "versions/v0003" and champion(pkg) == 3
    mnb.load_model(pkg["root"])


# -- 7: overlapping runs -------------------------------------------------------------------------------


def test_an_overlapping_run_exits_75_at_once(pkg):
    first = subprocess.Popen([sys.executable, str(FAULTS), "2", "current/retrain.py", "--data", str(pkg["better"]),
                              "--force"], cwd=pkg["root"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=env_for(pkg))
    try:
        for line in first.stdout:
            if "fault point: fit" in line:
                break
        started = time.monotonic()
        second = job(pkg, "--data", str(pkg["better"]))
        took = time.monotonic() - started
        assert first.poll() is None  # the first still runs
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 75, second.stdout + second.stderr
    assert took < 10  # it did not wait for the first (which pauses 2 s at each of a dozen steps)
    assert "exit 75 (locked)" in last_line(second) and "retraining (pid" in last_line(second)
    run = latest_run(pkg)
    assert run["tags"]["decision"] == "locked" and run["parent_id"] == 1
    verify(pkg["root"])


# -- 8: kill -9 at random moments ------------------------------------------------------------------------


def test_kill_9_at_random_moments_never_breaks_the_champion_or_the_store(pkg):
    seed = int(os.environ.get("MLOPS_NB_FAULT_SEED", time.time()))  # set it to replay a failure
    rng = random.Random(seed)
    delay = 0.05
    phases = ["fit", "write", "swap", "record"] * 5
    rng.shuffle(phases)
    killed_runs = []
    for phase in phases:
        proc = subprocess.Popen([sys.executable, str(FAULTS), str(delay), "current/retrain.py", "--data",
                                 str(pkg["better"]), "--force"], cwd=pkg["root"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env_for(pkg))
        points = {"fit": ["fit"], "write": [f"write {n}" for n in ("model.skops", "metrics.json", "schema.json",
                                                                 "reference/profile.json", "retrain.py")],
                  "swap": ["swap", "swapped"],
                  "record": ["record register", "record manifest", "record promote", "record end"]}[phase]
        point = rng.choice(points)
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.strip() == f"mlops-nb fault point: {point}":
                time.sleep(rng.uniform(0, delay * 1.5))  # sometimes just past the pause: the next step began
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, f"never reached {point}:\n{''.join(seen)}"
        killed_runs.append(point)
        print(f"seed {seed}: killed at {point}")

        verify(pkg["root"])  # the champion verifies and loads
        assert mnb.load_model(pkg["root"]).predict_proba(_rows(pkg)).shape == (5, 2)
        with contextlib.closing(sqlite3.connect(pkg["store"])) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        after = job(pkg, "--data", str(pkg["better"]))
        assert after.returncode in (0, 99), f"after a kill at {point}:\n{after.stdout}{after.stderr}"
        # a kill between the swap and the registry's alias move is finished by the next run
        assert champion(pkg) == read_manifest(pkg["root"])["model"]["version"], (seed, killed_runs)
        # a kill before the package served its version leaves no registered version behind
        assert orphan_versions(pkg) == [], (seed, killed_runs, after.stdout)

    final = job(pkg, "--data", str(pkg["better"]), "--force")
    assert final.returncode == 0, final.stdout + final.stderr
    root = pkg["root"]
    assert len(versions(root)) == 3  # the last three kept
    assert not [p for p in (root / "versions").iterdir() if p.name.startswith(".")]  # no leftovers
    assert not list(root.glob(".current.tmp-*"))
    manifest = read_manifest(root)
    assert champion(pkg) == manifest["model"]["version"]  # registry and package agree
    statuses = [r["status"] for r in retraining_runs(pkg)]
    # every killed run ends "interrupted", except one killed just after its record was committed
    assert statuses.count("interrupted") >= sum(p != "record end" for p in killed_runs)
    assert "running" not in statuses


def orphan_versions(pkg: dict) -> list[int]:
    """Versions a retraining job registered that no alias ever named: a promotion that never served."""
    store = open_store(pkg["store"])
    named = {h["version"] for h in store.alias_history("churn")}
    retraining = {r["id"] for r in retraining_runs(pkg)}
    return [v["version"] for v in store.model_versions("churn")
            if v["run_id"] in retraining and v["version"] not in named]


def _rows(pkg: dict):
    import pandas as pd

    return pd.read_csv(pkg["better"], nrows=5)[FEATURES]


# -- units ------------------------------------------------------------------------------------------------


def test_settings_are_checked_and_named(tmp_path):
    assert read_settings(tmp_path) == DEFAULT_SETTINGS
    assert DEFAULT_SETTINGS["on_drift"] == "hold" and DEFAULT_SETTINGS["max_missing"] == 0.05
    (tmp_path / "settings.json").write_text('{"on_drift": "panic"}')
    with pytest.raises(PackageError, match='"on_drift" is "panic"; it must be "hold" or "retrain" or "retrain_on_'):
        read_settings(tmp_path)
    (tmp_path / "settings.json").write_text('{"drift": "panic"}')
    with pytest.raises(PackageError, match='"drift" is "panic"; it must be "report" or "block" or "retrain"'):
        read_settings(tmp_path)
    for old, new in (("report", "retrain"), ("block", "hold"), ("retrain", "retrain_on_drift")):
        (tmp_path / "settings.json").write_text(json.dumps({"drift": old}))
        assert read_settings(tmp_path)["on_drift"] == new  # packages exported before on_drift keep working
    (tmp_path / "settings.json").write_text('{"max_missing": 2}')
    with pytest.raises(PackageError, match='"max_missing" is 2; it must be the share of missing values'):
        read_settings(tmp_path)
    (tmp_path / "settings.json").write_text('{"margins": 0.1}')
    with pytest.raises(PackageError, match="unknown setting margins"):
        read_settings(tmp_path)
    (tmp_path / "settings.json").write_text('{"drift_config": {"psi_drift": 0.3, "psi_wrn": 1}}')
    with pytest.raises(PackageError, match="unknown drift threshold psi_wrn"):
        read_settings(tmp_path)
    (tmp_path / "settings.json").write_text('{"margin": 0.01, "drift_config": {"psi_drift": 0.3}}')
    assert read_settings(tmp_path)["margin"] == 0.01


def test_metric_names_and_evaluation():
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression, LogisticRegression

    assert [metric_key(n) for n in ("f1", "val_f1", "test_f1_score", "AUC", "rmse", "cv_f1")] == [
        "f1", "f1", "f1", "roc_auc", "rmse", None]
    X = pd.DataFrame({"a": np.linspace(0, 1, 40)})
    y = pd.Series(["no", "yes"] * 20)
    scores = evaluate(LogisticRegression().fit(X, y), X, y, classifier=True)
    assert set(scores) == {"accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc", "log_loss"}
    from sklearn import metrics
    from sklearn.datasets import make_classification

    for n_classes, average in ((2, {"average": "binary", "pos_label": "b"}), (3, {"average": "macro"})):
        features, labels = make_classification(600, n_classes=n_classes, n_informative=4, random_state=1)
        labels = np.array(["a", "b", "c"])[labels]
        model = LogisticRegression(max_iter=500).fit(features[:300], labels[:300])
        truth, predicted = labels[300:], model.predict(features[300:])
        got = evaluate(model, features[300:], truth, classifier=True)
        assert got["accuracy"] == pytest.approx(metrics.accuracy_score(truth, predicted))
        assert got["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy_score(truth, predicted))
        for name, score in (("f1", metrics.f1_score), ("precision", metrics.precision_score),
                            ("recall", metrics.recall_score)):
            assert got[name] == pytest.approx(score(truth, predicted, **average)), (n_classes, name)
    values = pd.Series(np.linspace(0, 2, 40))
    scores = evaluate(LinearRegression().fit(X, values), X, values, classifier=False)
    assert scores["r2"] == pytest.approx(1.0) and scores["rmse"] == pytest.approx(0, abs=1e-9)


def test_database_sources_read_through_sqlalchemy(tmp_path):
    import pandas as pd

    database = tmp_path / "fresh.db"
    with sqlite3.connect(database) as conn:
        pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).to_sql("batch", conn, index=False)
    url = f"sqlite:///{database}"
    assert read_source(url, "SELECT * FROM batch WHERE a > 1")["b"].tolist() == ["y", "z"]
    with pytest.raises(PackageError, match="give the rows to read with --query"):
        read_source(url)
    with pytest.raises(DataNotFound, match="returned no rows"):
        read_source(url, "SELECT * FROM batch WHERE a > 9")
    with pytest.raises(DataNotFound, match="no such table: missing_table"):
        read_source(url, "SELECT * FROM missing_table")
    assert describe_source("postgresql://etl:secret@db/crm") == "postgresql://etl:***@db/crm"
