"""Job control routes, additive to the Livingdocs contract: list, retry, cancel.

- ``GET …/jobs``: the project's projected jobs, newest first, a keyset page at a time.
- ``POST …/retry?id=``: a new job with the failed videos of a finished one.
- ``POST …/cancel?id=``: every video of a running job without a result fails as
  ``cancelled``, in one transaction with the job's ``JobCancelled``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import structlog
from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from videoimport_eventlog import store
from videoimport_eventlog.store import StreamConflict
from videoimport_projects import TokenGrant

from videoimport_api import handlers
from videoimport_api.adapters import jobs
from videoimport_api.domain import control, idempotency, listing, params
from videoimport_api.domain.errors import ApiError, FieldError
from videoimport_api.handlers import IMPORT_SCOPES, STATUS_SCOPES, Dependencies, Submitted
from videoimport_api.responses import json_response

log = structlog.get_logger("videoimport_api")

JOBS_PATH: Final = "/api/{api_version:str}/import/videos"
CANCEL_ATTEMPTS: Final = 5
"""Each lost race means another video got its result meanwhile: a few rounds settle it."""


def control_routes(deps: Dependencies) -> list[HTTPRouteHandler]:
    @get(JOBS_PATH + "/jobs")
    async def list_jobs(
        request: Request[Any, Any, Any], api_version: FromPath[str]
    ) -> Response[bytes]:
        handlers.check_version(deps, api_version)
        grant = await handlers.authorize(deps, request.headers.get("authorization"), STATUS_SCOPES)
        query = listing.parse_jobs_query(request.query_params.dict())
        async with deps.pool.acquire() as conn:
            rows = await jobs.list_jobs(conn, grant.project, query)
        page, more = listing.page_of(rows, query.limit)
        next_cursor = listing.next_jobs_cursor(query, page, more)
        return json_response(listing.render_jobs_page(page, next_cursor))

    @post(JOBS_PATH + "/retry")
    async def retry_job(
        request: Request[Any, Any, Any], api_version: FromPath[str]
    ) -> Response[bytes]:
        handlers.check_version(deps, api_version)
        grant = await handlers.authorize(deps, request.headers.get("authorization"), IMPORT_SCOPES)
        job_id = params.parse_job_id(request.query_params.get("id"))
        key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
        submitted, count = await retry(deps, grant, api_version, job_id, key)
        replay = {"idempotent-replayed": "true"} if submitted.replayed else None
        document = {"id": submitted.job_id, "retryOf": job_id, "videos": count}
        return json_response(document, 200, replay)

    @post(JOBS_PATH + "/cancel")
    async def cancel_job(
        request: Request[Any, Any, Any], api_version: FromPath[str]
    ) -> Response[bytes]:
        handlers.check_version(deps, api_version)
        grant = await handlers.authorize(deps, request.headers.get("authorization"), IMPORT_SCOPES)
        job_id = params.parse_job_id(request.query_params.get("id"))
        cancelled = await cancel(deps, grant, job_id)
        return json_response({"id": job_id, "cancelled": cancelled}, 202)

    return [list_jobs, retry_job, cancel_job]


async def retry(
    deps: Dependencies, grant: TokenGrant, api_version: str, job_id: str, key: str | None
) -> tuple[Submitted, int]:
    """Import the failed videos of a finished job again, as a new job (404, 409).

    The new job goes the import's way (idempotency, events, metrics), with the old
    job's systemName, webhook and context and each video as originally requested.
    """
    async with deps.pool.acquire() as conn:
        job = await jobs.logged_job(conn, grant.project, job_id)
        if job is None:
            raise control.not_found(job_id)
        failed = await jobs.failed_requests(conn, job) if job.completed else []
    refusal = control.retry_refusal(job, failed)
    if refusal is not None:
        raise refusal
    command = control.retry_command(job.requested, failed)
    submitted = await handlers.submit_import(
        deps, grant, api_version, command, key, retry_of=job_id
    )
    if not submitted.replayed:
        deps.metrics.jobs_retried.inc()
        log.info("job retried", job_id=submitted.job_id, retry_of=job_id, videos=len(failed))
    return submitted, len(failed)


async def cancel(deps: Dependencies, grant: TokenGrant, job_id: str) -> int:
    """Fail every video of the job without a result as ``cancelled``; how many (404, 409).

    The log decides which videos are open. A result recorded between that read and the
    append takes the video's version 1 first, so the append conflicts: read again.
    """
    for _ in range(CANCEL_ATTEMPTS):
        async with deps.pool.acquire() as conn:
            job = await jobs.logged_job(conn, grant.project, job_id)
            if job is None:
                raise control.not_found(job_id)
            still_running = not (job.completed or job.cancelled)
            open_videos = await jobs.open_videos(conn, job) if still_running else []
            refusal = control.cancel_refusal(job, open_videos)
            if refusal is not None:
                raise refusal
            events = control.cancel_events(job, open_videos, "api", datetime.now(UTC))
            try:
                async with conn.transaction():
                    await store.append(conn, events)
            except StreamConflict:
                log.info("cancel raced a result, reading again", job_id=job_id)
                continue
        deps.metrics.jobs_cancelled.inc()
        deps.metrics.videos_cancelled.inc(len(open_videos))
        log.info(
            "job cancelled",
            job_id=job_id,
            videos=len(open_videos),
            event_id=str(events[0].event_id),
        )
        return len(open_videos)
    reason = "results kept arriving while cancelling; try again"
    raise ApiError(409, reason, [FieldError("id", reason)])
