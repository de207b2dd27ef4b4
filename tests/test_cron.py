"""Scheduled retraining through the system's real cron daemon, and the crontab bookkeeping.

The real-cron test installs the exported line with `mlops-nb cron install --user` (a `* * * * *`
schedule) in the crontab of a throwaway account made for the test, starts Debian's `cron -f` when
no daemon runs, waits for the tick, and checks that a retraining run of the package appeared in the
store and logged beside the package. The tester's own crontab is never read or written: the test
compares it byte for byte before and after. A missing cron fails the test rather than skipping it
(the test command installs cron), whatever `$CI` says.

The throwaway account shares root's uid on purpose: cron keys crontabs by account *name*, so a name
of its own gives a crontab of its own, while the job still runs the project's interpreter wherever
the clone lives (a clone under /root is unreadable to any other uid). The account and its crontab
are removed afterwards, and leftovers of a killed run are removed before the next one.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_retrain import build_package

from mlops_nb.deploy import cron
from mlops_nb.deploy.verify import read_manifest, verify
from mlops_nb.errors import MlopsError
from mlops_nb.store import close_all

TICK_WAIT_S = 150


ACCOUNT_PREFIX = "mlopsnb-crontest-"


def _missing(reason: str) -> None:
    pytest.fail(f"{reason}; the test command installs cron (scripts/setup.sh test), so this machine is broken")


def _sbin(tool: str) -> str:
    """The path of an administration tool, which lives in /usr/sbin: a user's PATH may leave that out."""
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if found is None:
        pytest.fail(f"`{tool}` is not installed (Debian: apt-get install passwd); the real-cron test makes a "
                    "throwaway account with it")
    return found


def _remove_account(name: str) -> None:
    subprocess.run(["crontab", "-u", name, "-r"], capture_output=True)
    # -f: the account shares uid 0, which running processes always use, and userdel refuses it otherwise.
    subprocess.run([_sbin("userdel"), "-f", name], capture_output=True)


@pytest.fixture(scope="module")
def throwaway_account(tmp_path_factory):
    """An account made for this test (and removed after), whose crontab the test installs into."""
    if os.geteuid() != 0:
        _missing("the real-cron test needs root: it makes a throwaway account so that it never touches "
                 "your own crontab (run the suite as root, as scripts/test.sh does on a fresh machine)")
    import pwd

    for stale in (p.pw_name for p in pwd.getpwall() if p.pw_name.startswith(ACCOUNT_PREFIX)):
        _remove_account(stale)  # left by a run that was killed before its clean-up
    name = f"{ACCOUNT_PREFIX}{os.getpid()}"
    home = tmp_path_factory.mktemp("cron-home")
    made = subprocess.run([_sbin("useradd"), "-o", "-u", "0", "-g", "0", "-M", "-d", str(home), "-s", "/bin/sh",
                           "-c", "mlops-nb real-cron test, removed after it", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.fail(f"cannot make the throwaway account {name}: {made.stderr.strip()}")
    try:
        yield name
    finally:
        _remove_account(name)
        assert name not in {p.pw_name for p in pwd.getpwall()}


@pytest.fixture(scope="module")
def cron_daemon():
    """A running cron daemon: the one already running, else `cron -f` started here (and stopped after)."""
    # The daemon lives in /usr/sbin, which a user's PATH may leave out.
    daemon = shutil.which("cron") or shutil.which("cron", path="/usr/sbin:/sbin")
    if daemon is None or shutil.which("crontab") is None:
        _missing("cron is not installed (Debian: apt-get install cron)")
    running = subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode == 0
    started = None
    if not running:
        if os.geteuid() != 0:
            _missing("no cron daemon runs and only root can start one")
        started = subprocess.Popen([daemon, "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        if started.poll() is not None:
            pytest.fail(f"`cron -f` exited at once with status {started.returncode}")
    yield
    if started is not None:
        started.terminate()
        started.wait(timeout=10)


@pytest.fixture(scope="module")
def pkg(tmp_path_factory):
    yield build_package(tmp_path_factory.mktemp("cron"))
    close_all()


def _canonical(command: str) -> str:
    """``command`` with every absolute path of an executable file resolved through its symlinks."""
    return " ".join(os.path.realpath(word) if os.path.isabs(word) and os.path.isfile(word)
                    and os.access(word, os.X_OK) else word for word in command.split())


def _crontab(user: str) -> str:
    listed = subprocess.run(["crontab", "-u", user, "-l"], capture_output=True, text=True)
    return listed.stdout if listed.returncode == 0 else ""


def _own_crontab() -> bytes | None:
    """The tester's own crontab file, byte for byte (None when there is none)."""
    path = Path("/var/spool/cron/crontabs") / getpass.getuser()
    return path.read_bytes() if path.exists() else None


def _finished_retraining_runs(store: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(store)) as conn:
        return conn.execute("SELECT id, parent_id, status FROM runs WHERE kind = 'retraining' AND status != 'running'"
                            " ORDER BY id").fetchall()


def test_real_cron_runs_the_exported_line(pkg, throwaway_account, cron_daemon):
    user = throwaway_account
    root = pkg["root"]
    incoming = pkg["folder"] / "incoming"
    incoming.mkdir()
    shutil.copy(pkg["better"], incoming / "fresh.csv")  # the data source named at export
    mlops_nb = str(Path(sys.executable).parent / "mlops-nb")
    env = {**os.environ, "MLOPS_NB_STORE": str(pkg["store"])}
    own_before = _own_crontab()
    installed = subprocess.run([mlops_nb, "cron", "install", str(root), "--schedule", "* * * * *", "--user", user],
                               capture_output=True, text=True, env=env)
    assert installed.returncode == 0, installed.stderr
    try:
        assert f"installed: * * * * * retraining of {root}" in installed.stdout
        line = next(x for x in _crontab(user).splitlines() if x.endswith(f"# mlops-nb retrain {root}"))
        exported = next(x for x in (root / "current" / "crontab.txt").read_text().splitlines()
                        if x and not x.startswith("#"))
        # The same command as the export wrote, up to which name of the same interpreter runs it
        # (a venv's python and python3 are one program).
        assert line.startswith("* * * * * ")
        assert _canonical(line.split(None, 5)[5]).startswith(_canonical(exported.split(None, 5)[5])), (line, exported)
        listed = subprocess.run([mlops_nb, "cron", "list", "--user", user], capture_output=True, text=True, env=env)
        assert str(root) in listed.stdout and "* * * * *" in listed.stdout

        deadline = time.monotonic() + TICK_WAIT_S
        runs = []
        while time.monotonic() < deadline and not runs:
            time.sleep(2)
            runs = _finished_retraining_runs(pkg["store"])
        assert runs, f"cron did not run the job within {TICK_WAIT_S} s; crontab:\n{_crontab(user)}"
    finally:
        removed = subprocess.run([mlops_nb, "cron", "remove", str(root), "--user", user], capture_output=True,
                                 text=True, env=env)
    assert removed.returncode == 0 and f"removed: * * * * * retraining of {root}" in removed.stdout
    assert f"mlops-nb retrain {root}" not in _crontab(user)
    assert _own_crontab() == own_before  # the tester's own crontab: not a byte changed

    run_id, parent_id, status = runs[0]
    assert parent_id == 1 and status == "finished"
    log = (root.parent / "churn-retrain.log").read_text()
    assert "mlops-nb retrain churn: [1/11] lock:" in log  # cron is no terminal: one line per step
    assert f"[11/11] record: run {run_id} (promoted" in log
    assert "exit 0 (promoted): promoted churn version 2 (package v0002)" in log
    assert os.readlink(root / "current") == "versions/v0002"
    verify(root)


# -- the crontab bookkeeping, on a crontab file ---------------------------------------------------------


def test_install_list_remove_touch_only_mlops_lines(pkg, tmp_path):
    tab = tmp_path / "crontab"
    tab.write_text("MAILTO=ops@example.com\n15 4 * * * /usr/local/bin/backup.sh # nightly backup\n")
    entry = cron.install(pkg["root"], tabfile=tab, python="/opt/venv/bin/python")
    manifest = read_manifest(pkg["root"])
    assert entry.schedule == manifest["schedule"] == "0 3 * * 1"
    assert entry.command == (f"cd {pkg['root']} && MLOPS_NB_STORE={pkg['store']} /opt/venv/bin/python "
                             f"-P -m mlops_nb retrain {pkg['root']} --data {pkg['folder'] / 'incoming' / 'fresh.csv'} "
                             f">> {pkg['root'].parent / 'churn-retrain.log'} 2>&1")
    again = cron.install(pkg["root"], schedule="*/10 * * * *", tabfile=tab)  # replaces, never duplicates
    assert [e.schedule for e in cron.entries(tabfile=tab)] == ["*/10 * * * *"]
    assert again.command.split(" -P -m mlops_nb retrain")[0].endswith(sys.executable)
    text = tab.read_text()
    assert "MAILTO=ops@example.com" in text and "/usr/local/bin/backup.sh # nightly backup" in text
    with pytest.raises(MlopsError, match="is not a cron schedule"):
        cron.install(pkg["root"], schedule="every monday", tabfile=tab)
    with pytest.raises(MlopsError, match="not an mlops-nb package"):
        cron.install(tmp_path, tabfile=tab)
    assert [e.package for e in cron.remove(pkg["root"], tabfile=tab)] == [pkg["root"]]
    assert cron.entries(tabfile=tab) == [] and "backup.sh" in tab.read_text()
    assert cron.remove(None, tabfile=tab) == []


def test_another_accounts_crontab_needs_an_existing_account(pkg):
    mlops_nb = str(Path(sys.executable).parent / "mlops-nb")
    for command in (["install", str(pkg["root"])], ["list"], ["remove", "--all"]):
        result = subprocess.run([mlops_nb, "cron", *command, "--user", "no-such-account-x"], capture_output=True,
                                text=True)
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().endswith(
            "there is no user 'no-such-account-x' on this machine: give an existing account to --user "
            "(e.g. the service account that owns the package)"), result.stderr
        assert "Traceback" not in result.stderr
