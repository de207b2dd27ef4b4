"""What a run records about where it ran: Python, the packages that shape a model, git state."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions change what a model is or how it loads.
TRACKED_PACKAGES = (
    "mlops-nb", "numpy", "pandas", "scikit-learn", "scipy", "skops", "ipython", "ipykernel",
)


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, None when it is not installed.

    Read from the metadata's header block alone: ``importlib.metadata.version`` parses the whole
    file with the email parser, long description and licence text included (numpy's and scipy's
    run to thousands of lines), about three times the cost. The core metadata spec requires the
    ``Version`` header, so the header block always has it; the parser's answer stays the fallback
    for a file that does not look like that (None when it has no Version either)."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.replace("\r\n", "\n").split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "version" and value.strip():
            return value.strip()
    # .get, not .version: importlib_metadata (which some packages import, and which then answers
    # for the standard library's lookups too) raises KeyError for a missing header; Python 3.11's None.
    return dist.metadata.get("Version") or None


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (missing ones left out)."""
    found = {name: installed_version(name) for name in names}
    return {name: version for name, version in found.items() if version is not None}


def git_state(folder: Path | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` when ``folder`` is inside a git work tree, else None."""
    cwd = folder or Path.cwd()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def environment() -> dict[str, Any]:
    """The environment record of a run."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": package_versions(),
        "git": git_state(),
    }
