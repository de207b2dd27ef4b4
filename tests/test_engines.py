"""The scheduler files export writes, run by the engines users outgrow into: the Airflow DAG by a
real Airflow (`airflow dags test`: promoted, champion kept, bad data), the Kubernetes manifests
checked against Kubernetes' own schemas (kubernetes-validate) for the versions the README names.

Airflow lives in a virtual environment of its own, cached between runs outside the repository:
``$MLOPS_NB_TEST_CACHE/airflow-pyX.Y`` (default ``/tmp/mlops-nb-test-cache``; delete it to start
over). The first run installs apache-airflow from PyPI (about 40 s with pip's cache warm), later runs
reuse it. The DAG's task runs the interpreter that exported the package, so Airflow needs no
mlops-nb of its own. In CI (``CI=true``) an Airflow that cannot be installed fails the test.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from notebook_helpers import notebook, run_notebook
from test_retrain import CELLS, write_data

from mlops_nb.cli import main
from mlops_nb.deploy.kubernetes import PLACEHOLDER_IMAGE, SERVE_PORT
from mlops_nb.store import close_all, open_store

IMAGE = "registry.example.com/churn-retrain:1"
EXPORT = f"%mlops export churn --to deploy/churn --data incoming/fresh.csv --airflow --kubernetes --image {IMAGE}"
REPO = Path(__file__).parent.parent
README = (REPO / "README.md").read_text()
CACHE = Path(os.environ.get("MLOPS_NB_TEST_CACHE") or "/tmp/mlops-nb-test-cache")
AIRFLOW = "apache-airflow>=3,<4"
DAG_ID = "mlops_nb_retrain_churn"


@pytest.fixture(scope="module")
def pkg(tmp_path_factory):
    """test_retrain's notebook, exported with every scheduler file, in a real kernel."""
    folder = tmp_path_factory.mktemp("engines")
    paths = write_data(folder)
    store = folder / "mlops.db"
    run_notebook(notebook([*CELLS[:-1], EXPORT]), folder, store=store, timeout=300)
    yield {"folder": folder, "store": store, "root": folder / "deploy" / "churn", **paths}
    close_all()


# -- Kubernetes ------------------------------------------------------------------------------------------


def readme_versions() -> list[str]:
    """The Kubernetes versions the README promises, "Kubernetes 1.A through 1.B"."""
    low, high = map(int, re.search(r"Kubernetes 1\.(\d+) through 1\.(\d+)", README).groups())
    return [f"1.{minor}.0" for minor in range(low, high + 1)]


def manifests(folder: Path) -> list[dict]:
    return [doc for name in ("cronjob.yaml", "serving.yaml") for doc in yaml.safe_load_all((folder / name).read_text())]


def validate_everywhere(documents: list[dict]) -> None:
    import kubernetes_validate

    versions = readme_versions()
    assert versions and versions[-1] == "1.37.0", versions
    for version in versions:
        for document in documents:
            kubernetes_validate.validate(document, version, strict=True)  # raises naming the field


def test_manifests_pass_kubernetes_schemas_and_run_the_verifying_entry_point(pkg):
    folder = pkg["root"] / "current"
    documents = manifests(folder)
    assert [d["kind"] for d in documents] == ["CronJob", "Deployment", "Service"]
    validate_everywhere(documents)
    job, deployment, service = documents

    assert job["spec"]["concurrencyPolicy"] == "Forbid" and job["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == IMAGE
    assert container["args"] == ["python", "-P", "-m", "mlops_nb", "retrain", str(pkg["root"]),
                                 "--data", str(pkg["folder"] / "incoming" / "fresh.csv")]
    assert {"name": "MLOPS_NB_STORE", "value": str(pkg["store"])} in container["env"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    # hostPath by default: the notebook's folder holds the package, the store and the data
    assert [v["hostPath"]["path"] for v in pod["volumes"]] == [str(pkg["folder"])]
    assert [m["mountPath"] for m in container["volumeMounts"]] == [str(pkg["folder"])]

    [server] = deployment["spec"]["template"]["spec"]["containers"]
    assert server["image"] == IMAGE and deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"  # never two writers of the SQLite store
    assert server["command"] == ["python", "-P", "-m", "mlops_nb", "serve", str(pkg["root"]),
                                 "--host", "0.0.0.0", "--port", str(SERVE_PORT)]
    assert server["readinessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    assert {"name": "http", "containerPort": SERVE_PORT} in server["ports"]
    assert server["resources"]["requests"]["cpu"] and server["resources"]["limits"]["memory"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    for name in ("cronjob.yaml", "serving.yaml"):
        text = (folder / name).read_text()
        assert "SQLite: one node, one writer host" in text and "MLflow" in text


def test_the_cronjob_counts_exit_99_as_success_and_logs_every_other_failure(pkg, tmp_path):
    """The container's shell wrapper, run by the same sh a pod runs, around commands that exit so."""
    [container] = yaml.safe_load((pkg["root"] / "current" / "cronjob.yaml").read_text())[
        "spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    for code, status, says in ((0, 0, ""), (99, 0, "exit 99 (champion kept) ends the Job as a success"),
                               (65, 65, "exit 65 fails the Job"), (82, 82, "exit 82 fails the Job")):
        ran = subprocess.run([*container["command"], "sh", "-c", f"echo the job; exit {code}"],
                             capture_output=True, text=True, timeout=30)
        assert ran.returncode == status and ran.stdout.startswith("the job")
        assert says in ran.stdout + ran.stderr


def test_without_image_a_placeholder_and_one_line_on_building_it_and_a_volume_claim(pkg, tmp_path):
    target = tmp_path / "k8s"
    result = CliRunner().invoke(main, ["--store", str(pkg["store"]), "export", "churn", "--to", str(target),
                                       "--kubernetes", "--volume-claim", "mlops-data"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if PLACEHOLDER_IMAGE in line]
    assert f"docker build -t IMAGE {target}/current" in line and "--image IMAGE" in line
    folder = target / "current"
    documents = manifests(folder)
    validate_everywhere(documents)
    for document in documents[:2]:
        spec = document["spec"].get("jobTemplate", document)["spec"]["template"]["spec"]
        assert spec["containers"][0]["image"] == PLACEHOLDER_IMAGE
        assert spec["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "mlops-data"}}]
        # one claim, one layout: it holds the folder common to the package, the store and the data
        mounts = {m["mountPath"]: m.get("subPath") for m in spec["containers"][0]["volumeMounts"]}
        common = os.path.commonpath([target, pkg["folder"]])  # the data is in the notebook's folder
        assert mounts == {str(target): os.path.relpath(target, common),
                          str(pkg["folder"]): os.path.relpath(pkg["folder"], common)}

    refused = CliRunner().invoke(main, ["--store", str(pkg["store"]), "export", "churn", "--to", str(tmp_path / "x"),
                                        "--kubernetes", "--volume-claim", "Not_A_Name"])
    assert refused.exit_code == 78 and "is not a PersistentVolumeClaim name" in refused.output
    refused = CliRunner().invoke(main, ["--store", str(pkg["store"]), "export", "churn", "--to", str(tmp_path / "x"),
                                        "--image", IMAGE])
    assert refused.exit_code == 78 and "add --kubernetes" in refused.output


def test_the_dockerfile_installs_the_packages_requirements_and_no_notebook_stack(pkg):
    folder = pkg["root"] / "current"
    lines = [line for line in (folder / "Dockerfile").read_text().splitlines() if line and not line.startswith("#")]
    instructions = [line.split()[0] for line in lines]
    assert lines[0] == f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim"
    assert "COPY requirements.txt /opt/mlops-nb/requirements.txt" in lines
    assert "RUN python -m pip install -r /opt/mlops-nb/requirements.txt" in lines
    assert set(instructions) <= {"FROM", "ARG", "ENV", "COPY", "RUN", "CMD"}  # no package copied into the image
    requirements = (folder / "requirements.txt").read_text()
    pins = dict(line.split("==") for line in requirements.splitlines() if "==" in line)
    assert {"mlops-nb", "scikit-learn", "pandas", "numpy", "skops"} <= set(pins)
    assert not {"jupyterlab", "ipython", "ipywidgets", "ipykernel", "jupyter_server", "nbclient"} & set(pins)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert {"cronjob.yaml", "serving.yaml", "Dockerfile", "airflow_dag.py"} <= set(manifest["files"])


# -- Airflow ---------------------------------------------------------------------------------------------


def test_the_dag_imports_under_airflow_2s_module_layout(pkg):
    """Only one Airflow can be installed: Airflow 2's layout (2.6+, the first with skip_on_exit_code)
    is checked by parsing the DAG file."""
    source = (pkg["root"] / "current" / "airflow_dag.py").read_text()
    tree = ast.parse(source)
    [guard] = [node for node in tree.body if isinstance(node, ast.Try)]
    imported = lambda body: {(n.module, a.name) for n in body if isinstance(n, ast.ImportFrom) for a in n.names}  # noqa: E731
    assert imported(guard.body) == {("airflow.providers.standard.operators.bash", "BashOperator"),
                                    ("airflow.sdk", "DAG")}
    [fallback] = guard.handlers
    assert isinstance(fallback.type, ast.Name) and fallback.type.id == "ImportError"
    assert imported(fallback.body) == {("airflow", "DAG"), ("airflow.operators.bash", "BashOperator")}
    assert not [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)
                and (getattr(n, "module", "") or "").startswith("airflow")]  # nothing of Airflow outside the guard
    calls = {n.func.id: n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    # the arguments Airflow 2.6's DAG and BashOperator accept (schedule= since 2.4)
    assert {k.arg for k in calls["DAG"].keywords} <= {"dag_id", "schedule", "start_date", "catchup",
                                                      "max_active_runs", "tags"}
    assert {k.arg for k in calls["BashOperator"].keywords} == {"task_id", "bash_command", "skip_on_exit_code",
                                                                "retries"}


def _missing(reason: str) -> None:
    pytest.fail(f"{reason}; the test command must run the Airflow test (it needs PyPI to install Airflow once)")


@pytest.fixture(scope="module")
def airflow() -> Path:
    """The ``airflow`` executable of the cached virtual environment (installed on first use)."""
    venv = CACHE / f"airflow-py{sys.version_info.major}.{sys.version_info.minor}"
    ready = venv / "mlops-nb-ready"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "airflow.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once: one installs, the other waits
        if not ready.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", AIRFLOW],
                                       capture_output=True, text=True, timeout=1200)
            if installed.returncode != 0:
                _missing(f"apache-airflow did not install: {installed.stderr.strip()[-500:]}")
            ready.write_text(AIRFLOW + "\n")
    return venv / "bin" / "airflow"


def _airflow_env(home: Path) -> dict[str, str]:
    return {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "NO_COLOR": "1"}


def _task_states(home: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as conn:
        return [state for (state,) in conn.execute(
            "SELECT state FROM task_instance WHERE dag_id = ? AND task_id = 'retrain' ORDER BY start_date", (DAG_ID,))]


def test_airflow_runs_the_exported_dag_promoted_skipped_failed(pkg, airflow, tmp_path):
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    shutil.copy(pkg["root"] / "current" / "airflow_dag.py", home / "dags")
    env = _airflow_env(home)
    migrated = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-2000:]
    fresh = pkg["folder"] / "incoming" / "fresh.csv"
    fresh.parent.mkdir(exist_ok=True)

    def dags_test() -> tuple[subprocess.CompletedProcess, str]:
        ran = subprocess.run([str(airflow), "dags", "test", DAG_ID], env=env, capture_output=True, text=True,
                             timeout=600)
        return ran, ran.stdout + ran.stderr

    # 1. fresh data that promotes: the task succeeds, the run is in the store, linked to its notebook run
    shutil.copy(pkg["better"], fresh)
    ran, log = dags_test()
    assert ran.returncode == 0 and _task_states(home) == ["success"], log[-4000:]
    assert "exit 0 (promoted): promoted churn version 2" in log
    store = open_store(pkg["store"], readonly=True)
    [run] = store.rows("SELECT * FROM runs WHERE kind = 'retraining'")
    notebook_run = store.rows("SELECT id FROM runs WHERE kind != 'retraining'")[0]["id"]
    assert run["parent_id"] == notebook_run and run["status"] == "finished"
    assert store.run_details(run["id"])["tags"]["decision"] == "promoted"
    assert os.readlink(pkg["root"] / "current") == "versions/v0002"

    # 2. the same data again: exit 99, the task is skipped, the champion stays
    ran, log = dags_test()
    assert _task_states(home) == ["success", "skipped"], log[-4000:]
    assert "exit 99 (kept champion)" in log and os.readlink(pkg["root"] / "current") == "versions/v0002"

    # 3. a missing column: exit 65, the task fails, its log says which column
    import pandas as pd

    pd.read_csv(pkg["better"]).drop(columns=["f3"]).to_csv(fresh, index=False)
    ran, log = dags_test()
    assert ran.returncode != 0 and _task_states(home) == ["success", "skipped", "failed"], log[-4000:]
    assert "exit 65 (bad data)" in log and "column 'f3' is missing" in log and "exit code 65" in log
    assert os.readlink(pkg["root"] / "current") == "versions/v0002"


# -- the lean runtime ------------------------------------------------------------------------------------

NOTEBOOK_STACK = ("IPython", "ipywidgets", "ipykernel", "jupyter_server", "jupyter_client", "nbclient", "nbformat",
                  "jupyterlab", "tornado")


@pytest.fixture(scope="module")
def lean_python(pkg) -> Path:
    """The interpreter of a cached virtual environment holding mlops-nb's core dependencies at the
    package's exact versions (what its Dockerfile installs), nothing of the notebook stack, and this
    checkout installed without extras (editable, so the cache serves while the code changes; the
    key holds the checkout's path, pyproject.toml and the pins)."""
    tomllib = pytest.importorskip("tomllib")
    core = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [line for line in (pkg["root"] / "current" / "requirements.txt").read_text().splitlines()
            if line and not line.startswith(("#", "mlops-nb=="))]
    wanted = sorted({*core, *pins})
    key = hashlib.sha256("\n".join([str(REPO), (REPO / "pyproject.toml").read_text(), *wanted]).encode()
                         ).hexdigest()[:12]
    venv = CACHE / f"lean-py{sys.version_info.major}.{sys.version_info.minor}-{key}"
    ready = venv / "mlops-nb-ready"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "lean.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
            # jlpm on PATH, should the build hook need to build the JupyterLab extension
            env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
            for args in (wanted, ["--no-deps", "-e", str(REPO)]):
                installed = subprocess.run([*pip, *args], capture_output=True, text=True, timeout=1200, env=env)
                if installed.returncode != 0:
                    _missing(f"the runtime did not install: {installed.stderr.strip()[-500:]}")
            ready.write_text("\n".join(wanted) + "\n")
    return venv / "bin" / "python"


def test_retrain_predict_and_verify_run_without_the_notebook_stack(pkg, lean_python, tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
           "MLOPS_NB_STORE": str(pkg["store"])}

    def lean(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(lean_python), *args], cwd=pkg["root"], env=env, capture_output=True, text=True,
                              timeout=300)

    absent = lean("-c", f"import importlib.util; print([m for m in {NOTEBOOK_STACK!r} if importlib.util.find_spec(m)])")
    assert absent.stdout.strip() == "[]", absent.stdout + absent.stderr  # none of it is even installed
    verified = lean("-P", "-m", "mlops_nb", "verify", str(pkg["root"]))
    assert verified.returncode == 0 and "verified" in verified.stdout, verified.stderr
    import pandas as pd

    pd.read_csv(pkg["better"]).head(20).to_csv(tmp_path / "rows.csv", index=False)
    predicted = lean("-P", "-m", "mlops_nb", "predict", str(pkg["root"]), str(tmp_path / "rows.csv"))
    assert predicted.returncode == 0, predicted.stderr
    assert len(pd.read_csv(io.StringIO(predicted.stdout))) == 20
    # the package's own script, as a user runs it by hand (it verifies itself first)
    retrained = lean("current/retrain.py", "--data", str(pkg["better"]))
    assert retrained.returncode in (0, 99), retrained.stdout + retrained.stderr
    assert re.search(r"exit (0 \(promoted\)|99 \(kept champion\))", retrained.stdout)
    demo = subprocess.run([str(lean_python), "-m", "mlops_nb", "demo", "--dir", str(tmp_path / "demo")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert demo.returncode == 1 and 'pip install "mlops-nb[jupyter]"' in demo.stderr
