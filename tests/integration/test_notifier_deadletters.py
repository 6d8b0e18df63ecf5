"""Poison messages on the jobs topic are parked as dead letters after bounded
attempts, the partition moves on, and a letter an operator retries is handled
again from the log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from videoimport_devstack import StackInfo
from videoimport_eventlog import kafka
from videoimport_events import Envelope

from tests.integration.notifier_harness import (
    Receiver,
    delivery_row,
    jobs_topic,
    log_job_completed,
    marker,
    notifier_db,
    notifying,
    publish,
    serving,
    settings_for,
)
from tests.polling import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    async with notifier_db(pg_dsn) as connection:
        yield connection


@pytest.fixture
async def hooks() -> AsyncIterator[Receiver]:
    rec = Receiver()
    async with serving({"/{tail:.*}": rec.handle}) as base:
        rec.url = f"{base}/hook"
        yield rec


async def publish_raw(stack: StackInfo, topic: str, key: bytes, value: bytes) -> None:
    producer = kafka.make_producer(stack.kafka_bootstrap, "test-garbage")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def committed_offset(stack: StackInfo, group: str, topic: str) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    found = offsets.get(TopicPartition(topic, 0))
    return None if found is None else int(found.offset)


async def letter_state(conn: asyncpg.Connection, letter_id: int) -> str:
    state: str = await conn.fetchval("SELECT state FROM dead_letters WHERE id = $1", letter_id)
    return state


async def test_poison_messages_are_parked_and_the_next_job_on_the_partition_is_delivered(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, hooks: Receiver
) -> None:
    settings = settings_for(
        stack, pg_dsn, topic_prefix, consumer_attempts=3, consumer_retry_base=0.05
    )
    topic = jobs_topic(settings)
    # Decodes, but its webhook URL holds a NUL, which PostgreSQL cannot store:
    # recording its delivery fails every time (a real fault, not an outage).
    poison: Envelope = marker("jobpoison001", hooks.url + "\x00")
    # Behind it, on the same key (so strictly after it): the job that must not wait.
    good: Envelope = marker("jobpoison001", hooks.url)
    async with notifying(settings):
        await publish_raw(stack, topic, b"jobpoison001", b"\x00 not an envelope")
        await publish(stack, topic, poison, good)

        async def good_delivered() -> bool:
            state = await conn.fetchval(
                "SELECT state FROM webhook_deliveries WHERE cause_event_id = $1", good.id
            )
            return bool(state == "delivered")

        await eventually(good_delivered, "the job behind the poison to be delivered")

        async def all_committed() -> bool:
            group = f"{topic_prefix}notifier"
            return await committed_offset(stack, group, topic) == 3

        await eventually(all_committed, "the offsets to move past both poison messages")

    garbage, parked = await conn.fetch("SELECT * FROM dead_letters ORDER BY id")
    # Undecodable: parked at once, with its bytes, naming no event.
    assert (garbage["consumer"], garbage["event_id"], garbage["attempts"]) == ("notifier", None, 1)
    assert garbage["payload"] == b"\x00 not an envelope"
    assert garbage["source"] == f"kafka:{topic}/0@0"
    # Decodable: parked after the policy's attempts, naming its event.
    assert (parked["consumer"], str(parked["event_id"])) == ("notifier", poison.id)
    assert (parked["attempts"], parked["state"], parked["payload"]) == (3, "parked", None)
    assert parked["source"] == f"kafka:{topic}/0@1"
    assert "CharacterNotInRepertoireError" in parked["error"]
    assert await conn.fetchval("SELECT count(*) FROM webhook_deliveries") == 1
    assert await conn.fetchval("SELECT count(*) FROM inbox WHERE message_id = $1", poison.id) == 0
    assert len(hooks.requests) == 1

    # Retrying a letter whose event is not in the log parks it again, with the reason.
    async with notifying(settings):
        await conn.execute("UPDATE dead_letters SET state = 'retry'")

        async def parked_again() -> bool:
            states = [await letter_state(conn, r["id"]) for r in (garbage, parked)]
            return states == ["parked", "parked"]

        await eventually(parked_again, "both letters to be parked again")
    again = await conn.fetchrow("SELECT * FROM dead_letters WHERE id = $1", parked["id"])
    assert (again["attempts"], again["error"]) == (
        4,
        f"LookupError: event {poison.id} is not in the log",
    )


async def test_a_dead_letter_marked_for_retry_is_handled_again_and_resolved_once_fixed(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, hooks: Receiver
) -> None:
    settings = settings_for(
        stack, pg_dsn, topic_prefix, consumer_attempts=2, consumer_retry_base=0.05
    )
    completed = await log_job_completed(conn, "jobdeadletter", hooks.url)
    # A fault of this job's delivery row that an operator can remove.
    await conn.execute(
        "ALTER TABLE webhook_deliveries ADD CONSTRAINT not_this_job"
        " CHECK (job_id <> 'jobdeadletter')"
    )
    async with notifying(settings):
        await publish(stack, jobs_topic(settings), completed)

        async def parked() -> bool:
            return bool(await conn.fetchval("SELECT count(*) FROM dead_letters") == 1)

        await eventually(parked, "the message to be parked")
        letter = await conn.fetchrow("SELECT * FROM dead_letters")
        assert (str(letter["event_id"]), letter["attempts"], letter["position"]) == (
            str(completed.event_id),
            2,
            completed.position,
        )
        assert "CheckViolationError" in letter["error"]

        # Retried while the cause is still there: parked again, counted.
        await conn.execute("UPDATE dead_letters SET state = 'retry'")

        async def counted_again() -> bool:
            row = await conn.fetchrow("SELECT state, attempts FROM dead_letters")
            return (row["state"], row["attempts"]) == ("parked", 3)

        await eventually(counted_again, "the letter to be parked again")
        assert await delivery_row(conn, "jobdeadletter") is None

        await conn.execute("ALTER TABLE webhook_deliveries DROP CONSTRAINT not_this_job")
        await conn.execute("UPDATE dead_letters SET state = 'retry'")

        async def delivered() -> bool:
            row = await delivery_row(conn, "jobdeadletter")
            state = await letter_state(conn, letter["id"])
            return row is not None and row["state"] == "delivered" and state == "resolved"

        await eventually(delivered, "the letter to be resolved and the webhook delivered")

        # Retrying it once more changes nothing: recording is idempotent.
        await conn.execute("UPDATE dead_letters SET state = 'retry'")

        async def resolved_again() -> bool:
            return await letter_state(conn, letter["id"]) == "resolved"

        await eventually(resolved_again, "the repeated retry to resolve")

    assert await conn.fetchval("SELECT count(*) FROM webhook_deliveries") == 1
    assert len(hooks.requests) == 1
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer = 'notifier' AND message_id = $1",
            str(completed.event_id),
        )
        == 1
    )
