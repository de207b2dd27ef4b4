"""Content-addressed artifact files in ``mlops-artifacts/`` beside the store: a file's name is its
SHA-256, so the same bytes are kept once. Only :mod:`mlops_nb.store.writer` puts files; rows that
point at them are its business too."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from mlops_nb.store.connection import ARTIFACTS_DIR

#: What :func:`put_stream` returns and artifact rows record: (sha256, size in bytes, path relative
#: to the store's folder).
Stored = tuple[str, int, str]


def put_file(store_dir: Path, source: Path) -> Stored:
    """Copy ``source`` into the artifact folder of the store in ``store_dir``."""
    with open(source, "rb") as stream:
        return put_stream(store_dir, stream)


def put_bytes(store_dir: Path, data: bytes) -> Stored:
    """Like :func:`put_file` for bytes already in memory (a serialised model, a manifest)."""
    return put_stream(store_dir, io.BytesIO(data))


def put_stream(store_dir: Path, stream: BinaryIO) -> Stored:
    """Write ``stream`` to a temporary file while hashing it (one pass), then rename it to its
    SHA-256: a reader never sees a half-written artifact, and the same bytes are kept once."""
    folder = store_dir / ARTIFACTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        sha = digest.hexdigest()
        relative = f"{ARTIFACTS_DIR}/{sha[:2]}/{sha}"
        target = store_dir / relative
        if target.exists():
            os.unlink(tmp)
        else:
            target.parent.mkdir(exist_ok=True)
            os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha, size, relative
