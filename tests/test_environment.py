"""The environment a run records: installed versions read from metadata headers agree with
importlib.metadata for every installed distribution, and the header block alone decides."""

from __future__ import annotations

from importlib import metadata

from mlops_nb.tracking.environment import installed_version, package_versions


def test_installed_version_agrees_with_importlib_metadata_for_every_distribution():
    names = {dist.metadata["Name"] for dist in metadata.distributions()}
    assert len(names) > 20  # the test venv: numpy, pandas, scikit-learn, skops, jupyter ...
    differ = {name: (installed_version(name), metadata.version(name)) for name in names
              if installed_version(name) != metadata.version(name)}
    assert differ == {}
    assert installed_version("not-a-real-dist") is None
    found = package_versions(("numpy", "not-a-real-dist", "scikit-learn"))
    assert found == {"numpy": metadata.version("numpy"), "scikit-learn": metadata.version("scikit-learn")}


def test_installed_version_reads_the_header_block_only(tmp_path, monkeypatch):
    # a long description that mentions another version, CRLF line endings, as some tools write them
    info = tmp_path / "demo_dist-2.5.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_bytes(b"Metadata-Version: 2.1\r\nName: demo-dist\r\nVersion: 2.5.1\r\n"
                                    b"Summary: x\r\n\r\nVersion: 9.9 of the docs\r\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert installed_version("demo-dist") == "2.5.1" == metadata.version("demo-dist")
    # no Version header where it belongs: the email parser finds none either, so no version (whether
    # the standard library or the importlib_metadata backport answers the lookup)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-dist\n\nVersion: 3.0\n")
    assert installed_version("demo-dist") is None
    import importlib_metadata  # the backport, as mlflow and jupyter import it before a run records its environment

    assert importlib_metadata.distribution("demo-dist").metadata.get("Version") is None
    assert installed_version("demo-dist") is None
