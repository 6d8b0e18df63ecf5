"""A restarted ingester while its consumer group still holds a member that was killed
without leaving: the join waits out that member's session, the queue does not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from videoimport_devstack import StackInfo
from videoimport_eventlog.kafka import ensure_topics
from videoimport_ingester import bootstrap
from videoimport_ingester.adapters import tasks

from tests.polling import eventually

from .group_harness import group_members, kill_a_joined_member
from .ingester_harness import (
    Video,
    VideoSource,
    prepare_database,
    request_import,
    running_ingester,
    settings_for,
    terminal_events,
    video_source,
)

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=10)]


@pytest.fixture
async def source(fixtures_dir: Path) -> AsyncIterator[VideoSource]:
    async with video_source(fixtures_dir) as running:
        yield running


async def test_queued_work_is_done_while_the_group_waits_for_a_killed_member(
    stack: StackInfo, pg_dsn: str, s3_bucket: str, topic_prefix: str, source: VideoSource
) -> None:
    await prepare_database(pg_dsn)
    settings = settings_for(stack, pg_dsn, s3_bucket, topic_prefix)
    topic, group = bootstrap.videos_topic(settings), bootstrap.group_id(settings)
    await ensure_topics(stack.kafka_bootstrap, settings.kafka_partitions, topics=[topic])
    killed = await kill_a_joined_member(stack, group, topic)
    # Work the killed instance had queued and not started.
    job_id, envelopes = await request_import(pg_dsn, Video(source.url("/video/sample.mp4")))
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert len(await tasks.enqueue_many(conn, envelopes)) == 1
    finally:
        await conn.close()

    async with running_ingester(settings) as ingester:

        async def imported() -> bool:
            ingester.check_alive()
            return len(await terminal_events(pg_dsn, job_id)) == 1

        await eventually(imported, "the queued video to be imported")
        # Done while the join still waits for the killed member's session (30 s).
        _, members = await group_members(stack, group)
        assert killed in members
        # And SIGTERM during the join ends the instance now, not after that session.
        ingester.stop.set()
        await asyncio.wait_for(asyncio.shield(ingester.task), settings.shutdown_grace + 10)
        _, members = await group_members(stack, group)
        assert killed in members
