"""The projector against a real PostgreSQL: status rows, JobCompleted, rebuild."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from videoimport_eventlog import store, tracking
from videoimport_events import (
    ImportRequested,
    JobCompleted,
    MediaObjectDeleted,
    Overview,
    VideoImported,
    VideoImportFailed,
    VideoImportSkipped,
    WebhookDelivered,
    WebhookDeliveryFailed,
)
from videoimport_projector.service import Projector
from videoimport_projector.settings import ProjectorSettings

from tests.polling import eventually
from tests.requests import requested_job

pytestmark = pytest.mark.integration
DEADLINE = 30.0
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@contextlib.asynccontextmanager
async def projecting(dsn: str, batch_size: int = 4) -> AsyncIterator[None]:
    settings = ProjectorSettings(database_url=dsn, batch_size=batch_size, poll_interval=0.2)
    stop = asyncio.Event()
    projector = Projector(settings)
    task = asyncio.create_task(projector.run(stop))
    try:
        # Past its migration: a test's append must not race the DDL.
        await asyncio.wait_for(projector.prepared.wait(), DEADLINE)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)


async def request_job(
    conn: asyncpg.Connection, job_id: str, count: int, **extra: Any
) -> ImportRequested:
    """What the API appends: the request and one VideoImportRequested per video."""
    events = requested_job(job_id, count, occurred_at=T0, **extra)
    async with conn.transaction():
        await store.append(conn, events)
    requested = events[0].event
    assert isinstance(requested, ImportRequested)
    return requested


def _video(job_id: str, i: int) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "project": "acme",
        "system_name": "archive",
        "index": i,
        "external_id": f"ext-{i}",
    }


def imported(job_id: str, i: int) -> VideoImported:
    return VideoImported(
        **_video(job_id, i),
        media_id=f"media{i}",
        mime_type="video/mp4",
        storage_key=f"acme/media{i}/r.mp4",
        size=100,
        sha256="ab",
        outcome="created",
        downloaded=True,
        url=f"https://videos.example.com/{i}.mp4",
        file_name=f"file {i}",
        metadata={"title": f"t{i}"},
    )


def skipped(job_id: str, i: int) -> VideoImportSkipped:
    return VideoImportSkipped(
        **_video(job_id, i),
        media_id=f"media{i}",
        mime_type="video/webm",
        storage_key=f"acme/media{i}/r.webm",
        size=100,
        sha256="ab",
    )


def failed(job_id: str, i: int) -> VideoImportFailed:
    return VideoImportFailed(
        **_video(job_id, i), reason="not a video (text/html)", code="not_a_video"
    )


async def finish(
    conn: asyncpg.Connection, event: VideoImported | VideoImportSkipped | VideoImportFailed, at: int
) -> uuid.UUID:
    """What the ingester appends: the single terminal event of one video."""
    new = store.NewEvent(
        event,
        stream_id=f"job-{event.job_id}/video-{event.index}",
        stream_version=1,
        correlation_id=event.job_id,
        project="acme",
        causation_id=str(uuid.uuid4()),
        occurred_at=T0 + timedelta(seconds=at),
    )
    async with conn.transaction():
        await store.append(conn, [new])
    return new.event_id


async def caught_up(conn: asyncpg.Connection) -> bool:
    head = await conn.fetchval("SELECT COALESCE(max(position), 0) FROM events")
    return bool(head) and await tracking.position_of(conn, "projector") == head


async def dump(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "status_jobs": [
            tuple(r) for r in await conn.fetch("SELECT * FROM status_jobs ORDER BY job_id")
        ],
        "status_videos": [
            tuple(r) for r in await conn.fetch("SELECT * FROM status_videos ORDER BY job_id, idx")
        ],
        "projector_job_state": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT job_id, state::text FROM projector_job_state ORDER BY job_id"
            )
        ],
    }


def failure(attempt: int, status: int | None, next_at: datetime | None) -> dict[str, Any]:
    error = "timed out" if status is None else f"HTTP {status}"
    return {"attempt": attempt, "error": error, "status_code": status, "next_attempt_at": next_at}


def success(attempt: int) -> dict[str, Any]:
    return {"attempt": attempt, "status_code": 204}


async def attempt(conn: asyncpg.Connection, job_id: str, fields: dict[str, Any], at: int) -> None:
    """What the notifier appends for one attempt of the job's delivery."""
    delivery_id = f"whd_{job_id}"
    common = {"job_id": job_id, "project": "acme", "delivery_id": delivery_id}
    event: WebhookDelivered | WebhookDeliveryFailed = (
        WebhookDeliveryFailed(**common, url="https://hooks.example/in", **fields)
        if "error" in fields
        else WebhookDelivered(**common, url="https://hooks.example/in", **fields)
    )
    new = store.NewEvent(
        event,
        stream_id=f"webhook-{delivery_id}",
        stream_version=fields["attempt"] - 1,
        correlation_id=job_id,
        project="acme",
        occurred_at=T0 + timedelta(seconds=at),
    )
    async with conn.transaction():
        await store.append(conn, [new])


async def delete_object(conn: asyncpg.Connection, storage_key: str, at: int) -> None:
    """What the ingester's sweeper appends once it deleted a superseded object."""
    event = MediaObjectDeleted(
        project="acme",
        system_name="archive",
        external_id="ext-0",
        media_id="media0",
        storage_key=storage_key,
        reason="superseded",
    )
    new = store.NewEvent(
        event,
        stream_id=f"media-media0/deleted-{uuid.uuid5(uuid.NAMESPACE_URL, storage_key)}",
        stream_version=0,
        correlation_id="media0",
        project="acme",
        occurred_at=T0 + timedelta(seconds=at),
    )
    async with conn.transaction():
        await store.append(conn, [new])


async def completions(conn: asyncpg.Connection) -> list[store.RecordedEvent]:
    events = await store.read_after(conn, 0, 10_000)
    return [e for e in events if isinstance(e.event, JobCompleted)]


async def test_projector_builds_status_rows_and_completes_each_job_once(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    await request_job(
        conn, "jobmixed0001", 3, webhook="https://hooks.example.com/in", context={"k": "v"}
    )
    await request_job(conn, "jobfailed001", 2)
    await request_job(conn, "jobopen00001", 2)
    async with projecting(pg_dsn):
        await eventually(lambda: caught_up(conn), "the projector to catch up")
        started = await conn.fetchrow("SELECT * FROM status_jobs WHERE job_id = 'jobmixed0001'")
        assert (started["state"], started["finished_at"], started["started_at"]) == (
            "started",
            None,
            T0,
        )

        await finish(conn, failed("jobmixed0001", 1), 3)
        await finish(conn, skipped("jobmixed0001", 2), 4)
        last = await finish(conn, imported("jobmixed0001", 0), 5)
        await finish(conn, failed("jobfailed001", 0), 6)
        last_failed = await finish(conn, failed("jobfailed001", 1), 7)
        await finish(conn, imported("jobopen00001", 0), 8)

        async def two_completed() -> bool:
            return len(await completions(conn)) == 2 and await caught_up(conn)

        await eventually(two_completed, "two JobCompleted events, projected")

    jobs = {r["job_id"]: dict(r) for r in await conn.fetch("SELECT * FROM status_jobs")}
    assert jobs["jobmixed0001"] == {
        "job_id": "jobmixed0001",
        "project": "acme",
        "system_name": "archive",
        "state": "success",
        "video_count": 3,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=5),
        "success": 1,
        "skipped": 1,
        "failed": 1,
        # Finished with a webhook, no attempt recorded yet.
        "webhook_state": "pending",
        "webhook_attempts": 0,
        "webhook_last_status": None,
        "webhook_last_error": None,
        "webhook_next_attempt_at": None,
        "webhook_delivered_at": None,
    }
    assert (jobs["jobfailed001"]["state"], jobs["jobfailed001"]["failed"]) == ("failed", 2)
    assert (jobs["jobopen00001"]["state"], jobs["jobopen00001"]["finished_at"]) == (
        "started",
        None,
    )

    videos = {
        (r["job_id"], r["idx"]): dict(r) for r in await conn.fetch("SELECT * FROM status_videos")
    }
    assert len(videos) == 7
    assert videos[("jobmixed0001", 0)] == {
        "job_id": "jobmixed0001",
        "idx": 0,
        "system_name": "archive",
        "external_id": "ext-0",
        "state": "success",
        "reason": None,
        "code": None,
        "media_id": "media0",
        "mime_type": "video/mp4",
        "storage_key": "acme/media0/r.mp4",
        "outcome": "created",
        "link_expired": False,
        "size": 100,
        "sha256": "ab",
        # Not probed (a result recorded before files were): nothing made up.
        "media_info": None,
        "poster_key": None,
    }
    skipped_row = videos[("jobmixed0001", 2)]
    assert (skipped_row["state"], skipped_row["reason"], skipped_row["media_id"]) == (
        "skipped",
        "already exists",
        "media2",
    )
    failed_row = videos[("jobmixed0001", 1)]
    assert (failed_row["state"], failed_row["reason"], failed_row["code"]) == (
        "failed",
        "not a video (text/html)",
        "not_a_video",
    )
    assert videos[("jobopen00001", 1)]["state"] is None

    by_job = {e.event.job_id: e for e in await completions(conn)}  # type: ignore[union-attr]
    mixed = by_job["jobmixed0001"]
    assert mixed.event == JobCompleted(
        job_id="jobmixed0001",
        project="acme",
        state="success",
        overview=Overview(total=3, success=1, skipped=1, failed=1),
        started_at=T0,
        finished_at=T0 + timedelta(seconds=5),
        webhook="https://hooks.example.com/in",
        context={"k": "v"},
    )
    assert (mixed.stream_id, mixed.stream_version) == ("job-jobmixed0001", 1)
    assert (mixed.correlation_id, mixed.causation_id) == ("jobmixed0001", str(last))
    assert mixed.occurred_at == T0 + timedelta(seconds=5)
    assert by_job["jobfailed001"].causation_id == str(last_failed)
    assert by_job["jobfailed001"].event.state == "failed"  # type: ignore[union-attr]


async def test_rebuild_yields_identical_tables_and_no_second_job_completed(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    for n in range(3):
        await request_job(
            conn, f"jobrebuild{n:02d}", 3, context={"n": n}, webhook="https://hooks.example/in"
        )
    async with projecting(pg_dsn, batch_size=5):
        for n in range(3):
            await finish(conn, imported(f"jobrebuild{n:02d}", 0), 10 * n + 1)
            await finish(conn, skipped(f"jobrebuild{n:02d}", 1), 10 * n + 2)
            if n < 2:  # the last job stays open
                await finish(conn, failed(f"jobrebuild{n:02d}", 2), 10 * n + 3)

        async def settled() -> bool:
            return len(await completions(conn)) == 2 and await caught_up(conn)

        await eventually(settled, "two jobs completed and projected")
        # The notifier's attempts: job 00 failed once, then was delivered, then a
        # redelivery was delivered; job 01 failed and waits for its retry.
        await attempt(conn, "jobrebuild00", failure(1, 503, T0 + timedelta(minutes=1)), 100)
        await attempt(conn, "jobrebuild00", success(2), 160)
        await attempt(conn, "jobrebuild00", success(3), 900)
        await attempt(conn, "jobrebuild01", failure(1, None, T0 + timedelta(minutes=5)), 200)
        # The ingester's sweeper deleted the object every job's video 0 points at.
        await delete_object(conn, imported("jobrebuild00", 0).storage_key, 300)
        await eventually(lambda: caught_up(conn), "the attempts to be projected")
    webhooks = {
        r["job_id"]: tuple(r)[1:]
        for r in await conn.fetch(
            "SELECT job_id, webhook_state, webhook_attempts, webhook_last_status,"
            " webhook_last_error, webhook_next_attempt_at, webhook_delivered_at FROM status_jobs"
        )
    }
    assert webhooks == {
        "jobrebuild00": ("delivered", 3, 204, None, None, T0 + timedelta(seconds=900)),
        "jobrebuild01": ("pending", 1, None, "timed out", T0 + timedelta(minutes=5), None),
        "jobrebuild02": (None, None, None, None, None, None),
    }
    before = await dump(conn)
    events_before = await conn.fetchval("SELECT count(*) FROM events")
    assert len(before["status_jobs"]) == 3 and len(before["status_videos"]) == 9
    expired = await conn.fetch("SELECT job_id, idx FROM status_videos WHERE link_expired")
    assert sorted(tuple(r) for r in expired) == [(f"jobrebuild{n:02d}", 0) for n in range(3)]

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "videoimport_projector",
        "rebuild",
        env={**os.environ, "VIDEOIMPORT_DATABASE_URL": pg_dsn, "VIDEOIMPORT_BATCH_SIZE": "2"},
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), DEADLINE)
    assert process.returncode == 0, stderr.decode()

    assert await dump(conn) == before
    assert await conn.fetchval("SELECT count(*) FROM events") == events_before
    assert sorted(e.stream_id for e in await completions(conn)) == [
        "job-jobrebuild00",
        "job-jobrebuild01",
    ]
    assert await caught_up(conn)

    # The open job still completes exactly once after the rebuild.
    async with projecting(pg_dsn):
        await finish(conn, failed("jobrebuild02", 2), 40)

        async def third() -> bool:
            return len(await completions(conn)) == 3 and await caught_up(conn)

        await eventually(third, "the third job to complete")
    state = await conn.fetchval("SELECT state FROM status_jobs WHERE job_id = 'jobrebuild02'")
    assert state == "success"


async def test_rebuild_of_an_emptied_read_model_recreates_it(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    await request_job(conn, "jobtruncated", 1)
    async with projecting(pg_dsn):
        await finish(conn, imported("jobtruncated", 0), 1)

        async def done() -> bool:
            return len(await completions(conn)) == 1 and await caught_up(conn)

        await eventually(done, "the job to complete")
    before = await dump(conn)
    await conn.execute("TRUNCATE status_jobs, status_videos, projector_job_state")
    settings = ProjectorSettings(database_url=pg_dsn, batch_size=1)
    await Projector(settings).rebuild()
    assert await dump(conn) == before
    assert len(await completions(conn)) == 1


async def test_the_projector_process_exits_cleanly_on_sigterm(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    env = {**os.environ, "VIDEOIMPORT_DATABASE_URL": pg_dsn}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "videoimport_projector", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:

        async def migrated() -> bool:
            return bool(await conn.fetchval("SELECT to_regclass('status_jobs') IS NOT NULL"))

        await eventually(migrated, "the projector to create its tables")
        await request_job(conn, "jobprocess01", 1)
        await finish(conn, imported("jobprocess01", 0), 1)

        async def done() -> bool:
            return len(await completions(conn)) == 1 and await caught_up(conn)

        await eventually(done, "the job to complete")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), DEADLINE)
    assert process.returncode == 0, stderr.decode()
    state = await conn.fetchval("SELECT state FROM status_jobs WHERE job_id = 'jobprocess01'")
    assert state == "success"
