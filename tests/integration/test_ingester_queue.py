"""The ingester's work queue against real Kafka, PostgreSQL and S3: poison requests,
fairness between projects, slow sources, and a second instance joining mid-download."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from videoimport_devstack import StackInfo
from videoimport_events import VideoImported, VideoImportFailed
from videoimport_ingester import bootstrap
from videoimport_ingester.bootstrap import build_ingester

from tests.polling import eventually

from .group_harness import group_members
from .ingester_harness import (
    PROJECT,
    Video,
    VideoSource,
    metric,
    prepare_database,
    publish,
    queued_tasks,
    request_import,
    running_ingester,
    settings_for,
    terminal_events,
    video_source,
)

pytestmark = pytest.mark.integration

OTHER = "sport"


@pytest.fixture
async def source(fixtures_dir: Path) -> AsyncIterator[VideoSource]:
    async with video_source(fixtures_dir) as running:
        yield running


@pytest.fixture
async def database(pg_dsn: str) -> str:
    await prepare_database(pg_dsn, OTHER)
    return pg_dsn


async def committed_offsets(stack: StackInfo, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(meta.offset for tp, meta in committed.items() if tp.topic == topic)


async def test_a_poison_request_fails_after_its_attempts_and_the_partition_flows_on(
    stack: StackInfo, database: str, s3_bucket: str, topic_prefix: str, source: VideoSource
) -> None:
    # One partition: the poison and the healthy request share it, poison first.
    settings = settings_for(
        stack,
        database,
        s3_bucket,
        topic_prefix,
        kafka_partitions=1,
        ingester_attempts=3,
        ingester_retry_base=0.05,
        ingester_retry_max_delay=0.2,
    )
    conn = await asyncpg.connect(database)
    try:
        # Valid JSON, but not a ProjectConfig: every attempt raises ValueError (not an outage).
        await conn.execute(
            "UPDATE projects SET config = '{\"metadata\": 5}' WHERE name = $1", PROJECT
        )
    finally:
        await conn.close()
    poison_job, [poison] = await request_import(database, Video(source.url("/video/sample.mp4")))
    healthy_job, [healthy] = await request_import(
        database, Video(source.url("/video/sample.webm")), project=OTHER
    )
    counted_before = metric("videoimport_ingester_task_failures_total", kind="counted")
    await publish(stack, settings, [poison, healthy])

    async with running_ingester(settings) as ingester:

        async def both_done() -> bool:
            ingester.check_alive()
            done = [await terminal_events(database, job) for job in (poison_job, healthy_job)]
            return all(done)

        await eventually(both_done, "both requests to end", within=60)
        topic = bootstrap.videos_topic(settings)

        async def committed_past_both() -> bool:
            return await committed_offsets(stack, bootstrap.group_id(settings), topic) == 2

        await eventually(committed_past_both, "offsets committed past both messages")

    [failed] = await terminal_events(database, poison_job)
    assert isinstance(failed.event, VideoImportFailed)
    assert failed.event.code == "internal_error"
    assert failed.event.reason == f"internal error (ref {poison.id})"  # no internals leak
    assert failed.causation_id == poison.id
    [imported] = await terminal_events(database, healthy_job)
    assert isinstance(imported.event, VideoImported)
    counted = metric("videoimport_ingester_task_failures_total", kind="counted") - counted_before
    assert counted == 3  # exactly ingester_attempts tries
    assert await queued_tasks(database) == []


async def test_one_project_cannot_take_every_download_slot(
    stack: StackInfo, database: str, s3_bucket: str, topic_prefix: str, source: VideoSource
) -> None:
    settings = settings_for(
        stack,
        database,
        s3_bucket,
        topic_prefix,
        ingester_concurrency=8,
        ingester_project_limit=6,
        download_min_rate=0.0,  # the trickle is the point here, not its rate
    )
    slow = "/trickle/sample.mp4"
    backlog_job, backlog = await request_import(
        database, *(Video(source.url(f"{slow}?n={i}"), external_id=f"a{i}") for i in range(10))
    )
    await publish(stack, settings, backlog)
    async with running_ingester(settings) as ingester:

        async def project_at_its_limit() -> bool:
            ingester.check_alive()
            return source.active[slow] == 6

        await eventually(project_at_its_limit, "six of the backlog downloading", within=60)
        # Two workers are free, yet the backlog's other four wait: the project is at its limit.
        assert [r["running"] for r in await queued_tasks(database)].count(True) == 6

        small_job, small = await request_import(
            database, Video(source.url("/video/sample.mp4"), external_id="b1"), project=OTHER
        )
        await publish(stack, settings, small)

        async def small_job_done() -> bool:
            ingester.check_alive()
            return len(await terminal_events(database, small_job)) == 1

        # The backlog is held open until released below, so finishing at all (not
        # how fast, on a loaded machine) is what shows the free slots were used.
        await eventually(small_job_done, "the other project's video", within=30)
        assert source.active[slow] == 6
        assert await terminal_events(database, backlog_job) == []

        source.trickle_open.set()

        async def backlog_done() -> bool:
            ingester.check_alive()
            return len(await terminal_events(database, backlog_job)) == 10

        await eventually(backlog_done, "the backlog", within=60)

    [small_result] = await terminal_events(database, small_job)
    assert isinstance(small_result.event, VideoImported)
    results = await terminal_events(database, backlog_job)
    assert all(isinstance(r.event, VideoImported) for r in results)
    assert [source.url_hits[f"{slow}?n={i}"] for i in range(10)] == [1] * 10  # each once
    assert await queued_tasks(database) == []


async def test_a_source_below_the_minimum_rate_fails_within_the_window(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    # 1 KiB at once, then 10 bytes/s: far below 2000 bytes/s over any 1 s.
    settings = settings_for(
        stack, database, s3_bucket, download_min_rate=2000.0, download_rate_window=1.0
    )
    _, [envelope] = await request_import(database, Video(source.url("/trickle/sample.mp4")))
    async with build_ingester(settings) as ingester:
        started = asyncio.get_running_loop().time()
        event = await asyncio.wait_for(ingester.handle(envelope), 30)
        elapsed = asyncio.get_running_loop().time() - started
    assert isinstance(event, VideoImportFailed)
    assert (event.code, event.reason) == (
        "timeout",
        "timeout: the source sent less than 2000 bytes/s over 1 s",
    )
    # Not the read timeout (30 s) nor the end of the trickle (20 min): the window.
    # The slack above it is for connecting and recording on a busy machine.
    assert 1.0 <= elapsed < 10.0
    assert source.hits["/trickle/sample.mp4"] == 1  # not retried: the slot is freed


async def test_a_second_ingester_joins_during_a_long_download(
    stack: StackInfo, database: str, s3_bucket: str, topic_prefix: str, source: VideoSource
) -> None:
    settings = settings_for(
        stack, database, s3_bucket, topic_prefix, download_min_rate=0.0, kafka_partitions=4
    )
    group = bootstrap.group_id(settings)
    slow = "/trickle/sample.mp4"
    job_id, first = await request_import(
        database,
        Video(source.url(slow), external_id="slow"),
        *(Video(source.url(f"/video/sample.mp4?n={i}"), external_id=f"f{i}") for i in range(3)),
    )
    await publish(stack, settings, first)
    async with running_ingester(settings) as one:

        async def slow_download_running() -> bool:
            one.check_alive()
            return source.active[slow] == 1

        await eventually(slow_download_running, "the long download", within=60)

        async def alone_in_the_group() -> bool:
            state, members = await group_members(stack, group)
            return state == "Stable" and len(members) == 1

        await eventually(alone_in_the_group, "the first member to settle")
        [first_member] = (await group_members(stack, group))[1]

        async with running_ingester(settings) as two:

            async def both_members() -> bool:
                one.check_alive()
                two.check_alive()
                state, members = await group_members(stack, group)
                return state == "Stable" and len(members) == 2

            # The rebalance does not wait for the download: it completes at once.
            await eventually(both_members, "the rebalance to complete", within=20)
            _, members = await group_members(stack, group)
            assert first_member in members  # not evicted and rejoined under a new id
            assert source.active[slow] == 1  # still the same download, never restarted

            more_job, more = await request_import(
                database,
                *(
                    Video(source.url(f"/video/sample.webm?n={i}"), external_id=f"m{i}")
                    for i in range(4)
                ),
            )
            await publish(stack, settings, more)

            async def more_done() -> bool:
                one.check_alive()
                two.check_alive()
                return len(await terminal_events(database, more_job)) == 4

            await eventually(more_done, "the new job while the long download runs", within=30)
            assert len(await terminal_events(database, job_id)) == 3  # all but the slow one

            source.trickle_open.set()

            async def job_done() -> bool:
                return len(await terminal_events(database, job_id)) == 4

            await eventually(job_done, "the long download to finish", within=30)
            assert (await group_members(stack, group))[1] == members  # nobody left meanwhile

    results: list[Any] = [
        *await terminal_events(database, job_id),
        *await terminal_events(database, more_job),
    ]
    assert all(isinstance(r.event, VideoImported) for r in results)
    # Nothing was downloaded twice: the rebalance moved no work between instances.
    assert source.url_hits[slow] == 1
    assert all(source.url_hits[f"/video/sample.mp4?n={i}"] == 1 for i in range(3))
    assert all(source.url_hits[f"/video/sample.webm?n={i}"] == 1 for i in range(4))
    assert await queued_tasks(database) == []
