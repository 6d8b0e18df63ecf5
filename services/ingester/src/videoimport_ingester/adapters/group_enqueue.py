"""Requests queued together: one insert for every request waiting at that moment.

The intake's handlers each queue one request, many at once (a burst on the topic is
thousands). One insert per request made the intake the slowest step of a burst, and
every request of every tenant behind it on a partition waited for the burst to be
queued. Here a handler adds its request and awaits its own outcome; one flusher
inserts everything waiting in one statement, then whatever arrived meanwhile. When
a group insert fails, its requests are inserted one by one, so a request that cannot
be queued fails alone (its handler retries it, and isolates it in the end).
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from videoimport_events import Envelope

from videoimport_ingester.adapters import tasks

_Waiting = tuple[Envelope, "asyncio.Future[bool]"]


class GroupEnqueue:
    def __init__(self, pool: asyncpg.Pool, largest: int = 1000) -> None:
        self._pool = pool
        self._largest = largest
        self._waiting: list[_Waiting] = []
        self._flusher: asyncio.Task[None] | None = None

    async def enqueue(self, envelope: Envelope) -> bool:
        """Queue ``envelope``; False when it was queued already or handled before."""
        outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((envelope, outcome))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await outcome

    async def _flush(self) -> None:
        while self._waiting:
            group = self._waiting[: self._largest]
            del self._waiting[: self._largest]
            group = [(e, f) for e, f in group if not f.done()]  # a cancelled handler
            if not group:
                continue
            try:
                async with self._pool.acquire() as conn:
                    queued = await tasks.enqueue_many(conn, [e for e, _ in group])
            except Exception:
                await self._one_by_one(group)
                continue
            for envelope, outcome in group:
                if not outcome.done():
                    outcome.set_result(envelope.id in queued)

    async def _one_by_one(self, group: list[_Waiting]) -> None:
        for envelope, outcome in group:
            if outcome.done():
                continue
            try:
                async with self._pool.acquire() as conn:
                    queued = await tasks.enqueue(conn, envelope)
            except Exception as exc:
                with contextlib.suppress(asyncio.InvalidStateError):
                    outcome.set_exception(exc)
                continue
            with contextlib.suppress(asyncio.InvalidStateError):
                outcome.set_result(queued)
