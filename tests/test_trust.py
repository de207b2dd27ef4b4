"""The trust anchor: every manifest a package gets is recorded and signed; a tampered package, even
with MANIFEST.json rewritten to match, is refused (82, the file named) by every way in before any
of its code runs; a package on a host without the store verifies by signature, and a pinned key
refuses a package signed by another."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import mlops_nb as mnb
from mlops_nb.cli import main
from mlops_nb.deploy import trust
from mlops_nb.deploy.exits import EXIT_INTEGRITY, EXIT_PROMOTED
from mlops_nb.deploy.layout import MANIFEST, package_dir
from mlops_nb.deploy.verify import verify
from mlops_nb.errors import ChecksumError
from mlops_nb.store import open_store


def _rewrite_manifest(folder: Path, relative: str) -> None:
    """What an attacker does after changing a file: make MANIFEST.json match it again."""
    manifest = json.loads((folder / MANIFEST).read_text())
    data = (folder / relative).read_bytes()
    manifest["files"][relative] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _tamper(kind: str, root: Path, marker: Path) -> str:
    """Tamper with the package as ``kind`` says; return the name the refusal must give."""
    folder = package_dir(root)
    if kind == "retrain.py":
        with (folder / "retrain.py").open("a") as f:
            f.write(f"\nopen({str(marker)!r}, 'w').write('package code ran')\n")
    elif kind == "model.skops":
        import numpy as np
        import skops.io as sio
        from sklearn.dummy import DummyClassifier

        dummy = DummyClassifier(strategy="constant", constant=1).fit(np.zeros((4, 2)), [0, 1, 0, 1])
        (folder / "model.skops").write_bytes(sio.dumps(dummy))
    elif kind == "schema.json":
        schema = json.loads((folder / "schema.json").read_text())
        schema["tampered"] = True
        (folder / "schema.json").write_text(json.dumps(schema))
    if kind == "settings.json":
        (root / "settings.json").write_text(json.dumps({"drift": "retrain", "margin": -1}))
        return "settings.json differs from the settings"
    _rewrite_manifest(folder, kind)
    verify_listing = json.loads((folder / MANIFEST).read_text())["files"]
    assert kind in verify_listing  # the checksums alone now pass: only the anchor can tell
    return f"{kind} (differs from the recorded manifest)"


def _one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1]


@pytest.mark.parametrize("kind", ["retrain.py", "model.skops", "schema.json", "settings.json"])
def test_a_tampered_package_is_refused_by_every_way_in_before_its_code_runs(exported, kind, tmp_path):
    root, store, marker = exported["root"], exported["store"], exported["marker"]
    named = _tamper(kind, root, marker)
    rows = tmp_path / "rows.csv"
    rows.write_text("age,income\n30,40.5\n50,70.0\n")
    runner = CliRunner()

    with pytest.raises(ChecksumError) as caught:
        verify(root)
    assert named in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ChecksumError, match=named.split(" (")[0].replace(".", r"\.")):
        mnb.load_model(root)

    for args in (["verify", str(root)], ["predict", str(root), str(rows)],
                 ["--store", str(store), "retrain", str(root), "--force"]):
        result = runner.invoke(main, args)
        assert result.exit_code == EXIT_INTEGRITY, (args, result.output)
        assert named in _one_line(result.output), (args, result.output)
        assert "Traceback" not in result.output

    env = {**os.environ, "MLOPS_NB_STORE": str(store)}
    done = subprocess.run([sys.executable, "-P", "-m", "mlops_nb", "retrain", str(root), "--force"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == EXIT_INTEGRITY, done.stdout + done.stderr
    assert named in _one_line(done.stdout + done.stderr)
    if kind == "retrain.py":  # run by hand, the script's first line refuses before its own code
        done = subprocess.run([sys.executable, str(root / "current" / "retrain.py")], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=300)
        assert done.returncode == EXIT_INTEGRITY, done.stdout + done.stderr
        assert named in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_export_and_promotion_record_signed_manifests_and_the_cron_line_verifies_first(exported):
    root, store = exported["root"], exported["store"]
    keys = trust.keys_dir(store)
    assert stat.S_IMODE((keys / trust.PRIVATE_KEY_FILE).stat().st_mode) == 0o600
    current = package_dir(root)
    assert (current / trust.PUBLIC_KEY_FILE).read_bytes() == (keys / trust.PUBLIC_KEY_FILE).read_bytes()
    assert trust.SIGNATURE_FILE not in json.loads((current / MANIFEST).read_text())["files"]
    line = (current / "crontab.txt").read_text().splitlines()[-1]
    assert f"{sys.executable} -P -m mlops_nb retrain {root} >> " in line and "retrain.py" not in line

    result = CliRunner().invoke(main, ["--store", str(store), "retrain", str(root), "--force"])
    assert result.exit_code == EXIT_PROMOTED, result.output
    rows = open_store(store, readonly=True).rows("SELECT * FROM manifests ORDER BY id")
    assert [(r["version_dir"], r["reason"], r["model_version"]) for r in rows] == [
        ("v0001", "export", 1), ("v0002", "promotion", 2)]
    assert all(r["package"] == str(root) and r["key_id"] and r["signature"] for r in rows)
    assert rows[1]["sha256"] == hashlib.sha256((root / "versions" / "v0002" / MANIFEST).read_bytes()).hexdigest()
    verify(root)
    # A promotion copies the scripts of the verified version only: a later tamper is still caught.
    _tamper("retrain.py", root, exported["marker"])
    result = CliRunner().invoke(main, ["--store", str(store), "retrain", str(root), "--force"])
    assert result.exit_code == EXIT_INTEGRITY and not exported["marker"].exists()


def test_a_copied_package_verifies_by_signature_and_a_pinned_key_refuses_another(exported, tmp_path, monkeypatch):
    elsewhere = tmp_path / "host2" / "churn"
    shutil.copytree(exported["root"], elsewhere, symlinks=True)
    runner = CliRunner()
    public = trust.keys_dir(exported["store"]) / trust.PUBLIC_KEY_FILE
    result = runner.invoke(main, ["verify", str(elsewhere), "--public-key", str(public)])
    assert result.exit_code == 0 and "(pinned)" in result.output, result.output
    assert mnb.load_model(elsewhere, public_key=public) is not None

    (elsewhere / "settings.json").write_text('{"drift": "retrain"}\n')
    result = runner.invoke(main, ["verify", str(elsewhere)])
    assert result.exit_code == EXIT_INTEGRITY and "settings.json differs" in result.output
    assert f"mlops-nb reseal {elsewhere}" in result.output

    # Someone re-signs the copy with their own key: it verifies on its own, not against the pin.
    other_store = tmp_path / "attacker" / "mlops.db"
    version = package_dir(elsewhere)
    trust.sign(version, elsewhere, other_store)
    assert runner.invoke(main, ["verify", str(elsewhere)]).exit_code == 0
    result = runner.invoke(main, ["verify", str(elsewhere), "--public-key", str(public)])
    assert result.exit_code == EXIT_INTEGRITY and "not the pinned key" in result.output
    monkeypatch.setenv(trust.PUBLIC_KEY_ENV, str(public))  # the setting pins it for every command
    rows = tmp_path / "rows.csv"
    rows.write_text("age,income\n30,40.5\n")
    result = runner.invoke(main, ["predict", str(elsewhere), str(rows)])
    assert result.exit_code == EXIT_INTEGRITY and "not the pinned key" in result.output
    with pytest.raises(ChecksumError, match="not the pinned key"):
        mnb.load_model(elsewhere)


def test_reseal_accepts_an_edit_signs_and_records_it(exported):
    root, store = exported["root"], exported["store"]
    (root / "settings.json").write_text(json.dumps({"drift": "block", "margin": 0.01}, indent=2) + "\n")
    with (package_dir(root) / "retrain.py").open("a") as f:
        f.write("# tuned by hand\n")
    with pytest.raises(ChecksumError):
        verify(root)
    result = CliRunner().invoke(main, ["reseal", str(root)])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("re-sealed retrain.py and settings.json") and str(store) in result.output
    verify(root)
    rows = open_store(store, readonly=True).rows("SELECT reason FROM manifests ORDER BY id")
    assert [r["reason"] for r in rows] == ["export", "reseal"]
    # The accepted settings are the recorded ones now: another hand edit is refused again.
    (root / "settings.json").write_text('{"drift": "retrain"}\n')
    with pytest.raises(ChecksumError, match="settings.json differs"):
        verify(root)
