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
    " mime_type, storage_key, size, sha256, media_info::text AS media_info, poster_key"
)


def _record(row: asyncpg.Record | dict[str, Any] | None) -> MediaRecord | None:
    if row is None:
        return None
    values: dict[str, Any] = dict(row)
    values["metadata"] = msgspec.json.decode(values["metadata"])
    if values["media_info"] is not None:
        values["media_info"] = msgspec.json.decode(values["media_info"])
    return msgspec.convert(values, MediaRecord)


class Loaded(msgspec.Struct, frozen=True, kw_only=True):
    """What a request's decision starts from, read in one round trip."""

    handled: bool
    """The inbox has the request: it was handled before."""
    config: str | None
    """The project's config as stored (None: no such project)."""
    existing: MediaRecord | None


# The inbox (``tracking.was_handled``), the project's config and the registry row,
# as one statement: three lookups by key a request makes before anything else.
_LOAD = (
    "SELECT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND message_id = $2) AS handled,"
    " (SELECT config::text FROM projects WHERE name = $3) AS config, m.*"
    f" FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT {_COLUMNS} FROM media"
    "  WHERE project = $3 AND system_name = $4 AND external_id = $5) AS m ON true"
)


async def load(
    conn: asyncpg.Connection,
    consumer: str,
    request_id: str,
    project: str,
    system_name: str,
    external_id: str,
) -> Loaded:
    row = await conn.fetchrow(_LOAD, consumer, request_id, project, system_name, external_id)
    assert row is not None  # one row whatever matches
    media = {k: v for k, v in row.items() if k not in ("handled", "config")}
    return Loaded(
        handled=row["handled"],
        config=row["config"],
        existing=None if media["media_id"] is None else _record(media),
    )


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
        " metadata, mime_type, storage_key, size, sha256, media_info, poster_key)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8, $9, $10, $11, $12::json, $13)"
        # No conflict target: media_id is derived from the key, so a concurrent insert
        # of the same video may trip either unique index first.
        " ON CONFLICT DO NOTHING RETURNING true",
        *_values(record),
    )
    return bool(inserted)


async def update(conn: asyncpg.Connection, record: MediaRecord) -> None:
    await conn.execute(
        "UPDATE media SET media_id = $4, url = $5, file_name = $6, metadata = $7::json,"
        " mime_type = $8, storage_key = $9, size = $10, sha256 = $11, media_info = $12::json,"
        " poster_key = $13, updated_at = now()"
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
        None if record.media_info is None else msgspec.json.encode(record.media_info).decode(),
        record.poster_key,
    )
