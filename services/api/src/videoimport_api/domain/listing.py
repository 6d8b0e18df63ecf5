"""The query parameters of the jobs listing and of a paged status, and the listing page.

Every parameter is checked strictly (a 400 naming it): given at most once, from a
closed set or a bounded range, and a cursor only with the filters it was made for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TypeVar, get_args

import msgspec
from videoimport_events import JobStatus

from videoimport_api.domain import cursor
from videoimport_api.domain.cursor import JobsCursor, VideosCursor
from videoimport_api.domain.errors import ApiError, FieldError
from videoimport_api.domain.json_limits import identity_problem
from videoimport_api.domain.status import (
    STARTED,
    JobRow,
    Link,
    VideoProgress,
    VideoRow,
    render_paged_status,
    timestamp,
)
from videoimport_api.domain.validation import MAX_SYSTEM_NAME

VideoFilter = Literal["started", "success", "skipped", "failed"]
"""A status page's ``state``: a video's result, or ``started`` for "no result yet"."""

JOBS_LIMIT: Final = (1, 100, 20)
VIDEOS_LIMIT: Final = (1, 1000, 100)
PAGING_PARAMETERS: Final = ("state", "cursor", "limit")
MAX_INDEX: Final = 2**31 - 1
"""The largest video index PostgreSQL's integer holds; a cursor past it is no cursor."""

Query = Mapping[str, Sequence[str]]
"""Query parameters, every value of each name (``MultiDict.dict()``)."""
Row = TypeVar("Row")


class JobsQuery(msgspec.Struct, frozen=True, kw_only=True):
    state: JobStatus | None = None
    system_name: str | None = None
    after: JobsCursor | None = None
    limit: int = JOBS_LIMIT[2]


class VideosQuery(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a job's videos, by index."""

    state: VideoFilter | None = None
    after_index: int = -1
    limit: int = VIDEOS_LIMIT[2]


class ListedJob(JobRow, frozen=True, kw_only=True):
    """One row of the listing, as ``status_jobs`` has it: a job and its system."""

    system_name: str


def _bad(name: str, reason: str) -> ApiError:
    return ApiError(400, f"invalid query parameter {name}", [FieldError(name, reason)])


def _single(query: Query, name: str) -> str | None:
    values = query.get(name) or []
    if len(values) > 1:
        raise _bad(name, "must be given at most once")
    return values[0] if values else None


def _choice(query: Query, name: str, choices: Any) -> Any:
    """The parameter as one of the ``Literal`` type ``choices``, None when absent."""
    raw = _single(query, name)
    if raw is None:
        return None
    try:
        return msgspec.convert(raw, choices)
    except msgspec.ValidationError:
        raise _bad(name, f"must be one of {', '.join(get_args(choices))}") from None


def _limit(query: Query, bounds: tuple[int, int, int]) -> int:
    low, high, default = bounds
    raw = _single(query, "limit")
    if raw is None:
        return default
    # Digits only: no sign, space, underscore or exponent, which int() would take.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not low <= int(raw) <= high:
        raise _bad("limit", f"must be a whole number from {low} to {high}")
    return int(raw)


def _system_name(query: Query) -> str | None:
    raw = _single(query, "systemName")
    if raw is None:
        return None
    problem = identity_problem(raw)
    if not raw:
        problem = "must not be empty"
    elif len(raw) > MAX_SYSTEM_NAME:
        problem = f"must be at most {MAX_SYSTEM_NAME} characters"
    if problem:
        raise _bad("systemName", problem)
    return raw


def parse_jobs_query(query: Query) -> JobsQuery:
    state: JobStatus | None = _choice(query, "state", JobStatus)
    system_name = _system_name(query)
    limit = _limit(query, JOBS_LIMIT)
    raw_cursor = _single(query, cursor.FIELD)
    after = None
    if raw_cursor is not None:
        after = cursor.decode(raw_cursor, JobsCursor)
        if (after.state, after.system_name) != (state, system_name):
            raise cursor.invalid("belongs to a listing with another state or systemName")
        cursor.from_micros(after.started_at_us)  # a 400 now, not a failed query later
    return JobsQuery(state=state, system_name=system_name, after=after, limit=limit)


def parse_video_paging(query: Query, job_id: str) -> VideosQuery | None:
    """The page of videos asked for; None when no paging parameter is given at all
    (the status is then exactly the unpaged document)."""
    if not any(name in query for name in PAGING_PARAMETERS):
        return None
    state: VideoFilter | None = _choice(query, "state", VideoFilter)
    limit = _limit(query, VIDEOS_LIMIT)
    raw_cursor = _single(query, cursor.FIELD)
    after_index = -1
    if raw_cursor is not None:
        after = cursor.decode(raw_cursor, VideosCursor)
        if (after.job_id, after.state) != (job_id, state):
            raise cursor.invalid("belongs to another job or state")
        if not 0 <= after.index < MAX_INDEX:
            raise cursor.invalid()
        after_index = after.index
    return VideosQuery(state=state, after_index=after_index, limit=limit)


def page_of(rows: Sequence[Row], limit: int) -> tuple[list[Row], bool]:
    """The page and whether more follow, from a query that fetched ``limit + 1`` rows."""
    return list(rows[:limit]), len(rows) > limit


def next_jobs_cursor(query: JobsQuery, page: list[ListedJob], more: bool) -> str | None:
    if not more or not page:
        return None
    last = page[-1]
    return cursor.encode(
        JobsCursor(
            state=query.state,
            system_name=query.system_name,
            started_at_us=cursor.micros(last.started_at),
            job_id=last.job_id,
        )
    )


def next_videos_cursor(
    job_id: str, query: VideosQuery, last_index: int | None, more: bool
) -> str | None:
    if not more or last_index is None:
        return None
    return cursor.encode(VideosCursor(job_id=job_id, state=query.state, index=last_index))


def render_listed_job(job: ListedJob) -> dict[str, Any]:
    return {
        "id": job.job_id,
        "state": job.state,
        "finished": job.state != STARTED,
        "systemName": job.system_name,
        "startedAt": timestamp(job.started_at),
        "finishedAt": None if job.finished_at is None else timestamp(job.finished_at),
        "progress": {
            "total": job.video_count,
            "success": job.success,
            "skipped": job.skipped,
            "failed": job.failed,
        },
    }


def render_jobs_page(jobs: list[ListedJob], next_cursor: str | None) -> dict[str, Any]:
    return {"jobs": [render_listed_job(job) for job in jobs], "nextCursor": next_cursor}


def render_status_page(
    job: JobRow,
    rows: list[VideoRow],
    progress: dict[int, VideoProgress],
    query: VideosQuery,
    link: Link,
) -> dict[str, Any]:
    """The paged status from a query that fetched ``limit + 1`` videos."""
    videos, more = page_of(rows, query.limit)
    last = videos[-1].idx if videos else None
    next_cursor = next_videos_cursor(job.job_id, query, last, more)
    return render_paged_status(job, videos, progress, link, next_cursor)
