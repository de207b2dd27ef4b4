"""Recording what a scoring server saw: ``mlops_nb.deploy.serve`` calls :func:`record_minute` once
per minute per server process, from its flush thread, never from a request."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mlops_nb.store import Store, open_store
from mlops_nb.store.writer import Writer


def record_minute(minute: Mapping[str, Any], *, rows_csv: bytes | None = None,
                  store: str | os.PathLike | Store | None = None) -> int:
    """Record one minute of serving (a ``serving`` row) and return its id.

    ``minute``: ``package`` (absolute root), ``version_dir``, ``model_name``, ``model_version``,
    ``run_id`` (the package's notebook run), ``minute`` (window start, epoch seconds), ``seconds``,
    ``requests``, ``rows``, ``errors``, ``bad_requests``, ``latency_p50`` / ``p90`` / ``p99`` /
    ``max`` (milliseconds), ``predictions`` (the distribution, JSON-safe), ``drift`` (the sketch),
    ``drift_share``, ``drifted``, ``logged_rows``. ``rows_csv``: the rows logged that minute, kept
    as a content-addressed file in the artifact folder and named by the row.
    """
    writer = Writer(open_store(store))
    stored = writer.put_bytes(rows_csv) if rows_csv else None
    return writer.add_serving_minute(minute, stored)
