"""What a server records per minute, without a request ever waiting on SQLite.

Each request adds its latency, row count and outcome to the current window under a lock, keeps its
predicted labels as the model's array (up to :data:`PREDICTION_ROWS` rows) and offers its body to a
reservoir of at most :data:`KEEP_REQUESTS` requests (a uniform sample of the window's requests): a
few appends and one random draw, whatever the traffic (O(1) per request; no table is built, no
probability computed for monitoring's sake). The reservoir keeps the request's body as it came,
the bytes and their content type, not the DataFrame read from it: holding a body costs nothing,
while a frame is dozens of objects the garbage collector tracks (a thousand one-row mixed-type
frames surviving into the oldest generation once cost ~20% of a server's throughput), and turning
one into untracked arrays cost 65 us a request on the mixed-type package, ~3% of its CPU, for
frames the reservoir mostly dropped again. A flush thread wakes at each window's end (the clock
minute; ``MLOPS_NB_SERVE_FLUSH`` seconds for tests), swaps the window for an empty one, and only
then computes the summary on what it buffered: latency percentiles, the label counts (all of the
window's predictions, one array concatenation), the kept bodies read again into one table
(:func:`mlops_nb.deploy.serve.protocol.tables`), a drift sketch of those inputs against the
package's reference with :mod:`mlops_nb.drift` and, for a binary classifier, the PSI of its
scores, which the flush computes in one model call on those inputs rather than on every request.
It writes one ``serving`` row through :func:`mlops_nb.tracking.serving.record_minute`. The last
window is flushed at shutdown. A window without requests writes nothing. A store that cannot be
written costs one line on stderr per window, never a request.
"""

from __future__ import annotations

import io
import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_nb.deploy.serve.protocol import tables
from mlops_nb.deploy.serve.served import Served

FLUSH_VAR = "MLOPS_NB_SERVE_FLUSH"
#: Input rows a window's drift sketch uses at most (a busier minute uses a uniform sample of them).
DRIFT_ROWS = 20_000
#: Requests a window keeps for its drift sketch: a uniform sample of its requests (reservoir).
KEEP_REQUESTS = 1_000
#: Predictions a window keeps for its distribution.
PREDICTION_ROWS = 100_000


@dataclass
class Window:
    start: float
    served: Served | None = None
    requests: int = 0
    rows: int = 0
    errors: int = 0
    bad_requests: int = 0
    latencies: list[float] = field(default_factory=list)
    bodies: list[tuple[bytes, str | None]] = field(default_factory=list)  # the reservoir: (body, content type)
    offered: int = 0  # requests offered to the reservoir
    predictions: list[Any] = field(default_factory=list)
    prediction_rows: int = 0
    logged: list[tuple[Any, Any]] = field(default_factory=list)  # sample() of logged rows with served_at


class Monitor:
    """The per-minute buffer of one server process and its flush thread."""

    def __init__(self, write: Callable[[dict[str, Any], bytes | None], Any], *, log_rows: float = 0.0,
                 interval: float | None = None):
        self.write = write
        self.log_rows = float(log_rows)
        self.interval = float(interval or os.environ.get(FLUSH_VAR) or 60.0)
        self._lock = threading.Lock()
        self._window = Window(self._window_start(time.time()))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._random = random.Random()

    def _window_start(self, now: float) -> float:
        return math.floor(now / self.interval) * self.interval

    # -- the request side: cheap -------------------------------------------------------------------

    def record(self, served: Served, latency_s: float, *, frame: Any = None, body: bytes | None = None,
               content_type: str | None = None, predictions: Any = None, status: int = 200) -> None:
        """Count one request (``status`` 200, 4xx bad request, 5xx error) and keep what the summary
        needs: ``frame`` is the table read from ``body`` (of ``content_type``), ``predictions`` the
        model's array of predictions for it."""
        logged = None
        if frame is not None and self.log_rows > 0 and status == 200:
            logged = frame.sample(frac=self.log_rows, random_state=self._random.randrange(2**31)) \
                if self.log_rows < 1 else frame
        with self._lock:
            w = self._window
            w.served = served
            w.requests += 1
            w.latencies.append(latency_s)
            if status >= 500:
                w.errors += 1
            elif status >= 400:
                w.bad_requests += 1
            if frame is None or status != 200:
                return
            n = len(frame)
            w.rows += n
            if body is not None:
                w.offered += 1
                if len(w.bodies) < KEEP_REQUESTS:
                    w.bodies.append((body, content_type))
                else:
                    slot = self._random.randrange(w.offered)
                    if slot < KEEP_REQUESTS:
                        w.bodies[slot] = (body, content_type)
            if predictions is not None and w.prediction_rows < PREDICTION_ROWS:
                # the array itself: the flush concatenates them in one call
                w.predictions.append(predictions)
                w.prediction_rows += n
            if logged is not None and len(logged):
                w.logged.append(sample(logged.assign(served_at=time.time())))

    # -- the flush side ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mlops-nb-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and flush what is buffered (server shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()

    def _run(self) -> None:
        while True:
            with self._lock:
                due = self._window.start + self.interval
            if self._stop.wait(max(0.0, due - time.time())):
                return
            self.flush()

    def flush(self) -> dict[str, Any] | None:
        """Write the current window (when it saw requests) and start the next; returns what was written."""
        now = time.time()
        with self._lock:
            window, self._window = self._window, Window(self._window_start(now))
        if not window.requests or window.served is None:
            return None
        try:
            row, rows_csv = summarize(window, now)
            self.write(row, rows_csv)
            return row
        except Exception as exc:  # monitoring never takes the server down
            stamp = time.strftime("%H:%M:%S", time.localtime(window.start))
            sys.stderr.write(f"mlops-nb serve: could not record the minute from {stamp} ({type(exc).__name__}: "
                             f"{exc}); it is lost, serving goes on\n")
            return None


def _percentiles(latencies: list[float]) -> dict[str, float]:
    import numpy as np

    ms = np.asarray(latencies) * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"latency_p50": float(p50), "latency_p90": float(p90), "latency_p99": float(p99),
            "latency_max": float(ms.max())}


def summarize(window: Window, now: float) -> tuple[dict[str, Any], bytes | None]:
    """The ``serving`` row of a window and the CSV of its logged rows."""
    import numpy as np
    import pandas as pd

    served = window.served
    assert served is not None
    model = served.manifest.get("model") or {}
    root = served.folder.parent.parent if served.folder.parent.name == "versions" else served.folder
    row: dict[str, Any] = {
        "package": str(root), "version_dir": served.folder.name, "model_name": model.get("name"),
        "model_version": model.get("version"), "run_id": (served.manifest.get("run") or {}).get("id"),
        "minute": window.start, "seconds": max(now - window.start, 0.0), "requests": window.requests,
        "rows": window.rows, "errors": window.errors, "bad_requests": window.bad_requests,
        **_percentiles(window.latencies),
    }
    groups = [_at_most(table) for table in tables(window.bodies, served.input_columns, served.compiled().floats)]
    if window.predictions:
        labels = np.concatenate(window.predictions, axis=None)  # axis=None: each flattened, in one call
        row["predictions"] = prediction_distribution(served, labels, groups)
    if groups:
        inputs = groups[0] if len(groups) == 1 else _at_most(pd.concat(groups, ignore_index=True))
        row.update(drift_sketch(served, inputs))
    rows_csv = None
    if window.logged:
        logged = pd.concat(stack(window.logged), ignore_index=True)
        row["logged_rows"] = len(logged)
        buffer = io.StringIO()
        logged.to_csv(buffer, index=False)
        rows_csv = buffer.getvalue().encode()
    return row, rows_csv


def _at_most(table: Any) -> Any:
    """``table``, or a uniform sample of :data:`DRIFT_ROWS` of its rows."""
    return table.sample(DRIFT_ROWS, random_state=0) if len(table) > DRIFT_ROWS else table


def sample(frame: Any) -> tuple[Any, Any]:
    """What a window keeps of a frame of logged rows (``--log-rows``): its column names (a tuple)
    and its values as one array (float64 when every column is, else objects), neither tracked by
    the garbage collector; a frame whose column names repeat is kept as it is (``(None, frame)``)."""
    import numpy as np

    columns = tuple(frame.columns.tolist())
    if len(set(columns)) != len(columns):
        return None, frame
    if all(isinstance(d, np.dtype) and d.kind == "f" and d.itemsize == 8 for d in frame.dtypes.tolist()):
        # all floats (the quickstart's 30 columns): one float copy, not a Python float per value
        # (a 1,000-row request's object array cost a millisecond); kind and size, not dtype.name,
        # which numpy computes in Python (0.1 ms for 30 columns, 10% of a quickstart request)
        return columns, frame.to_numpy(dtype=np.float64, copy=True)
    return columns, frame.to_numpy(dtype=object)


def stack(samples: list[tuple[Any, Any]]) -> list[Any]:
    """The kept logged rows (:func:`sample`) as one table per set of columns (nearly always one):
    the values of each set stacked in one array, each column's dtype inferred again from its values
    (a column that came as ints in one request and floats in another is floats). ``pd.concat`` of a
    thousand one-row frames would spend its time comparing them (hundreds of ms)."""
    import numpy as np
    import pandas as pd

    arrays: dict[tuple, list[Any]] = {}
    whole: dict[tuple, list[Any]] = {}  # frames whose column names repeat, kept as they came
    for columns, values in samples:
        if columns is None:
            whole.setdefault(tuple(values.columns.tolist()), []).append(values)
        else:
            arrays.setdefault(columns, []).append(values)
    made = [pd.DataFrame(np.concatenate(group), columns=list(columns)).infer_objects()
            for columns, group in arrays.items()]
    return made + [pd.concat(group, ignore_index=True) for group in whole.values()]


def prediction_distribution(served: Served, labels: Any, inputs: list[Any] = ()) -> dict[str, Any]:
    """Counts per label (classifiers) or quantiles (regressors) of the window's predictions, and the
    PSI of its scores against the reference's when the package has one: a binary classifier's
    scores are its probabilities for the sampled input tables ``inputs``, computed here."""
    import numpy as np
    import pandas as pd

    from mlops_nb import drift

    values = pd.Series(labels)
    classes = getattr(served.model, "classes_", None)
    out: dict[str, Any]
    if classes is not None or values.dtype.kind in "OUSb" or not pd.api.types.is_numeric_dtype(values.dtype):
        counts = values.astype(str).value_counts()
        out = {"kind": "labels", "counts": {str(k): int(v) for k, v in counts.items()}}
    else:
        q = np.nanpercentile(values.to_numpy(dtype=float), [0, 10, 50, 90, 100])
        out = {"kind": "numeric", "mean": float(np.nanmean(values)), "min": float(q[0]), "p10": float(q[1]),
               "p50": float(q[2]), "p90": float(q[3]), "max": float(q[4])}
    reference = (served.reference or {}).get("scores")
    if reference:
        try:
            scores = _probabilities(served, inputs) if classes is not None and len(classes) == 2 else None
            if scores is None:
                scores = values.to_numpy(dtype=float) if classes is None else values.astype(str).to_numpy()
            result = drift.prediction_drift(reference, scores)
            out["drift"] = {"statistic": result.statistic, "value": result.value, "verdict": result.verdict}
        except Exception as exc:  # a reference of another shape: say so, keep the counts
            out["drift"] = {"error": str(exc)[:200]}
    return out


def _probabilities(served: Served, inputs: list[Any]) -> Any:
    """A binary classifier's probability of its second class for the rows of ``inputs`` (None
    when there are none, or the model gives no probabilities)."""
    import numpy as np

    scores = []
    for table in inputs:
        _, proba = served.compiled().scores(table)
        if proba is None:
            return None
        scores.append(proba[:, 1])
    return np.concatenate(scores) if scores else None


def drift_sketch(served: Served, frame: Any) -> dict[str, Any]:
    """The drift of the window's inputs against the package's reference profile, on the columns
    both have: per column its statistic, value and verdict (``drift``), the share of drifted columns
    and their names."""
    from mlops_nb import drift

    reference = served.reference
    if not reference or "columns" not in reference:
        return {}
    profiled = reference["columns"]
    columns = [str(c) for c in frame.columns if str(c) in profiled]
    if not columns:
        return {}
    frame = frame.rename(columns=str)
    report = drift.dataset_drift(reference, frame, columns=columns, config={"threads": 1})
    sketch = {c.column: {"kind": c.kind, "statistic": c.statistic, "value": c.value, "verdict": c.verdict}
              for c in report.columns}
    return {"drift": sketch, "drift_share": report.share, "drifted": list(report.drifted)}
