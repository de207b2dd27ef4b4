"""Run a retraining job with pauses at the moments where a crash matters, for the kill -9 tests.

    python tests/faults.py DELAY SCRIPT [ARGS ...]

runs ``SCRIPT`` (an exported ``retrain.py``) as ``__main__`` after wrapping the functions that
mark those moments: each announces ``mlops-nb fault point: NAME`` on stderr and sleeps ``DELAY``
seconds, so a test can kill the job exactly there. The product carries no such hook: the wrapping
happens here, in the test's own process, around mlops-nb's real functions.

The moments: ``fit`` (before the candidate is fitted), ``write FILE`` (after each file of a new
version is written and fsynced), ``swap`` / ``swapped`` (around the atomic replace of ``current``),
``record register`` (the candidate registered), ``record manifest`` (the new version signed and
recorded), ``record promote`` (before the registry's champion moves), ``record end`` (inside the
transaction that ends the run, before the end is written).
"""

from __future__ import annotations

import functools
import os
import runpy
import sys
import time
from pathlib import Path


def announce(name: str, delay: float) -> None:
    print(f"mlops-nb fault point: {name}", file=sys.stderr, flush=True)
    time.sleep(delay)


def before(owner: object, attribute: str, name: str, delay: float) -> None:
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        announce(name, delay)
        return original(*args, **kwargs)

    setattr(owner, attribute, wrapped)


def after(owner: object, attribute: str, name: str, delay: float) -> None:
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        announce(name, delay)
        return result

    setattr(owner, attribute, wrapped)


def install(delay: float) -> None:
    from mlops_nb.deploy import layout
    from mlops_nb.deploy.retrain import job, records
    from mlops_nb.store import writer

    before(job.Job, "_fit", "fit", delay)
    after(records, "register_candidate", "record register", delay)
    after(records, "seal_version", "record manifest", delay)
    before(records, "promote_champion", "record promote", delay)
    before(writer.Writer, "end_run", "record end", delay)

    write_synced = layout.write_synced

    def write_and_announce(path: Path, data: bytes) -> None:
        write_synced(path, data)
        # a version is written under versions/.v0003.tmp-<random>/: name the file as the version holds it
        parts = Path(path).parts
        temporary = [i for i, part in enumerate(parts) if part.startswith(".v") and ".tmp-" in part]
        if temporary:
            announce(f"write {'/'.join(parts[temporary[-1] + 1:])}", delay)

    layout.write_synced = write_and_announce

    replace = os.replace

    def replace_and_announce(src, dst, *args, **kwargs):
        swapping = Path(os.fspath(dst)).name == layout.CURRENT
        if swapping:
            announce("swap", delay)
        result = replace(src, dst, *args, **kwargs)
        if swapping:
            announce("swapped", delay)
        return result

    os.replace = replace_and_announce


def main(argv: list[str]) -> None:
    delay, script, *args = argv
    install(float(delay))
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
