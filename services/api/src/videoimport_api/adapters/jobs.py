"""The queries of job control: the listing, a status page, and the log reads of
retry and cancel.

``status_jobs`` and ``status_videos`` belong to the projector and ``ingest_tasks``
to the ingester; the API only reads them. Retry and cancel read the log itself.
"""

from __future__ import annotations

import asyncpg
from videoimport_events import (
    ImportRequested,
    VideoImportRequested,
    cancellation_stream,
    decode_event,
    job_stream,
    video_stream,
)

from videoimport_api.adapters import postgres
from videoimport_api.domain import cursor
from videoimport_api.domain.control import LoggedJob, OpenVideo
from videoimport_api.domain.listing import JobsQuery, ListedJob, VideosQuery
from videoimport_api.domain.status import JobRow, VideoProgress, VideoRow

_LISTED_COLUMNS = (
    "job_id, state, system_name, video_count, started_at, finished_at, success, skipped, failed"
)
# A queue row's video: its own column, or (rows queued before it existed) the envelope.
_TASK_INDEX = "coalesce(video_index, (envelope::jsonb->'data'->>'index')::int)"


async def list_jobs(conn: asyncpg.Connection, project: str, query: JobsQuery) -> list[ListedJob]:
    """Up to ``query.limit + 1`` of the project's projected jobs after the cursor,
    newest first (the extra row says whether another page follows)."""
    after = query.after
    keyset = ""
    args: list[object] = [project, query.state, query.system_name, query.limit + 1]
    if after is not None:
        # A row comparison, so the listing index serves it as one range.
        keyset = " AND (started_at, job_id) < ($5, $6)"
        args += [cursor.from_micros(after.started_at_us), after.job_id]
    rows = await conn.fetch(
        f"SELECT {_LISTED_COLUMNS} FROM status_jobs WHERE project = $1"
        " AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR system_name = $3)"
        f"{keyset} ORDER BY started_at DESC, job_id DESC LIMIT $4",
        *args,
    )
    return [ListedJob(**dict(row)) for row in rows]


async def status_page(
    conn: asyncpg.Connection, project: str, job_id: str, query: VideosQuery
) -> tuple[JobRow, list[VideoRow], dict[int, VideoProgress]] | None:
    """The job, up to ``query.limit + 1`` of its videos after the cursor (by index) and
    where those without a result are; None for no such job (in the project).

    One snapshot for all reads, as ``postgres.projected_status``. A job the projector
    has not reached yet is read from the log: its videos all without a result.
    """
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        job = await postgres.projected_job(conn, project, job_id)
        if job is not None:
            videos = await _projected_videos(conn, job_id, query)
        else:
            job = await postgres.requested_job(conn, project, job_id)
            if job is None:
                return None
            videos = await _requested_videos(conn, job, query)
        waiting = [v.idx for v in videos if v.state is None]
        progress = await _progress(conn, project, job_id, waiting) if waiting else {}
    return job, videos, progress


async def _projected_videos(
    conn: asyncpg.Connection, job_id: str, query: VideosQuery
) -> list[VideoRow]:
    rows = await conn.fetch(
        f"SELECT {postgres.VIDEO_COLUMNS} FROM status_videos WHERE job_id = $1 AND idx > $2"
        " AND CASE WHEN $3::text IS NULL THEN true"
        " WHEN $3 = 'started' THEN state IS NULL ELSE state = $3 END"
        " ORDER BY idx LIMIT $4",
        job_id,
        query.after_index,
        query.state,
        query.limit + 1,
    )
    return [postgres.video_row(row) for row in rows]


async def _requested_videos(
    conn: asyncpg.Connection, job: JobRow, query: VideosQuery
) -> list[VideoRow]:
    if query.state not in (None, "started"):
        return []  # no result of this job is projected yet
    first = query.after_index + 1
    indexes = range(first, min(job.video_count, first + query.limit + 1))
    rows = await conn.fetch(
        "SELECT (data->>'index')::int AS idx, data->>'system_name' AS system_name,"
        " data->>'external_id' AS external_id FROM events"
        " WHERE stream_id = ANY($1::text[]) AND stream_version = 0 ORDER BY 1",
        [video_stream(job.job_id, i) for i in indexes],
    )
    return [VideoRow(**dict(row)) for row in rows]


_LIVE_PROGRESS = (
    "CASE WHEN lease_until > now() THEN phase END AS phase,"
    " CASE WHEN lease_until > now() THEN bytes_done END AS bytes_done,"
    " CASE WHEN lease_until > now() THEN bytes_total END AS bytes_total"
)
"""Where a worker is, while its lease lives; a row whose worker died is queued again."""


async def _progress(
    conn: asyncpg.Connection, project: str, job_id: str, indexes: list[int]
) -> dict[int, VideoProgress]:
    rows = await conn.fetch(
        f"SELECT {_TASK_INDEX} AS idx, {_LIVE_PROGRESS} FROM ingest_tasks"
        f" WHERE project = $1 AND job_id = $2 AND {_TASK_INDEX} = ANY($3::int[])"
        " ORDER BY phase IS NULL, position",
        project,
        job_id,
        indexes,
    )
    progress: dict[int, VideoProgress] = {}
    for row in rows:
        # Should a video have two rows, the one a worker is on tells more.
        progress.setdefault(
            row["idx"],
            VideoProgress(
                phase=row["phase"], bytes_done=row["bytes_done"], bytes_total=row["bytes_total"]
            ),
        )
    return progress


async def logged_job(conn: asyncpg.Connection, project: str, job_id: str) -> LoggedJob | None:
    """The job's request, completion and cancellation as the log has them."""
    rows = await conn.fetch(
        "SELECT stream_id, stream_version, schema_version, data::text AS data FROM events"
        " WHERE stream_id = ANY($1::text[]) AND project = $2",
        [job_stream(job_id), cancellation_stream(job_id)],
        project,
    )
    found = {(row["stream_id"], row["stream_version"]): row for row in rows}
    first = found.get((job_stream(job_id), 0))
    if first is None:
        return None
    requested = decode_event(first["data"], version=first["schema_version"])
    if not isinstance(requested, ImportRequested):
        return None
    return LoggedJob(
        requested=requested,
        completed=(job_stream(job_id), 1) in found,
        cancelled=(cancellation_stream(job_id), 0) in found,
    )


def _video_streams(job: LoggedJob) -> list[str]:
    requested = job.requested
    return [video_stream(requested.job_id, i) for i in range(requested.video_count)]


async def open_videos(conn: asyncpg.Connection, job: LoggedJob) -> list[OpenVideo]:
    """The job's videos without a result in the log, by index."""
    rows = await conn.fetch(
        "SELECT (r.data->>'index')::int AS index, r.data->>'system_name' AS system_name,"
        " r.data->>'external_id' AS external_id FROM events r"
        " WHERE r.stream_id = ANY($1::text[]) AND r.stream_version = 0 AND NOT EXISTS"
        " (SELECT 1 FROM events t WHERE t.stream_id = r.stream_id AND t.stream_version = 1)"
        " ORDER BY 1",
        _video_streams(job),
    )
    return [OpenVideo(**dict(row)) for row in rows]


async def failed_requests(conn: asyncpg.Connection, job: LoggedJob) -> list[VideoImportRequested]:
    """The requests of the job's videos whose result is a failure (any code), by index."""
    rows = await conn.fetch(
        "SELECT r.schema_version, r.data::text AS data FROM events r"
        " JOIN events t ON t.stream_id = r.stream_id AND t.stream_version = 1"
        " AND t.event_type = 'VideoImportFailed'"
        " WHERE r.stream_id = ANY($1::text[]) AND r.stream_version = 0"
        " ORDER BY (r.data->>'index')::int",
        _video_streams(job),
    )
    requests = [decode_event(row["data"], version=row["schema_version"]) for row in rows]
    return [r for r in requests if isinstance(r, VideoImportRequested)]
