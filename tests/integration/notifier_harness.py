"""Shared pieces of the notifier's integration tests: a scripted receiver, the
notifier run in-process, and JobCompleted events put where the relay would."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
from aiohttp import web
from standardwebhooks import Webhook
from videoimport_devstack import StackInfo
from videoimport_eventlog import kafka, schema, store
from videoimport_events import Envelope, JobCompleted, Overview, encode_envelope
from videoimport_notifier.service import Notifier
from videoimport_notifier.settings import NotifierSettings
from videoimport_projects import ProjectConfig, create_project, webhook_secrets

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


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serving(routes: dict[str, Handler]) -> AsyncIterator[str]:
    """A local HTTP server answering POSTs to ``routes``; yields its base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def notifier_db(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a migrated database with the notifier tests' projects."""
    connection = await asyncpg.connect(dsn)
    try:
        await schema.migrate(connection)
        await create_projects(connection)
        yield connection
    finally:
        await connection.close()
