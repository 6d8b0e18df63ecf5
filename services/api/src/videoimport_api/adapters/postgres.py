"""The API's queries: its idempotency keys and the (projector-owned) status read model."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec
from videoimport_events import MediaInfo, job_stream

from videoimport_api.domain.status import STARTED, JobRow, VideoRow, WebhookRow

VIDEO_COLUMNS = (
    "idx, system_name, external_id, state, reason, code, media_id, mime_type, storage_key,"
    " link_expired, size, sha256, media_info::text AS media_info, poster_key"
)
"""The ``status_videos`` columns a ``VideoRow`` is read from (``video_row``)."""

_media_info = msgspec.json.Decoder(MediaInfo)


def video_row(record: asyncpg.Record) -> VideoRow:
    """A ``status_videos`` row selected with ``VIDEO_COLUMNS``."""
    fields = dict(record)
    info = fields.pop("media_info", None)
    return VideoRow(**fields, media_info=None if info is None else _media_info.decode(info))


async def claim_idempotency_key(
    conn: asyncpg.Connection, project: str, key: str, request_sha256: str, job_id: str
) -> tuple[str, str] | None:
    """Record the key for ``job_id`` in the caller's transaction.

    Returns None when this request now owns the key, else the (request_sha256,
    job_id) it was first used with. Two concurrent first uses meet at the primary
    key: the second insert waits for the first transaction and then sees its row.
    """
    claimed = await conn.fetchval(
        "INSERT INTO idempotency_keys (project, key, request_sha256, job_id)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (project, key) DO NOTHING RETURNING true",
        project,
        key,
        request_sha256,
        job_id,
    )
    if claimed:
        return None
    row = await conn.fetchrow(
        "SELECT request_sha256, job_id FROM idempotency_keys WHERE project = $1 AND key = $2",
        project,
        key,
    )
    if row is None:
        # The row that blocked the insert is gone again: only possible if someone deletes keys.
        raise RuntimeError(f"idempotency key {key!r} vanished while being claimed")
    return row["request_sha256"], row["job_id"]


async def projected_status(
    conn: asyncpg.Connection, project: str, job_id: str
) -> tuple[JobRow, list[VideoRow]] | None:
    """The job and its videos from the read model; None if not projected (yet).

    Both reads see one snapshot: the projector (or a rebuild's swap) may commit
    between them, and a status must not pair a job row with another moment's videos.
    """
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            job = await projected_job(conn, project, job_id)
            if job is None:
                return None
            videos = []
            if job.state != STARTED:
                videos = await conn.fetch(
                    f"SELECT {VIDEO_COLUMNS} FROM status_videos WHERE job_id = $1 ORDER BY idx",
                    job_id,
                )
    except asyncpg.UndefinedTableError:
        # The projector creates its tables when it first starts; until then nothing is projected.
        return None
    return job, [video_row(v) for v in videos]


async def projected_job(conn: asyncpg.Connection, project: str, job_id: str) -> JobRow | None:
    """The job's ``status_jobs`` row; the caller chooses the snapshot."""
    job = await conn.fetchrow(
        "SELECT job_id, state, video_count, started_at, finished_at,"
        " success, skipped, failed, webhook_state, webhook_attempts,"
        " webhook_last_status, webhook_last_error,"
        " webhook_next_attempt_at, webhook_delivered_at"
        " FROM status_jobs WHERE job_id = $1 AND project = $2",
        job_id,
        project,
    )
    if job is None:
        return None
    return JobRow(
        job_id=job["job_id"],
        state=job["state"],
        video_count=job["video_count"],
        started_at=job["started_at"],
        finished_at=job["finished_at"],
        success=job["success"] or 0,
        skipped=job["skipped"] or 0,
        failed=job["failed"] or 0,
        webhook=_webhook(job),
    )


def _webhook(job: asyncpg.Record) -> WebhookRow | None:
    if job["webhook_state"] is None:
        return None
    return WebhookRow(
        state=job["webhook_state"],
        attempts=job["webhook_attempts"] or 0,
        last_status=job["webhook_last_status"],
        last_error=job["webhook_last_error"],
        next_attempt_at=job["webhook_next_attempt_at"],
        delivered_at=job["webhook_delivered_at"],
    )


async def requested_job(conn: asyncpg.Connection, project: str, job_id: str) -> JobRow | None:
    """The job as its ``ImportRequested`` event recorded it (the projector may lag)."""
    row = await conn.fetchrow(
        "SELECT occurred_at, (data->>'video_count')::int AS video_count FROM events"
        " WHERE stream_id = $1 AND stream_version = 0"
        " AND event_type = 'ImportRequested' AND project = $2",
        job_stream(job_id),
        project,
    )
    if row is None:
        return None
    started_at: datetime = row["occurred_at"]
    return JobRow(
        job_id=job_id, state=STARTED, video_count=row["video_count"], started_at=started_at
    )


async def ping(conn: asyncpg.Connection) -> None:
    await conn.fetchval("SELECT 1")
