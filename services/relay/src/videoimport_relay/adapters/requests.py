"""The relay's reading of requested videos for reconciliation (see ``handlers.reconcile``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from videoimport_relay.domain import Open

PAGE = 500


async def open_requests(
    conn: asyncpg.Connection, after_position: int, up_to: int, older_than: timedelta
) -> list[Open]:
    """Requests after ``after_position`` (and published: at most ``up_to``) recorded
    before ``older_than`` ago, in log order."""
    rows = await conn.fetch(
        "SELECT e.position, e.event_id, r.times, r.last_at,"
        " EXISTS (SELECT 1 FROM events t WHERE t.stream_id = e.stream_id"
        "         AND t.stream_version = 1) AS terminal"
        " FROM events e LEFT JOIN republished_requests r ON r.event_id = e.event_id"
        " WHERE e.event_type = 'VideoImportRequested' AND e.position > $1 AND e.position <= $2"
        " AND e.recorded_at < clock_timestamp() - $3::interval"
        " ORDER BY e.position LIMIT $4",
        after_position,
        up_to,
        older_than,
        PAGE,
    )
    return [
        Open(
            position=r["position"],
            event_id=r["event_id"],
            terminal=r["terminal"],
            times=r["times"] or 0,
            last_at=r["last_at"],
        )
        for r in rows
    ]


async def mark_republished(conn: asyncpg.Connection, rows: Sequence[Open], now: datetime) -> None:
    await conn.executemany(
        "INSERT INTO republished_requests (event_id, position, times, last_at)"
        " VALUES ($1, $2, 1, $3) ON CONFLICT (event_id) DO UPDATE"
        " SET times = republished_requests.times + 1, last_at = EXCLUDED.last_at",
        [(r.event_id, r.position, now) for r in rows],
    )


async def forget_finished(conn: asyncpg.Connection, through: int) -> None:
    await conn.execute("DELETE FROM republished_requests WHERE position <= $1", through)
