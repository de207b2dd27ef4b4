"""Concurrent requests share one model call.

A scikit-learn model costs about as much for one row as for a few dozen (a ``ColumnTransformer``
spends milliseconds on its own bookkeeping per call), so a server that calls it once per request
spends its time in that overhead when many clients send single rows. Here the model runs off the
event loop, one call at a time; the requests that arrive while it is busy wait, and the next call
takes them all (:meth:`~mlops_nb.deploy.scorer.Scorer.scores_many`: each request's rows are still
checked and turned into model input on their own, so a bad request fails alone, with its own 400).
A request that finds the model idle is scored at once: a lone client never waits for a batch (the
app scores a request that is alone on the event loop itself, sparing the thread hop).
"""

from __future__ import annotations

import asyncio
from typing import Any

#: At most this many requests share one model call.
MAX_BATCH = 64


class Batcher:
    """The queue of small requests waiting for the model, and the one task calling it."""

    def __init__(self) -> None:
        self._queue: list[tuple[Any, Any, bool, asyncio.Future]] = []
        self._running = False

    def idle(self) -> bool:
        """Whether no model call is running or waiting."""
        return not self._running and not self._queue

    async def score(self, served: Any, frame: Any, probabilities: bool = False) -> Any:
        """The ``(predictions, probabilities)`` arrays for ``frame`` by ``served``'s version (its
        compiled scorer's :meth:`~mlops_nb.deploy.scorer.Scorer.scores`; probabilities None unless
        wanted); raises what that call would raise for it."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((served, frame, probabilities, future))
        if not self._running:
            self._running = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        from starlette.concurrency import run_in_threadpool

        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    results = await run_in_threadpool(score_batch, [(s, f, p) for s, f, p, _ in batch])
                except Exception as exc:  # a defect: every request of the batch gets it (500)
                    results = [exc] * len(batch)
                for (_, _, _, future), result in zip(batch, results, strict=True):
                    if future.done():  # the client went away
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._running = False


def score_batch(batch: list[tuple[Any, Any, bool]]) -> list[Any]:
    """Each ``(served, frame, probabilities wanted)``'s ``(predictions, probabilities)`` or
    exception; the frames of one version in one model call (a switch between two requests gives two
    calls), with probabilities when any of them wants them."""
    results: list[Any] = [None] * len(batch)
    groups: dict[int, tuple[Any, list[int]]] = {}
    for i, (served, _, _) in enumerate(batch):
        groups.setdefault(id(served), (served, []))[1].append(i)
    for served, indices in groups.values():
        outcomes = served.compiled().scores_many([batch[i][1] for i in indices],
                                                 probabilities=any(batch[i][2] for i in indices))
        for i, outcome in zip(indices, outcomes, strict=True):
            results[i] = outcome
    return results
