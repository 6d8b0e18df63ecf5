"""Follow the log from a position: read in order, wake up on NOTIFY.

Appends send ``pg_notify`` at commit, with the last position they took; a reader
waits for that or for a poll interval, whichever comes first (a notification can
be lost while the listening connection reconnects, the poll covers that).

Results trickle in one small transaction at a time; a reader that read after
every notification would apply one event per batch, paying a transaction per
event. When appends come closer together than ``burst_wait``, a wake-up therefore
waits up to that long for the rest of the burst (unless enough events are already
there); a lone append after a quiet spell is read at once.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import asyncpg

from videoimport_eventlog.store import NOTIFY_CHANNEL


class LogWakeup:
    """An asyncio event set whenever something is appended to the log."""

    def __init__(self, poll_interval: float = 1.0, burst_wait: float = 0.0) -> None:
        self._event = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._poll_interval = poll_interval
        self._burst_wait = burst_wait
        self.head = 0
        """The highest position a notification announced (0: none yet)."""
        self._last_append = -math.inf
        self._in_burst = False

    async def start(self, dsn: str) -> None:
        self._conn = await asyncpg.connect(dsn)
        await self._conn.add_listener(NOTIFY_CHANNEL, self._notified)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        # A payload that is not a position (another writer's) still wakes the reader.
        self.appended(int(payload) if payload.isdigit() else 0)

    def appended(self, position: int) -> None:
        """Something was appended, up to ``position`` (0: unknown)."""
        self.head = max(self.head, position)
        now = time.monotonic()
        self._in_burst = now - self._last_append < self._burst_wait
        self._last_append = now
        self._event.set()

    async def wait(self, after: int = 0, enough: int = 1) -> None:
        """Return after the next append, or after the poll interval.

        After an append that is part of a burst, wait up to ``burst_wait`` more for
        further appends, unless the notified head is already ``enough`` events
        beyond ``after``.
        """
        try:
            await asyncio.wait_for(self._event.wait(), self._poll_interval)
        except TimeoutError:
            return
        finally:
            self._event.clear()
        if not self._in_burst:
            return
        deadline = time.monotonic() + self._burst_wait
        while self.head - after < enough and (left := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(self._event.wait(), left)
            except TimeoutError:
                return
            finally:
                self._event.clear()


class LogHead:
    """The log's last position for a lag gauge: read at most once per ``interval``
    (a ``max(position)`` per batch was a statement per event), and in between the
    highest position notifications announced."""

    def __init__(self, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._read_at: float | None = None
        self._head = 0

    async def read(self, conn: asyncpg.Connection, notified: int = 0) -> int:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._interval:
            self._head = await conn.fetchval("SELECT COALESCE(max(position), 0) FROM events")
            self._read_at = now
        self._head = max(self._head, notified)
        return self._head
