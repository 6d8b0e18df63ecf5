"""The notifier against real PostgreSQL, Kafka and a local HTTP receiver."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp import web
from standardwebhooks import Webhook
from videoimport_devstack import StackInfo
from videoimport_eventlog import kafka, schema, store
from videoimport_events import (
    Envelope,
    ImportRequested,
    JobCompleted,
    Overview,
    WebhookDelivered,
    WebhookDeliveryFailed,
    encode_envelope,
)
from videoimport_notifier import domain
from videoimport_notifier.service import Notifier
from videoimport_notifier.settings import NotifierSettings
from videoimport_projects import ProjectConfig, create_project, webhook_secrets

from tests.polling import eventually

pytestmark = pytest.mark.integration
DEADLINE = 30.0
PROJECTS = ("acme", "slowco", "fastco")
"""The projects the notifier tests deliver for (each has its own webhook secret)."""
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Receiver:
    """A real HTTP endpoint answering with scripted statuses, remembering each request."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.path, dict(request.headers), body))
        status = self.statuses.pop(0) if self.statuses else 200
        headers = {"Location": "/elsewhere"} if 300 <= status < 400 else {}
        return web.Response(status=status, headers=headers)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/hooks/video-import"
    try:
        yield rec
    finally:
        await runner.cleanup()


def settings_for(
    stack: StackInfo, dsn: str, prefix: str, *, allow_private: bool = True, **overrides: Any
) -> NotifierSettings:
    settings = NotifierSettings(
        database_url=dsn,
        kafka_bootstrap=stack.kafka_bootstrap,
        topic_prefix=prefix,
        topic_partitions=1,
        allow_private_urls=allow_private,
        webhook_concurrency=2,
        webhook_retry_base=0.05,
        webhook_retry_jitter=0.0,
        webhook_max_attempts=3,
        scheduler_poll_interval=0.05,
        dead_letter_poll_interval=0.1,
    )
    return msgspec.structs.replace(settings, **overrides)


@contextlib.asynccontextmanager
async def notifying(settings: NotifierSettings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    notifier = Notifier(settings)
    task = asyncio.create_task(notifier.run(stop))
    try:
        # Past its migration and topic creation: the test's writes must not race them.
        await asyncio.wait_for(notifier.prepared.wait(), DEADLINE)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)


async def create_projects(conn: asyncpg.Connection, *names: str) -> None:
    for name in names or PROJECTS:
        await create_project(conn, name, ProjectConfig())


async def secret_of(conn: asyncpg.Connection, project: str = "acme") -> str:
    current = await webhook_secrets.current_secret(conn, project)
    assert current is not None, f"project {project} has no webhook secret"
    return current.secret


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_dsn)
    await schema.migrate(connection)
    await create_projects(connection)
    try:
        yield connection
    finally:
        await connection.close()


async def log_job_completed(
    conn: asyncpg.Connection, job_id: str, webhook: str | None, project: str = "acme"
) -> store.RecordedEvent:
    """Record a JobCompleted as the projector would and read it back from the log."""
    event = JobCompleted(
        job_id=job_id,
        project=project,
        state="success",
        overview=Overview(total=3, success=1, skipped=1, failed=1),
        started_at=T0,
        finished_at=T0,
        webhook=webhook,
        context={"myIdentifier": "some-identifier"},
    )
    async with conn.transaction():
        await store.append(
            conn,
            [store.NewEvent(event, f"job-{job_id}", 1, correlation_id=job_id, project=project)],
        )
    return (await store.read_stream(conn, f"job-{job_id}"))[-1]


async def publish(stack: StackInfo, topic: str, *items: store.RecordedEvent | Envelope) -> None:
    """Put envelopes on the jobs topic as the relay would."""
    producer = kafka.make_producer(stack.kafka_bootstrap, "test-relay")
    await producer.start()
    try:
        for item in items:
            envelope = item.envelope() if isinstance(item, store.RecordedEvent) else item
            await producer.send_and_wait(
                topic,
                encode_envelope(envelope),
                key=envelope.data.partition_key().encode(),
                headers=[
                    ("event-id", envelope.id.encode()),
                    ("event-type", envelope.type.encode()),
                    ("event-version", str(envelope.version).encode()),
                    ("correlation-id", envelope.correlation_id.encode()),
                ],
            )
    finally:
        await producer.stop()


async def delivery_row(conn: asyncpg.Connection, job_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM webhook_deliveries WHERE job_id = $1", job_id
    )
    return row


def jobs_topic(settings: NotifierSettings) -> str:
    return f"{settings.topic_prefix}videoimport.jobs"


def verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    """Check the request as a receiver would, with the ``standardwebhooks`` package
    (raises ``WebhookVerificationError`` when no signature matches)."""
    Webhook(secret).verify(body, headers)


async def attempts(conn: asyncpg.Connection, delivery_id: str) -> list[store.RecordedEvent]:
    return await store.read_stream(conn, f"webhook-{delivery_id}")


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


def marker(job_id: str, webhook: str, project: str = "acme") -> Envelope:
    """A JobCompleted that is not in the log, only on the topic (enough for the notifier)."""
    event = JobCompleted(
        job_id=job_id,
        project=project,
        state="failed",
        overview=Overview(total=1, success=0, skipped=0, failed=1),
        started_at=T0,
        finished_at=T0,
        webhook=webhook,
    )
    return Envelope(
        id=str(uuid.uuid4()),
        type="JobCompleted",
        version=1,
        position=1_000_000,
        stream=f"job-{job_id}",
        stream_version=1,
        occurred_at=T0,
        correlation_id=job_id,
        causation_id=None,
        project=project,
        data=event,
    )


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
