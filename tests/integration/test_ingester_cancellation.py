"""A video that gets its result elsewhere (the API's cancel appends
``VideoImportFailed``/``cancelled`` at version 1 of its stream) is not worked on
any more: a running download is abandoned within a check interval, a queued one
is never fetched, and a commit already storing loses the race without leaving
anything behind. Real PostgreSQL and S3; the workers run without Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from videoimport_devstack import StackInfo
from videoimport_eventlog import tracking
from videoimport_events import Envelope, VideoImportFailed
from videoimport_ingester.domain import CONSUMER

from tests.polling import eventually

from .ingester_harness import (
    S3Calls,
    TricklingSource,
    Video,
    cancel_job,
    ingest_progress,
    metric,
    object_keys,
    prepare_database,
    queued_tasks,
    registry_row,
    request_import,
    running_workers,
    settings_for,
    terminal_events,
    trickling_source,
)

pytestmark = pytest.mark.integration

ABANDONED = "videoimport_ingester_abandoned_total"
BIG = "/trickle-big.mp4"
CHECK_INTERVAL = 2.0
"""The default of ``ingester_cancel_check_interval``."""


@pytest.fixture
async def source(fixtures_dir: Path) -> AsyncIterator[TricklingSource]:
    async with trickling_source(fixtures_dir) as running:
        yield running


@pytest.fixture
async def database(pg_dsn: str) -> str:
    await prepare_database(pg_dsn)
    return pg_dsn


async def cancel(conn: asyncpg.Connection, job_id: str, envelopes: list[Envelope]) -> str:
    """Cancel the job as the API does, in one transaction; returns the id of the
    (one) video's failure event."""
    async with conn.transaction():
        _, failure = await cancel_job(conn, job_id, envelopes)
    return str(failure.event_id)


async def assert_only_the_cancel_remains(
    database: str, conn: asyncpg.Connection, job_id: str, envelope: Envelope, failure_id: str
) -> None:
    [result] = await terminal_events(database, job_id)
    assert str(result.event_id) == failure_id
    assert isinstance(result.event, VideoImportFailed) and result.event.code == "cancelled"
    assert await conn.fetchval("SELECT count(*) FROM unsettled_uploads") == 0
    assert await tracking.was_handled(conn, CONSUMER, envelope.id)  # a redelivery is not queued
    assert await queued_tasks(database) == []
    assert await registry_row(database, "ext-1") is None


async def test_a_download_whose_video_is_cancelled_is_abandoned(
    stack: StackInfo,
    database: str,
    conn: asyncpg.Connection,
    s3_bucket: str,
    source: TricklingSource,
) -> None:
    settings = settings_for(stack, database, s3_bucket, download_min_rate=0.0)
    assert settings.ingester_cancel_check_interval == CHECK_INTERVAL
    abandoned = metric(ABANDONED, when="downloading")
    job_id, envelopes = await request_import(database, Video(source.url(BIG)))
    async with running_workers(settings) as running:
        calls = S3Calls(running.ingester.uploader.client)
        await running.queue(database, envelopes)

        async def multipart_under_way() -> bool:
            running.check_alive()
            rows = await ingest_progress(database)
            return (
                calls.succeeded["UploadPart"] == 1
                and source.active[BIG] == 1
                and [r["phase"] for r in rows] == ["downloading"]
            )

        await eventually(multipart_under_way, "the first part of the big video", within=60)
        clock = asyncio.get_running_loop().time
        cancelled_at = clock()
        failure_id = await cancel(conn, job_id, envelopes)

        async def origin_cut_off() -> bool:
            running.check_alive()
            return source.cut[BIG] == 1 and source.active[BIG] == 0

        await eventually(origin_cut_off, "the download to be abandoned", within=20)
        assert clock() - cancelled_at < CHECK_INTERVAL + 3.0

        async def row_gone() -> bool:
            running.check_alive()
            return await queued_tasks(database) == []

        await eventually(row_gone, "the request to be forgotten")
        assert not source.trickle_open.is_set()  # the origin never finished sending

    assert calls.succeeded["CreateMultipartUpload"] == 1
    assert calls.succeeded["AbortMultipartUpload"] == 1  # no incomplete upload remains
    assert calls.sent["CompleteMultipartUpload"] == 0
    assert await object_keys(settings) == []
    await assert_only_the_cancel_remains(database, conn, job_id, envelopes[0], failure_id)
    assert source.hits[BIG] == 1
    assert metric(ABANDONED, when="downloading") == abandoned + 1


async def test_a_queued_video_with_its_result_already_there_is_not_fetched(
    stack: StackInfo,
    database: str,
    conn: asyncpg.Connection,
    s3_bucket: str,
    source: TricklingSource,
) -> None:
    settings = settings_for(stack, database, s3_bucket)
    abandoned = metric(ABANDONED, when="queued")
    path = "/video/sample.mp4"
    job_id, envelopes = await request_import(database, Video(source.url(path)))
    failure_id = await cancel(conn, job_id, envelopes)
    async with running_workers(settings) as running:
        await running.queue(database, envelopes)

        async def row_gone() -> bool:
            running.check_alive()
            return await queued_tasks(database) == []

        await eventually(row_gone, "the request to be forgotten")
    assert source.hits[path] == 0
    assert await object_keys(settings) == []
    await assert_only_the_cancel_remains(database, conn, job_id, envelopes[0], failure_id)
    assert metric(ABANDONED, when="queued") == abandoned + 1


async def test_a_cancel_that_arrives_while_the_result_is_stored_loses_nothing(
    stack: StackInfo,
    database: str,
    conn: asyncpg.Connection,
    s3_bucket: str,
    source: TricklingSource,
) -> None:
    # A transaction of the test holds the request's inbox row, uncommitted, while
    # the download ends: the worker's commit waits on it, storing. The cancel is
    # recorded meanwhile and the watch sees it, but does not abandon a video that
    # is being stored; once the inbox row is let go, the worker's commit conflicts.
    settings = settings_for(
        stack, database, s3_bucket, download_min_rate=0.0, ingester_cancel_check_interval=0.2
    )
    slow = "/trickle/sample.mp4"
    job_id, envelopes = await request_import(database, Video(source.url(slow)))
    abandoned = metric(ABANDONED, when="downloading")
    holder = await asyncpg.connect(database)
    async with running_workers(settings) as running:
        calls = S3Calls(running.ingester.uploader.client)
        await running.queue(database, envelopes)

        async def phase_is(phase: str) -> bool:
            running.check_alive()
            return [r["phase"] for r in await ingest_progress(database)] == [phase]

        await eventually(lambda: phase_is("downloading"), "the download to start")
        inbox_held = holder.transaction()
        await inbox_held.start()
        try:
            assert await tracking.claim_message(holder, CONSUMER, envelopes[0].id)
            source.trickle_open.set()
            await eventually(lambda: phase_is("storing"), "the result to be stored")
            failure_id = await cancel(conn, job_id, envelopes)
            # Several check intervals pass while storing: nothing is cancelled.
            # (What must not happen has no event to wait for: this waits on the clock.)
            await asyncio.sleep(1.0)
            assert await phase_is("storing")
        finally:
            await inbox_held.rollback()
            await holder.close()

        async def row_gone() -> bool:
            running.check_alive()
            return await queued_tasks(database) == []

        await eventually(row_gone, "the request to be forgotten")
    assert source.hits[slow] == 1
    # The objects it stored (the video, its poster) are not registered: deleted once
    # the request was handled.
    assert calls.succeeded["PutObject"] == 2
    assert calls.succeeded["DeleteObject"] == 2
    assert await object_keys(settings) == []
    await assert_only_the_cancel_remains(database, conn, job_id, envelopes[0], failure_id)
    assert metric(ABANDONED, when="downloading") == abandoned
