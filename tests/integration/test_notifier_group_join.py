"""A restarted notifier while its consumer group still holds a member that was killed
without leaving: the join waits out that member's session, due webhooks do not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from videoimport_devstack import StackInfo
from videoimport_eventlog.kafka import ensure_topics
from videoimport_notifier import bootstrap, handlers
from videoimport_notifier.service import Notifier

from tests.polling import eventually

from .group_harness import group_members, kill_a_joined_member
from .notifier_harness import (
    Receiver,
    delivery_row,
    jobs_topic,
    log_job_completed,
    notifier_db,
    serving,
    settings_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=10)]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    async with serving({"/{tail:.*}": rec.handle}) as base:
        rec.url = f"{base}/hook"
        yield rec


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    async with notifier_db(pg_dsn) as connection:
        yield connection


async def test_a_due_webhook_is_sent_while_the_group_waits_for_a_killed_member(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    settings = settings_for(stack, pg_dsn, topic_prefix)
    topic, group = jobs_topic(settings), bootstrap.group_id(settings)
    await ensure_topics(stack.kafka_bootstrap, settings.topic_partitions, topics=[topic])
    killed = await kill_a_joined_member(stack, group, topic)
    # A delivery the killed instance had recorded and not sent.
    completed = await log_job_completed(conn, "jobrestarted", receiver.url)
    assert await handlers.record(conn, completed.envelope(), datetime.now(UTC)) is not None

    stop = asyncio.Event()
    notifier = asyncio.create_task(Notifier(settings).run(stop))
    try:

        async def delivered() -> bool:
            assert not notifier.done(), notifier
            row = await delivery_row(conn, "jobrestarted")
            return row is not None and row["state"] == "delivered"

        await eventually(delivered, "the due webhook to be delivered")
        # Sent while the join still waits for the killed member's session (30 s).
        assert killed in (await group_members(stack, group))[1]
        assert len(receiver.requests) == 1
        # And SIGTERM during the join ends the instance now, not after that session.
        stop.set()
        await asyncio.wait_for(asyncio.shield(notifier), settings.webhook_timeout + 15)
        assert killed in (await group_members(stack, group))[1]
    finally:
        stop.set()
        await asyncio.wait_for(notifier, 60)
