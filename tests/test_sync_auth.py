"""Syncing to an MLflow server that asks for credentials: a real ``mlflow server --app-name basic-auth``
(its own admin, users and permissions in a SQLite file of the test's) on a free loopback port.

No credentials or a wrong password: exit 77 with one line naming the server and MLflow's credential
variables, and nothing recorded as pushed. The right ones in ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD``: the runs are pushed. An experiment of the same name created by another
user, who left everyone else the default READ: exit 77 naming the experiment and what to do.
"""

from __future__ import annotations

import os
import secrets
import subprocess

import flask_wtf  # noqa: E402,F401  (the basic-auth server needs mlflow[auth]: the test extra installs it)
import pytest
import requests  # noqa: E402
from test_sync import MLOPS_NB, client, mlflow_server

import mlops_nb as mnb
from mlops_nb.store import close_all, open_store

ADMIN = ("mlops-admin", secrets.token_hex(8))
ALICE = ("alice", secrets.token_hex(8))  # the one who syncs
BOB = ("bob", secrets.token_hex(8))  # owns an experiment named like one of alice's projects
CREDENTIAL_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
                   "MLFLOW_TRACKING_URI", "MLFLOW_AUTH_CONFIG_PATH", "MLFLOW_AUTH_ADMIN_USERNAME",
                   "MLFLOW_AUTH_ADMIN_PASSWORD")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any MLflow credentials, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    return {**env, **extra}


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """One basic-auth server for the module (it takes 10 to 60 s to start): its own config file
    (default permission READ, its users' database and admin beside it) and two users, alice and bob."""
    folder = tmp_path_factory.mktemp("mlflow-auth")
    config = folder / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{folder}/basic_auth.db\n"
        f"admin_username = {ADMIN[0]}\n"
        f"admin_password = {ADMIN[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    env = clean_env(MLFLOW_AUTH_CONFIG_PATH=str(config), MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16))
    with mlflow_server(folder, "--app-name", "basic-auth", env=env) as uri:
        for user in (ALICE, BOB):
            answer = requests.post(f"{uri}/api/2.0/mlflow/users/create", auth=ADMIN, timeout=30,
                                   json={"username": user[0], "password": user[1]})
            assert answer.status_code == 200, answer.text
        yield uri


def sync(store, uri: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([MLOPS_NB, "--store", str(store), "sync", "mlflow", "--tracking-uri", uri, *args],
                          capture_output=True, text=True, timeout=300, env=clean_env(**env))


def nothing_recorded(store, uri: str) -> bool:
    local = open_store(store, readonly=True)
    pushed = [kind for kind in ("experiment", "artifact", "model_version", "alias") if local.sync_items(uri, kind)]
    remote_ids = [r["remote_id"] for r in local.sync_runs(uri).values() if r["remote_id"]]
    return not pushed and not remote_ids


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "mlops.db"
    with mnb.start("churn", store=path, name="baseline") as run:
        run.log_params({"lr": 0.1})
        for step in range(3):
            run.log_metric("loss", 1 / (step + 1), step=step)
    yield path
    close_all()


@pytest.mark.parametrize("credentials", [
    {},
    {"MLFLOW_TRACKING_USERNAME": ALICE[0], "MLFLOW_TRACKING_PASSWORD": "not-" + ALICE[1]},
    {"MLFLOW_TRACKING_TOKEN": "not-a-token"},
], ids=["none", "wrong-password", "wrong-token"])
def test_refused_credentials_exit_77_naming_the_server_and_the_variables(auth_server, store, credentials):
    result = sync(store, auth_server, **credentials)
    assert result.returncode == 77, result.stdout + result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: ") and "Traceback" not in result.stderr
    assert auth_server in line and "(HTTP 401)" in line and "finding experiment 'churn'" in line
    assert "MLFLOW_TRACKING_USERNAME" in line and "MLFLOW_TRACKING_PASSWORD" in line
    assert "MLFLOW_TRACKING_TOKEN" in line
    if "MLFLOW_TRACKING_PASSWORD" in credentials:  # the user it refused is named (never the password)
        assert f"user '{ALICE[0]}'" in line and credentials["MLFLOW_TRACKING_PASSWORD"] not in line
    elif credentials:
        assert "refused the token in MLFLOW_TRACKING_TOKEN" in line and "not-a-token" not in line
    else:
        assert "none are set" in line
    assert nothing_recorded(store, auth_server)
    assert result.stdout == ""


def test_the_right_credentials_push_and_an_experiment_of_another_owner_is_refused_by_name(auth_server, store):
    alice = {"MLFLOW_TRACKING_USERNAME": ALICE[0], "MLFLOW_TRACKING_PASSWORD": ALICE[1]}
    pushed = sync(store, auth_server, **alice)
    assert pushed.returncode == 0, pushed.stderr
    assert "1 new run(s)" in pushed.stdout and "3 metric value(s)" in pushed.stdout

    # bob creates "shared" first; everyone else has the default READ on it.
    made = requests.post(f"{auth_server}/api/2.0/mlflow/experiments/create", auth=BOB, timeout=30,
                         json={"name": "shared"})
    assert made.status_code == 200, made.text
    with mnb.start("shared", store=store, name="mine") as run:
        run.log_metric("f1", 0.9)
    refused = sync(store, auth_server, "--project", "shared", **alice)
    assert refused.returncode == 77, refused.stdout + refused.stderr
    line = refused.stderr.strip()
    assert "\n" not in line and auth_server in line and "Traceback" not in refused.stderr
    assert "experiment 'shared'" in line and "another user" in line and "EDIT permission" in line
    assert "run 2 (mine)" in line and "--project" in line  # the run, and how to sync the rest meanwhile
    assert open_store(store, readonly=True).sync_runs(auth_server)[2]["remote_id"] is None

    # Read back as alice through MLflow's client: her run is there, bob's experiment holds nothing of hers.
    os.environ.update(alice)
    try:
        c = client(auth_server)
        [remote] = c.search_runs([c.get_experiment_by_name("churn").experiment_id])
        assert remote.info.run_name == "baseline" and remote.info.status == "FINISHED"
        assert [m.value for m in c.get_metric_history(remote.info.run_id, "loss")] == [1.0, 0.5, 1 / 3]
        assert remote.data.params == {"lr": "0.1"}
        assert c.search_runs([c.get_experiment_by_name("shared").experiment_id]) == []
    finally:
        for key in alice:
            os.environ.pop(key, None)

    # The rest of the store still syncs: nothing new outside "shared".
    rest = sync(store, auth_server, "--project", "churn", **alice)
    assert rest.returncode == 0 and "up to date" in rest.stdout, rest.stderr
