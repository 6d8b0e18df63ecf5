"""The operator pages' read-only queries: the projector's read model and the event log.

Every query is scoped to the signed-in token's project; another project's job reads
as "no such job".
"""

from __future__ import annotations

from typing import Final

import asyncpg
from videoimport_events import job_stream

from videoimport_api.domain.listing import ListedJob
from videoimport_api.ui.pages import (
    JobPage,
    TimelineEntry,
    VideoLine,
    WebhookAttempt,
)

TIMELINE_CAP: Final = 2000
"""Events shown on a job page; a job has about three per video, so only huge ones hit it."""

_JOB_COLUMNS = (
    "job_id, system_name, state, video_count, started_at, finished_at, success, skipped, failed"
)


async def job_page(conn: asyncpg.Connection, project: str, job_id: str) -> JobPage | None:
    """The job, its videos, webhook attempts and events, all from one snapshot.

    None when the project has no such job (not even an ``ImportRequested`` yet)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        job = await _projected_job(conn, project, job_id) or await _requested_job(
            conn, project, job_id
        )
        if job is None:
            return None
        videos = await _videos(conn, project, job_id)
        attempts = await conn.fetch(
            "SELECT position, occurred_at, event_type = 'WebhookDelivered' AS delivered,"
            " (data->>'attempt')::int AS attempt, (data->>'status_code')::int AS status_code,"
            " data->>'error' AS error FROM events"
            " WHERE correlation_id = $1 AND project = $2"
            " AND event_type IN ('WebhookDelivered', 'WebhookDeliveryFailed')"
            " ORDER BY position",
            job_id,
            project,
        )
        events = await conn.fetch(
            "SELECT position, occurred_at, event_type, stream_id FROM events"
            " WHERE correlation_id = $1 AND project = $2 ORDER BY position LIMIT $3",
            job_id,
            project,
            TIMELINE_CAP + 1,
        )
    return JobPage(
        job=job,
        videos=videos,
        webhook_attempts=[WebhookAttempt(**dict(row)) for row in attempts],
        timeline=[TimelineEntry(**dict(row)) for row in events[:TIMELINE_CAP]],
        timeline_truncated=len(events) > TIMELINE_CAP,
    )


def _job(row: asyncpg.Record) -> ListedJob:
    return ListedJob(
        job_id=row["job_id"],
        system_name=row["system_name"],
        state=row["state"],
        video_count=row["video_count"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        success=row["success"] or 0,
        skipped=row["skipped"] or 0,
        failed=row["failed"] or 0,
    )


async def _projected_job(conn: asyncpg.Connection, project: str, job_id: str) -> ListedJob | None:
    try:
        async with conn.transaction():  # a savepoint: a missing table must not end the snapshot
            row = await conn.fetchrow(
                f"SELECT {_JOB_COLUMNS} FROM status_jobs WHERE job_id = $1 AND project = $2",
                job_id,
                project,
            )
    except asyncpg.UndefinedTableError:
        return None
    return None if row is None else _job(row)


async def _requested_job(conn: asyncpg.Connection, project: str, job_id: str) -> ListedJob | None:
    """The job as its ``ImportRequested`` recorded it, while the projector lags."""
    row = await conn.fetchrow(
        "SELECT occurred_at, data->>'system_name' AS system_name,"
        " (data->>'video_count')::int AS video_count FROM events"
        " WHERE stream_id = $1 AND stream_version = 0"
        " AND event_type = 'ImportRequested' AND project = $2",
        job_stream(job_id),
        project,
    )
    if row is None:
        return None
    return ListedJob(
        job_id=job_id,
        system_name=row["system_name"],
        state="started",
        video_count=row["video_count"],
        started_at=row["occurred_at"],
    )


async def _videos(conn: asyncpg.Connection, project: str, job_id: str) -> list[VideoLine]:
    """The read model's videos; one without a result gets its ingest task's phase."""
    try:
        async with conn.transaction():
            rows = await conn.fetch(
                "SELECT v.idx, v.system_name, v.external_id, v.state, v.code, v.reason,"
                " v.media_id, t.phase, t.bytes_done, t.bytes_total,"
                " (v.media_info->>'duration')::float8 AS duration,"
                " (v.media_info->>'width')::int AS width, (v.media_info->>'height')::int AS height,"
                " v.poster_key, v.link_expired"
                " FROM status_videos v LEFT JOIN LATERAL ("
                # A row whose worker died (lease run out) is queued again.
                "  SELECT CASE WHEN lease_until > now() THEN phase END AS phase,"
                "  CASE WHEN lease_until > now() THEN bytes_done END AS bytes_done,"
                "  CASE WHEN lease_until > now() THEN bytes_total END AS bytes_total"
                "  FROM ingest_tasks"
                "  WHERE project = $2 AND job_id = v.job_id AND video_index = v.idx"
                "  ORDER BY position DESC LIMIT 1"
                " ) t ON v.state IS NULL"
                " WHERE v.job_id = $1 ORDER BY v.idx",
                job_id,
                project,
            )
    except asyncpg.UndefinedTableError:
        return []
    return [VideoLine(**dict(row)) for row in rows]
