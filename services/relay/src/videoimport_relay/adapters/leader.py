"""Leader election by a session-level PostgreSQL advisory lock.

Only one relay may publish at a time, or two instances would interleave the
log on Kafka. The lock lives as long as the session of one dedicated
connection: if that connection dies, PostgreSQL releases the lock and a standby
takes over, and every later query of the old leader fails, so it stops.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

# Distinct from the migration (7_110_001) and append (7_110_002) locks.
RELAY_LEADER_LOCK = 7_110_010


async def try_lead(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LEADER_LOCK))


async def wait_for_leadership(
    dsn: str, stop: asyncio.Event, retry_interval: float
) -> asyncpg.Connection | None:
    """A connection that holds the leader lock, or None once ``stop`` is set."""
    while not stop.is_set():
        conn: asyncpg.Connection = await asyncpg.connect(dsn)
        try:
            while not stop.is_set():
                if await try_lead(conn):
                    return conn
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), retry_interval)
        except BaseException:
            await conn.close()
            raise
        await conn.close()
    return None
