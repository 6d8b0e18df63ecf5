"""Follow the log from a position: read in order, wake up on NOTIFY.

Appends send ``pg_notify`` at commit; a reader waits for that or for a poll
interval, whichever comes first (a notification can be lost while the
listening connection reconnects, the poll covers that).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from videoimport_eventlog.store import NOTIFY_CHANNEL


class LogWakeup:
    """An asyncio event set whenever something is appended to the log."""

    def __init__(self, poll_interval: float = 1.0) -> None:
        self._event = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._poll_interval = poll_interval

    async def start(self, dsn: str) -> None:
        self._conn = await asyncpg.connect(dsn)
        await self._conn.add_listener(NOTIFY_CHANNEL, self._notified)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _notified(self, *_: Any) -> None:
        self._event.set()

    async def wait(self) -> None:
        """Return after the next append, or after the poll interval."""
        try:
            await asyncio.wait_for(self._event.wait(), self._poll_interval)
        except TimeoutError:
            pass
        self._event.clear()
