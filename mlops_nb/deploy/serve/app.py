"""The scoring server's ASGI app (Starlette on uvicorn): ``POST /invocations``, ``GET /ping``,
``/health`` and ``/version``. It predicts through the version's compiled scorer alone
(:meth:`mlops_nb.deploy.scorer.Scorer.scores`, the arrays behind the table that
``mlops_nb.deploy.predict.predict`` and ``load_model``'s ``predict`` give: the same schema check,
features.py and columns), compiled when the version was loaded.

Starlette rather than FastAPI: the server has four fixed routes and reads its bodies by hand (the
MLflow protocol is four payload shapes and CSV, which a pydantic model would only re-describe), so
FastAPI would add pydantic and its import time and per-request validation for nothing. Starlette is
the layer FastAPI is built on; MLflow's own server uses FastAPI, and clients cannot tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from mlops_nb.deploy.serve.batch import Batcher
from mlops_nb.deploy.serve.monitor import Monitor
from mlops_nb.deploy.serve.protocol import BadRequest, answer, columns_named, parse
from mlops_nb.deploy.serve.served import Holder, Served
from mlops_nb.errors import MlopsError, SchemaMismatch

#: Payloads up to this many rows share model calls with the requests arriving beside them
#: (:mod:`~mlops_nb.deploy.serve.batch`); larger ones are scored alone in the thread pool. Either way
#: the model runs off the event loop, so /ping keeps answering.
BATCH_ROWS = 256
CONFIG_VAR = "MLOPS_NB_SERVE_CONFIG"


def _json(body: Mapping[str, Any], status: int = 200) -> Any:
    from starlette.responses import Response

    return Response(json.dumps(body, default=str), status_code=status, media_type="application/json")


def _error(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, default=str).encode()


class _Endpoint:
    """An ASGI callable as a Starlette route's endpoint (Starlette then answers 405 for other methods)."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.handler(scope, receive, send)


class _Gone(Exception):  # noqa: N818 - the client closed the connection before sending its body
    pass


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _content_type(scope: Any) -> str | None:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1")
    return None


def create_app(holder: Holder, monitor: Monitor | None = None) -> Any:
    """The ASGI app serving ``holder``'s package, recording into ``monitor`` (None: no monitoring).

    ``POST /invocations`` is answered by a plain ASGI function in front of Starlette: a single-row
    request is mostly overhead around the model, and Starlette's middleware, routing, ``Request``
    and ``Response`` objects are a tenth of a millisecond of it. Everything else (the lifespan,
    ``/ping``, ``/health``, ``/version``, 404 and 405 answers) is Starlette's."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response
    from starlette.routing import Route

    stop = threading.Event()
    batcher = Batcher()
    in_flight = [0]  # requests being answered (the event loop's thread alone changes it)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):
        settle()
        poller = threading.Thread(target=holder.poll, args=(stop,), name="mlops-nb-current", daemon=True)
        poller.start()
        if monitor is not None:
            monitor.start()
        try:
            yield
        finally:
            stop.set()
            if monitor is not None:
                await run_in_threadpool(monitor.stop)

    async def ping(request: Any) -> Any:
        return Response("\n", media_type="application/json")

    async def version(request: Any) -> Any:
        return _json(holder.served.version())

    def predict_frame(served: Served, frame: Any, probabilities: bool) -> tuple[Served, Any]:
        try:
            return served, served.compiled().scores(frame, probabilities=probabilities)
        except SchemaMismatch:
            raise
        except (OSError, MlopsError):
            if holder.served is served:
                raise
            # the version this request started on was pruned by a promotion mid-way: the new one answers
            served = holder.served
            return served, served.compiled().scores(frame, probabilities=probabilities)

    async def invocations(scope: Any, receive: Any, send: Any) -> None:
        in_flight[0] += 1
        try:
            status, body = await invoke(scope, receive)
        except _Gone:
            return
        finally:
            in_flight[0] -= 1
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    async def invoke(scope: Any, receive: Any) -> tuple[int, bytes]:
        started = time.perf_counter()
        served = holder.served  # this request's version, whatever a switch does meanwhile
        frame = labels = body = content_type = None
        status = 200
        try:
            body = await _body(receive)
            content_type = _content_type(scope)
            frame, params = parse(body, content_type, served.input_columns, served.compiled().floats)
            wanted = bool(params.get("probabilities"))
            if len(frame) > BATCH_ROWS:
                served, (labels, proba) = await run_in_threadpool(predict_frame, served, frame, wanted)
            else:
                await asyncio.sleep(0)  # requests that arrived beside this one start, and count
                if in_flight[0] == 1 and batcher.idle():
                    # alone: scored here, on the event loop, sparing the thread hop; requests that
                    # arrive meanwhile wait in the socket and will find company
                    served, (labels, proba) = predict_frame(served, frame, wanted)
                else:
                    labels, proba = await batcher.score(served, frame, wanted)
            answered = answer(labels, proba, served.compiled().probabilities, params)
        except _Gone:
            raise
        except BadRequest as exc:
            status, answered, labels = exc.status, _error(exc.body()), None
        except SchemaMismatch as exc:
            status, answered, labels = 400, _error(BadRequest(str(exc), columns_named(exc.problems)).body()), None
        except Exception as exc:  # a defect or a model that cannot answer: 500, counted as an error
            status, labels = 500, None
            answered = _error({"error_code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {str(exc)[:300]}"})
        if monitor is not None:
            monitor.record(served, time.perf_counter() - started, frame=frame, body=body,
                           content_type=content_type, predictions=labels, status=status)
        return status, answered

    starlette = Starlette(routes=[
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/invocations", _Endpoint(invocations), methods=["POST"]),
    ], lifespan=lifespan)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/invocations":
            await invocations(scope, receive, send)
        else:
            await starlette(scope, receive, send)

    return app


def settle() -> None:
    """Move everything loaded so far (pandas, scikit-learn, the model) out of the garbage
    collector's sight: a full collection then scans only what requests allocate, not the whole
    loaded library (measured: about 15% less CPU per single-row request). Called at start; a version
    switch (``Holder.check``) only freezes, since a full collection there would pause requests in
    flight. Freed objects are still freed by their reference counts."""
    import gc

    gc.collect()
    gc.freeze()


def build(config: Mapping[str, Any]) -> Any:
    """The app for a ``serve`` configuration (``package``, ``store``, ``public_key``, ``monitor``,
    ``log_rows``): verify and load the package, open the store for monitoring. A server process
    reads no docstrings, so scipy is imported without its tables (:mod:`mlops_nb.deploy.scipy_docs`)."""
    from mlops_nb.deploy.scipy_docs import skip_docstring_tables

    skip_docstring_tables()
    holder = Holder(config["package"], store=_anchor(config.get("store")), public_key=config.get("public_key"))
    monitor = None
    if config.get("monitor", True):
        monitor = Monitor(_writer(config.get("store"), holder.served.manifest), log_rows=config.get("log_rows") or 0)
    return create_app(holder, monitor)


def _anchor(store: str | None) -> Any:
    """The store verification compares with: the one given, else the package's own (verify's default)."""
    return store or os.environ.get("MLOPS_NB_STORE") or None


def _writer(store: str | None, manifest: Mapping[str, Any]) -> Any:
    """What the monitor calls with each minute: tracking's writer into the serving store (``--store``,
    else ``$MLOPS_NB_STORE``, else the store the package was exported from, as retraining does)."""
    from mlops_nb import tracking  # noqa: F401 - the package, so tracking.serving resolves
    from mlops_nb.tracking.serving import record_minute

    target = store or os.environ.get("MLOPS_NB_STORE") or manifest.get("store")

    def write(row: dict[str, Any], rows_csv: bytes | None) -> None:
        if not target:
            raise MlopsError("no store to record in: pass --store or set MLOPS_NB_STORE")
        record_minute(row, rows_csv=rows_csv, store=target)

    return write


def from_environment() -> Any:
    """uvicorn's factory for ``--workers N``: each worker builds the app from ``$MLOPS_NB_SERVE_CONFIG``."""
    return build(json.loads(os.environ[CONFIG_VAR]))
