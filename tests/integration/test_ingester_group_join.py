"""A restarted ingester while its consumer group still holds a member that was killed
without leaving: the join waits out that member's session, the queue does not."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from videoimport_devstack import StackInfo
from videoimport_eventlog.kafka import ensure_topics
from videoimport_ingester import bootstrap
from videoimport_ingester.adapters import tasks

from tests.polling import eventually

from .ingester_harness import (
    Video,
    VideoSource,
    group_members,
    prepare_database,
    request_import,
    running_ingester,
    settings_for,
    terminal_events,
    video_source,
)

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=10)]

# A member of the group in a process of its own, with a long session (30 s): killed,
# it stays in the group until the session expires, as a killed ingester does.
MEMBER = """
import asyncio, sys
from aiokafka import AIOKafkaConsumer

async def main():
    consumer = AIOKafkaConsumer(
        bootstrap_servers=sys.argv[1], group_id=sys.argv[2], client_id="killed-member",
        session_timeout_ms=30000, heartbeat_interval_ms=1000,
    )
    consumer.subscribe([sys.argv[3]])
    await consumer.start()
    print("joined", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture
async def source(fixtures_dir: Path) -> AsyncIterator[VideoSource]:
    async with video_source(fixtures_dir) as running:
        yield running


async def kill_a_joined_member(stack: StackInfo, group: str, topic: str) -> str:
    """Join ``group`` from another process, SIGKILL it; returns its member id."""
    member = await asyncio.create_subprocess_exec(
        sys.executable, "-c", MEMBER, stack.kafka_bootstrap, group, topic,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert member.stdout is not None
        assert await asyncio.wait_for(member.stdout.readline(), 60) == b"joined\n"
    finally:
        member.send_signal(signal.SIGKILL)
        await member.wait()
    state, members = await group_members(stack, group)
    assert state == "Stable" and len(members) == 1
    return members[0]


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
