"""The notifier against real PostgreSQL, Kafka and a local HTTP receiver."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from videoimport_devstack import StackInfo
from videoimport_eventlog import store
from videoimport_events import (
    ImportRequested,
    WebhookDelivered,
    WebhookDeliveryFailed,
)
from videoimport_notifier import domain

from tests.integration.notifier_harness import (
    DEADLINE,
    Receiver,
    attempts,
    delivery_row,
    jobs_topic,
    log_job_completed,
    marker,
    notifier_db,
    notifying,
    publish,
    secret_of,
    serving,
    settings_for,
    verify,
)
from tests.polling import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    async with serving({"/{tail:.*}": rec.handle}) as base:
        rec.url = f"{base}/hooks/video-import"
        yield rec


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    async with notifier_db(pg_dsn) as connection:
        yield connection


async def test_a_completed_job_is_posted_signed_to_its_webhook(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    settings = settings_for(stack, pg_dsn, topic_prefix)
    completed = await log_job_completed(conn, "jobwebhook01", receiver.url)
    async with notifying(settings):
        await publish(stack, jobs_topic(settings), completed)

        async def delivered() -> bool:
            row = await delivery_row(conn, "jobwebhook01")
            return row is not None and row["state"] == "delivered"

        await eventually(delivered, "the delivery to succeed")

    assert len(receiver.requests) == 1
    path, headers, body = receiver.requests[0]
    assert path == "/hooks/video-import"
    assert json.loads(body) == {
        "id": "jobwebhook01",
        "state": "success",
        "overview": {"total": 3, "success": 1, "skipped": 1, "failed": 1},
        "context": {"myIdentifier": "some-identifier"},
    }
    delivery_id = domain.delivery_id_for(str(completed.event_id))
    assert headers["webhook-id"] == delivery_id
    assert headers["Content-Type"] == "application/json"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    verify(await secret_of(conn), headers, body)

    row = await delivery_row(conn, "jobwebhook01")
    assert row is not None
    assert (row["delivery_id"], row["attempts"], row["last_status"]) == (delivery_id, 1, 200)
    [event] = await attempts(conn, delivery_id)
    assert event.event == WebhookDelivered(
        job_id="jobwebhook01",
        project="acme",
        delivery_id=delivery_id,
        url=receiver.url,
        attempt=1,
        status_code=200,
    )
    assert (event.stream_version, event.correlation_id, event.causation_id) == (
        0,
        "jobwebhook01",
        str(completed.event_id),
    )


async def test_a_failed_attempt_is_retried_with_the_same_body_and_both_are_recorded(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    receiver.statuses = [500, 200]
    settings = settings_for(stack, pg_dsn, topic_prefix)
    completed = await log_job_completed(conn, "jobretry0001", receiver.url)
    async with notifying(settings):
        await publish(stack, jobs_topic(settings), completed)

        async def delivered() -> bool:
            row = await delivery_row(conn, "jobretry0001")
            return row is not None and row["state"] == "delivered"

        await eventually(delivered, "the retried delivery to succeed")

    assert len(receiver.requests) == 2
    (_, first_headers, first_body), (_, second_headers, second_body) = receiver.requests
    assert first_body == second_body
    assert first_headers["webhook-id"] == second_headers["webhook-id"]
    secret = await secret_of(conn)
    verify(secret, first_headers, first_body)
    verify(secret, second_headers, second_body)

    delivery_id = domain.delivery_id_for(str(completed.event_id))
    failed, delivered_event = await attempts(conn, delivery_id)
    assert isinstance(failed.event, WebhookDeliveryFailed)
    assert (failed.stream_version, failed.event.attempt, failed.event.status_code) == (0, 1, 500)
    assert failed.event.error == "HTTP 500"
    assert failed.event.next_attempt_at is not None
    assert isinstance(delivered_event.event, WebhookDelivered)
    assert (delivered_event.stream_version, delivered_event.event.attempt) == (1, 2)
    row = await delivery_row(conn, "jobretry0001")
    assert row is not None and row["attempts"] == 2


async def test_the_last_failed_attempt_gives_up_and_redirects_are_not_followed(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    receiver.statuses = [302, 503, 500]
    settings = settings_for(stack, pg_dsn, topic_prefix)
    completed = await log_job_completed(conn, "jobgiveup001", receiver.url)
    async with notifying(settings):
        await publish(stack, jobs_topic(settings), completed)

        async def given_up() -> bool:
            row = await delivery_row(conn, "jobgiveup001")
            return row is not None and row["state"] == "failed"

        await eventually(given_up, "the delivery to fail for good")

    assert [path for path, _, _ in receiver.requests] == ["/hooks/video-import"] * 3
    delivery_id = domain.delivery_id_for(str(completed.event_id))
    events = [e.event for e in await attempts(conn, delivery_id)]
    assert [(e.attempt, e.status_code) for e in events] == [(1, 302), (2, 503), (3, 500)]  # type: ignore[union-attr]
    assert isinstance(events[-1], WebhookDeliveryFailed)
    assert events[-1].next_attempt_at is None


async def test_a_redelivered_job_completed_creates_one_delivery(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    settings = settings_for(stack, pg_dsn, topic_prefix)
    completed = await log_job_completed(conn, "jobduplicate", receiver.url)
    no_hook = await log_job_completed(conn, "jobnohook001", None)
    request = ImportRequested(
        job_id="jobother0001",
        project="acme",
        system_name="s",
        api_version="2025-03",
        video_count=1,
        webhook=receiver.url,
    )
    async with conn.transaction():
        await store.append(
            conn, [store.NewEvent(request, "job-jobother0001", 0, "jobother0001", "acme")]
        )
    other = (await store.read_stream(conn, "job-jobother0001"))[0]
    # Messages of one key are handled in order, so once the delivery of a later
    # marker (same key, its own event id) exists, every message before it was handled.
    markers = [
        marker(job_id, receiver.url) for job_id in ("jobduplicate", "jobother0001", "jobnohook001")
    ]
    sent = [completed.envelope()] * 2 + [other.envelope(), no_hook.envelope()]
    sent += [completed.envelope(), *markers]
    async with notifying(settings):
        await publish(stack, jobs_topic(settings), *sent)

        async def all_delivered() -> bool:
            states = await conn.fetch("SELECT state FROM webhook_deliveries")
            return len(states) == 4 and all(r["state"] == "delivered" for r in states)

        await eventually(all_delivered, "the original and the three marker deliveries")

    causes = await conn.fetch("SELECT cause_event_id, job_id FROM webhook_deliveries")
    assert sorted(r["cause_event_id"] for r in causes) == sorted(
        [str(completed.event_id)] + [m.id for m in markers]
    )
    assert len(receiver.requests) == 4
    assert await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = 'notifier'") == 4


async def test_private_addresses_are_refused_unless_allowed(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    settings = settings_for(stack, pg_dsn, topic_prefix, allow_private=False)
    completed = await log_job_completed(conn, "jobssrf00001", receiver.url)
    async with notifying(settings):
        await publish(stack, jobs_topic(settings), completed)

        async def refused() -> bool:
            row = await delivery_row(conn, "jobssrf00001")
            return row is not None and row["state"] == "failed"

        await eventually(refused, "the delivery to be refused")

    assert receiver.requests == []
    delivery_id = domain.delivery_id_for(str(completed.event_id))
    [event] = [e.event for e in await attempts(conn, delivery_id)]
    assert isinstance(event, WebhookDeliveryFailed)
    assert "non-public address 127.0.0.1" in event.error
    assert (event.attempt, event.status_code, event.next_attempt_at) == (1, None, None)


async def test_the_notifier_process_exits_cleanly_on_sigterm(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    settings = settings_for(stack, pg_dsn, topic_prefix)
    env = {
        **os.environ,
        "VIDEOIMPORT_DATABASE_URL": pg_dsn,
        "VIDEOIMPORT_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "VIDEOIMPORT_TOPIC_PREFIX": topic_prefix,
        "VIDEOIMPORT_TOPIC_PARTITIONS": "1",
        "VIDEOIMPORT_ALLOW_PRIVATE_URLS": "true",
        "VIDEOIMPORT_SCHEDULER_POLL_INTERVAL": "0.1",
    }
    completed = await log_job_completed(conn, "jobprocess01", receiver.url)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "videoimport_notifier", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:

        async def ready() -> bool:
            return bool(await conn.fetchval("SELECT to_regclass('webhook_deliveries') IS NOT NULL"))

        await eventually(ready, "the notifier to create its table")
        await publish(stack, jobs_topic(settings), completed)

        async def delivered() -> bool:
            row = await delivery_row(conn, "jobprocess01")
            return row is not None and row["state"] == "delivered"

        await eventually(delivered, "the delivery to succeed")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), DEADLINE)
    assert process.returncode == 0, stderr.decode()
    assert len(receiver.requests) == 1
    verify(await secret_of(conn), receiver.requests[0][1], receiver.requests[0][2])
