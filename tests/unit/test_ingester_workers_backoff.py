"""A worker backing off after failed claims is woken by newly queued work.

After a database outage the backoff grows to a minute; a row queued meanwhile means
the database answers again, so it must not wait out the rest of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

from videoimport_eventlog.retry import RetryPolicy
from videoimport_ingester.handlers import Ingester
from videoimport_ingester.settings import Settings
from videoimport_ingester.workers import Workers

from tests.polling import eventually

LONG_BACKOFF = RetryPolicy(attempts=5, base=60.0, factor=1.0, max_delay=60.0, jitter=0.0)


class DownPool:
    """A pool whose database is away: every acquire fails, counted per caller."""

    def __init__(self) -> None:
        self.claims = 0

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        task = asyncio.current_task()
        if task is not None and "_work" in task.get_coro().__qualname__:  # type: ignore[union-attr]
            self.claims += 1
        raise ConnectionRefusedError("the database is away")
        yield  # pragma: no cover


class FakeIngester:
    def __init__(self, pool: DownPool) -> None:
        self.pool = pool
        self.uploader = None


async def test_queued_work_wakes_a_worker_out_of_its_outage_backoff() -> None:
    pool = DownPool()
    settings = Settings(ingester_concurrency=1, shutdown_grace=1.0)
    workers = Workers(cast(Ingester, FakeIngester(pool)), settings, LONG_BACKOFF)
    stop = asyncio.Event()
    running = asyncio.create_task(workers.run(stop))
    try:
        await eventually(lambda: _at_least(pool, 1), "the first claim to fail", within=10)
        # The failed claim put the worker in its 60 s backoff before it yielded.
        workers.wake()
        await eventually(lambda: _at_least(pool, 2), "the woken worker to claim again", within=10)
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)


async def _at_least(pool: DownPool, claims: int) -> bool:
    return pool.claims >= claims
