"""The ingester's media registry (``media``), read by the API's dry run, never written."""

from __future__ import annotations

import asyncpg
import msgspec
from videoimport_projects.media_decision import MediaRecord

_REGISTERED = (
    "SELECT project, system_name, external_id, media_id, url, file_name,"
    " metadata::text AS metadata, mime_type, storage_key, size, sha256"
    " FROM media WHERE project = $1 AND system_name = $2 AND external_id = ANY($3::text[])"
)


async def registered_media(
    conn: asyncpg.Connection, project: str, system_name: str, external_ids: list[str]
) -> dict[str, MediaRecord]:
    """The registry rows of the batch's videos, by external id (read-only)."""
    rows = await conn.fetch(_REGISTERED, project, system_name, external_ids)
    records: dict[str, MediaRecord] = {}
    for row in rows:
        values = dict(row)
        values["metadata"] = msgspec.json.decode(values["metadata"])
        records[values["external_id"]] = msgspec.convert(values, MediaRecord)
    return records
