"""The intake queues requests that arrive together with one insert, and a request that
cannot be queued fails alone. Real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest
from videoimport_events import Envelope
from videoimport_ingester.adapters.group_enqueue import GroupEnqueue

from .ingester_harness import Video, prepare_database, queued_tasks, request_import

pytestmark = pytest.mark.integration


class CountingPool:
    """The real pool, counting how often a connection is taken."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.acquired = 0

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        self.acquired += 1
        async with self.pool.acquire() as conn:
            yield conn


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[CountingPool]:
    await prepare_database(pg_dsn)
    real = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    try:
        yield CountingPool(real)
    finally:
        await real.close()


async def requests(pg_dsn: str, count: int) -> list[Envelope]:
    videos = [Video(f"http://127.0.0.1:9/{n}.mp4", external_id=f"v{n}") for n in range(count)]
    _, envelopes = await request_import(pg_dsn, *videos)
    return envelopes


async def test_requests_arriving_together_are_queued_with_few_inserts(
    pg_dsn: str, pool: CountingPool
) -> None:
    envelopes = await requests(pg_dsn, 300)
    group = GroupEnqueue(pool, largest=100)  # type: ignore[arg-type]
    queued = await asyncio.gather(*(group.enqueue(e) for e in envelopes))
    assert queued == [True] * 300
    assert pool.acquired <= 3  # groups of at most 100, not one insert per request
    rows = await queued_tasks(pg_dsn)
    assert sorted(r["event_id"] for r in rows) == sorted(e.id for e in envelopes)
    # Queued again: nothing new, each told so.
    again = await asyncio.gather(*(group.enqueue(e) for e in envelopes[:5]))
    assert again == [False] * 5


async def test_a_request_that_cannot_be_queued_fails_alone(pg_dsn: str, pool: CountingPool) -> None:
    envelopes = await requests(pg_dsn, 5)
    # PostgreSQL refuses a NUL in text: the group's insert fails because of this one.
    envelopes[2] = msgspec.structs.replace(envelopes[2], id="poison\x00id")
    group = GroupEnqueue(pool)  # type: ignore[arg-type]
    outcomes = await asyncio.gather(*(group.enqueue(e) for e in envelopes), return_exceptions=True)
    assert [o for i, o in enumerate(outcomes) if i != 2] == [True] * 4
    assert isinstance(outcomes[2], asyncpg.PostgresError)
    rows = await queued_tasks(pg_dsn)
    assert sorted(r["event_id"] for r in rows) == sorted(
        e.id for i, e in enumerate(envelopes) if i != 2
    )
