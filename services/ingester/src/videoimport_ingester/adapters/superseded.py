"""Media objects a re-import replaced, waiting to be deleted (``superseded_objects``).

Owned by the ingester. A row is written in the transaction that points the
registry at the new object; the sweeper deletes the old object once
``delete_after`` has passed and then the row (with its ``MediaObjectDeleted``).
"""

from __future__ import annotations

import asyncpg
import msgspec
from videoimport_projects.media_decision import MediaRecord


class Superseded(msgspec.Struct, frozen=True, kw_only=True):
    storage_key: str
    project: str
    media_id: str
    system_name: str
    external_id: str


async def record(conn: asyncpg.Connection, old: MediaRecord, grace: float) -> None:
    """Remember ``old``'s object and its poster; deleted after ``grace`` seconds (never
    if <= 0). The poster is a row of its own: the sweeper deletes (and records) each."""
    keys = [old.storage_key] if old.poster_key is None else [old.storage_key, old.poster_key]
    await conn.execute(
        "INSERT INTO superseded_objects (storage_key, project, media_id, system_name,"
        " external_id, delete_after)"
        " SELECT key, $2, $3, $4, $5,"
        " CASE WHEN $6::float8 > 0 THEN now() + make_interval(secs => $6::float8) END"
        " FROM unnest($1::text[]) AS key"
        " ON CONFLICT (storage_key) DO NOTHING",
        keys,
        old.project,
        old.media_id,
        old.system_name,
        old.external_id,
        grace,
    )


async def due(conn: asyncpg.Connection, limit: int) -> list[Superseded]:
    """Rows whose ``delete_after`` has passed, the oldest first."""
    rows = await conn.fetch(
        "SELECT storage_key, project, media_id, system_name, external_id"
        " FROM superseded_objects WHERE delete_after <= now()"
        " ORDER BY delete_after, storage_key LIMIT $1",
        limit,
    )
    return [Superseded(**dict(r)) for r in rows]


async def forget(conn: asyncpg.Connection, storage_key: str) -> None:
    await conn.execute("DELETE FROM superseded_objects WHERE storage_key = $1", storage_key)
