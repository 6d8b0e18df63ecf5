"""The media registry: which videos a project has, in PostgreSQL (asyncpg).

Owned by the ingester. One row per (project, system name, external id), written
in the same transaction as the terminal event that reports the change.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from videoimport_projects.media_decision import MediaRecord

_COLUMNS = (
    "project, system_name, external_id, media_id, url, file_name, metadata::text AS metadata,"
    " mime_type, storage_key, size, sha256"
)


def _record(row: asyncpg.Record | None) -> MediaRecord | None:
    if row is None:
        return None
    values: dict[str, Any] = dict(row)
    values["metadata"] = msgspec.json.decode(values["metadata"])
    return msgspec.convert(values, MediaRecord)


async def find(
    conn: asyncpg.Connection,
    project: str,
    system_name: str,
    external_id: str,
    *,
    for_update: bool = False,
) -> MediaRecord | None:
    """The registered video; ``for_update`` holds its row until the transaction ends."""
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM media"
        f" WHERE project = $1 AND system_name = $2 AND external_id = $3{lock}",
        project,
        system_name,
        external_id,
    )
    return _record(row)


async def insert(conn: asyncpg.Connection, record: MediaRecord) -> bool:
    """Register a new video; False when someone registered it first."""
    inserted = await conn.fetchval(
        "INSERT INTO media (project, system_name, external_id, media_id, url, file_name,"
        " metadata, mime_type, storage_key, size, sha256)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8, $9, $10, $11)"
        # No conflict target: media_id is derived from the key, so a concurrent insert
        # of the same video may trip either unique index first.
        " ON CONFLICT DO NOTHING RETURNING true",
        *_values(record),
    )
    return bool(inserted)


async def update(conn: asyncpg.Connection, record: MediaRecord) -> None:
    await conn.execute(
        "UPDATE media SET media_id = $4, url = $5, file_name = $6, metadata = $7::json,"
        " mime_type = $8, storage_key = $9, size = $10, sha256 = $11, updated_at = now()"
        " WHERE project = $1 AND system_name = $2 AND external_id = $3",
        *_values(record),
    )


def _values(record: MediaRecord) -> tuple[Any, ...]:
    return (
        record.project,
        record.system_name,
        record.external_id,
        record.media_id,
        record.url,
        record.file_name,
        msgspec.json.encode(record.metadata).decode(),
        record.mime_type,
        record.storage_key,
        record.size,
        record.sha256,
    )
