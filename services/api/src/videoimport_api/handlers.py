"""Use cases of the API: load what is needed, decide (pure domain), append, answer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from videoimport_eventlog import store
from videoimport_eventlog.health import Probe
from videoimport_eventlog.store import EventTooLarge, NewEvent, StreamConflict
from videoimport_events import (
    MAX_EVENT_BYTES,
    ImportRequested,
    VideoImportRequested,
    encode_event,
    job_stream,
    video_stream,
)
from videoimport_projects import WRITE_SCOPE, TokenGrant, grant_for
from videoimport_projects.redelivery import RedeliveryRefused, request_redelivery

from videoimport_api.adapters import jobs, postgres
from videoimport_api.adapters.s3 import MediaStore
from videoimport_api.adapters.url_probe import UrlProbe
from videoimport_api.domain import idempotency
from videoimport_api.domain.auth import READ_SCOPE, bearer_token, require_scope, unauthorized
from videoimport_api.domain.control import retry_fingerprint
from videoimport_api.domain.errors import ApiError, FieldError
from videoimport_api.domain.ids import new_job_id
from videoimport_api.domain.listing import Query, parse_video_paging, render_status_page
from videoimport_api.domain.media_links import MediaLinks
from videoimport_api.domain.status import render_started, render_status
from videoimport_api.domain.validation import ImportCommand, Invalid, parse_import_request
from videoimport_api.domain.versions import require_answered
from videoimport_api.metrics import ApiMetrics

log = structlog.get_logger("videoimport_api")

# A fresh random id colliding even once is all but impossible; more is a bug.
JOB_ID_ATTEMPTS = 3
HEALTH_TIMEOUT_SECONDS = 5.0
IMPORT_SCOPES = (WRITE_SCOPE,)
STATUS_SCOPES = (READ_SCOPE, WRITE_SCOPE)


@dataclass(frozen=True)
class Dependencies:
    pool: asyncpg.Pool
    media: MediaStore | None
    media_links: MediaLinks
    supported_versions: frozenset[str]
    retired_versions: frozenset[str]
    max_batch: int
    max_body_bytes: int
    metrics: ApiMetrics
    url_probe: UrlProbe
    """Asks sources about their videos for dry runs (one per process: shared limits)."""
    max_video_bytes: int
    """The ingester's size limit, which a dry run applies."""
    allow_private_urls: bool = False
    loopback_only_urls: bool = False
    """Only loopback URLs at the door and in the dry run's probe (tests, fuzzing)."""
    public_metrics: bool = False
    health_timeout: float = HEALTH_TIMEOUT_SECONDS
    storage_check: Probe | None = None
    """HeadBucket on the media bucket, for readiness; None without S3."""


@dataclass(frozen=True)
class Submitted:
    job_id: str
    replayed: bool


def check_version(deps: Dependencies, api_version: str) -> None:
    require_answered(api_version, deps.supported_versions, deps.retired_versions)


async def authorize(
    deps: Dependencies, authorization: str | None, scopes: tuple[str, ...]
) -> TokenGrant:
    """The grant of the bearer token, which must hold one of ``scopes`` (401, 403)."""
    token = bearer_token(authorization)
    async with deps.pool.acquire() as conn:
        grant = await grant_for(conn, token)
    if grant is None:
        raise unauthorized("unknown, revoked or expired token")
    require_scope(grant.scopes, *scopes)
    return grant


def import_events(
    job_id: str,
    project: str,
    api_version: str,
    command: ImportCommand,
    idempotency_key: str | None,
    retry_of: str | None = None,
) -> list[NewEvent]:
    """The job's first event and one request per video, all caused by the first."""
    now = datetime.now(UTC)
    requested = NewEvent(
        event=ImportRequested(
            job_id=job_id,
            project=project,
            system_name=command.system_name,
            api_version=api_version,
            video_count=len(command.videos),
            webhook=command.webhook,
            context=command.context,
            idempotency_key=idempotency_key,
            retry_of=retry_of,
        ),
        stream_id=job_stream(job_id),
        stream_version=0,
        correlation_id=job_id,
        project=project,
        occurred_at=now,
    )
    videos = [
        NewEvent(
            event=VideoImportRequested(
                job_id=job_id,
                project=project,
                index=index,
                system_name=command.system_name,
                external_id=video.external_id,
                url=video.url,
                file_name=video.file_name,
                metadata=video.metadata,
            ),
            stream_id=video_stream(job_id, index),
            stream_version=0,
            correlation_id=job_id,
            project=project,
            causation_id=str(requested.event_id),
            occurred_at=now,
        )
        for index, video in enumerate(command.videos)
    ]
    return [requested, *videos]


def parse_body(deps: Dependencies, body: bytes) -> ImportCommand:
    parsed = parse_import_request(
        body,
        max_batch=deps.max_batch,
        # Loopback-only refuses everything else itself; loopback is not public.
        allow_private=deps.allow_private_urls or deps.loopback_only_urls,
        loopback_only=deps.loopback_only_urls,
    )
    if isinstance(parsed, Invalid):
        raise ApiError(400, _summary(parsed.errors), parsed.errors)
    return parsed


def _summary(errors: list[FieldError]) -> str:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid request: {first.field}: {first.reason}{more}"


async def submit_import(
    deps: Dependencies,
    grant: TokenGrant,
    api_version: str,
    command: ImportCommand,
    idempotency_key: str | None,
    retry_of: str | None = None,
) -> Submitted:
    """Record the job in one transaction; the caller answers only after it returns.

    ``retry_of``: the job whose failed videos ``command`` imports again (``POST …/retry``).
    """
    request_sha = (
        idempotency.fingerprint(api_version, command)
        if retry_of is None
        else retry_fingerprint(api_version, command, retry_of)
    )
    for _ in range(JOB_ID_ATTEMPTS):
        job_id = new_job_id()
        events = import_events(
            job_id, grant.project, api_version, command, idempotency_key, retry_of
        )
        try:
            async with deps.pool.acquire() as conn, conn.transaction():
                if idempotency_key is not None:
                    earlier = await postgres.claim_idempotency_key(
                        conn, grant.project, idempotency_key, request_sha, job_id
                    )
                    if earlier is not None:
                        earlier_sha, earlier_job = earlier
                        if earlier_sha != request_sha:
                            raise idempotency.reused_key_error()
                        deps.metrics.idempotent_replays.inc()
                        return Submitted(job_id=earlier_job, replayed=True)
                await store.append(conn, events)
        except EventTooLarge as exc:
            raise _too_large(events) from exc
        except StreamConflict:
            log.warning("job id collision, retrying", job_id=job_id)
            continue
        deps.metrics.jobs_accepted.inc()
        deps.metrics.videos_accepted.inc(len(command.videos))
        log.info(
            "import requested",
            job_id=job_id,
            project=grant.project,
            videos=len(command.videos),
            event_id=str(events[0].event_id),
        )
        return Submitted(job_id=job_id, replayed=False)
    raise RuntimeError("could not allocate a job id")


def _too_large(events: list[NewEvent]) -> ApiError:
    """A 400 naming the video (or the body) whose event the log refused as too large.

    Validation's caps keep every event far below the limit; this is the backstop."""
    sizes = [(len(encode_event(e.event)), i) for i, e in enumerate(events)]
    size, largest = max(sizes)
    event = events[largest].event
    field = f"videos[{event.index}]" if isinstance(event, VideoImportRequested) else "body"
    reason = f"too large to record: {size} bytes as an event, the limit is {MAX_EVENT_BYTES}"
    return ApiError(400, f"invalid request: {field}: {reason}", [FieldError(field, reason)])


def _not_found(job_id: str) -> ApiError:
    return ApiError(404, f"no import job {job_id}", [FieldError("id", "no such import job")])


async def job_status(
    deps: Dependencies, grant: TokenGrant, job_id: str, query: Query | None = None
) -> dict[str, Any]:
    """The job's status; with paging parameters in ``query``, one page of its videos."""
    paging = None if query is None else parse_video_paging(query, job_id)
    if paging is not None:
        async with deps.pool.acquire() as conn:
            page = await jobs.status_page(conn, grant.project, job_id, paging)
        if page is None:
            raise _not_found(job_id)
        now = time.time()
        return render_status_page(*page, paging, lambda key: deps.media_links.url(key, now))
    async with deps.pool.acquire() as conn:
        projected = await postgres.projected_status(conn, grant.project, job_id)
        if projected is not None:
            job, videos = projected
            now = time.time()  # every status mints fresh links
            return render_status(job, videos, lambda key: deps.media_links.url(key, now))
        # Accepted but not projected yet: the log already knows the job has started.
        requested = await postgres.requested_job(conn, grant.project, job_id)
    if requested is None:
        raise _not_found(job_id)
    return render_started(requested)


async def redeliver_webhook(deps: Dependencies, grant: TokenGrant, job_id: str) -> None:
    """Record a ``WebhookRedeliveryRequested`` for the caller's finished job (404, 409)."""
    try:
        async with deps.pool.acquire() as conn:
            event_id = await request_redelivery(conn, job_id, "api", project=grant.project)
    except RedeliveryRefused as exc:
        if exc.reason == "unknown_job":
            raise _not_found(job_id) from exc
        raise ApiError(409, str(exc), [FieldError("id", str(exc))]) from exc
    log.info("webhook redelivery requested", job_id=job_id, event_id=str(event_id))


def readiness_probes(deps: Dependencies) -> dict[str, Probe]:
    """What ``/health/ready`` checks: the database, and S3 when media is served.

    Each probe is bounded by ``health_timeout`` where it runs (``health.Readiness``),
    so a stuck pool or query answers "down" instead of hanging.
    """

    async def database() -> None:
        async with deps.pool.acquire() as conn:
            await postgres.ping(conn)

    probes: dict[str, Probe] = {"postgres": database}
    if deps.storage_check is not None:
        probes["s3"] = deps.storage_check
    return probes
