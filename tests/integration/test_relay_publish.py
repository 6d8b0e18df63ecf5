"""The outbox relay against a real PostgreSQL and a real Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import asyncpg
import msgspec
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaTimeoutError
from videoimport_devstack import StackInfo
from videoimport_eventlog import kafka, schema, store, tracking
from videoimport_events import (
    Envelope,
    VideoImportFailed,
    WebhookDelivered,
    decode_envelope,
    encode_envelope,
    video_key,
    video_stream,
    webhook_stream,
)
from videoimport_relay import bootstrap, handlers
from videoimport_relay.service import Relay
from videoimport_relay.settings import RelaySettings

from tests.polling import eventually
from tests.requests import append_unknown_event, requested_job

pytestmark = pytest.mark.integration
DEADLINE = 30.0


@dataclass(frozen=True)
class Published:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict[str, bytes]

    @property
    def position(self) -> int:
        # Undecoded data: the relay also publishes types this code does not know.
        return msgspec.json.decode(self.value, type=kafka.RawEnvelope).position


class Collector:
    """Reads every relay topic from the beginning into ``messages``."""

    def __init__(self, bootstrap_servers: str, topics: list[str]) -> None:
        self.messages: list[Published] = []
        self._consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for r in records:
                    self.messages.append(
                        Published(r.topic, r.partition, r.offset, r.key, r.value, dict(r.headers))
                    )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    def positions(self) -> list[int]:
        return sorted(m.position for m in self.messages)

    async def wait_for(self, count: int) -> None:
        async def enough() -> bool:
            return len(self.messages) >= count

        await eventually(enough, f"{count} messages on Kafka")


def settings_for(stack: StackInfo, dsn: str, prefix: str) -> RelaySettings:
    # One partition per topic, so Kafka's order within a topic is the relay's send order.
    return RelaySettings(
        database_url=dsn,
        kafka_bootstrap=stack.kafka_bootstrap,
        topic_prefix=prefix,
        topic_partitions=1,
        batch_size=3,
        poll_interval=0.2,
        standby_interval=0.1,
        retry_delay=0.2,
    )


@contextlib.asynccontextmanager
async def running(relay: Relay, *, leads: bool = True) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.wait_for(relay.prepared.wait(), DEADLINE)
        if leads:
            # Past its migration: a test's open append must not race the DDL.
            async def leading() -> bool:
                if task.done():
                    task.result()
                return relay.is_leader

            await eventually(leading, "the relay to lead")
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)


@pytest.fixture
async def setup(
    stack: StackInfo, pg_dsn: str, topic_prefix: str
) -> AsyncIterator[tuple[RelaySettings, asyncpg.Connection, Collector]]:
    settings = settings_for(stack, pg_dsn, topic_prefix)
    await bootstrap.prepare(settings)
    conn = await asyncpg.connect(pg_dsn)
    collector = Collector(stack.kafka_bootstrap, bootstrap.topics(settings))
    await collector.start()
    try:
        yield settings, conn, collector
    finally:
        await collector.stop()
        await conn.close()


def single(job_id: str, version: int = 0) -> store.NewEvent:
    return store.NewEvent(
        WebhookDelivered(
            job_id=job_id, project="acme", delivery_id="d", url="u", attempt=1, status_code=200
        ),
        stream_id=webhook_stream(job_id),
        stream_version=version,
        correlation_id=job_id,
        project="acme",
    )


async def append(conn: asyncpg.Connection, events: list[store.NewEvent]) -> list[int]:
    async with conn.transaction():
        return await store.append(conn, events)


async def waiting_for_append_lock(conn: asyncpg.Connection, count: int) -> bool:
    waiting: int = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1",
        store.APPEND_LOCK,
    )
    return waiting == count


async def test_relay_publishes_the_log_in_order_with_headers_and_keys(
    setup: tuple[RelaySettings, asyncpg.Connection, Collector],
) -> None:
    settings, conn, collector = setup
    await append(conn, requested_job("job000000001", 3))
    failure = store.NewEvent(
        VideoImportFailed(
            job_id="job000000001",
            project="acme",
            system_name="archive",
            index=1,
            external_id="ext-1",
            reason="not a video (text/html)",
            code="not_a_video",
        ),
        stream_id=video_stream("job000000001", 1),
        stream_version=1,
        correlation_id="job000000001",
        project="acme",
        causation_id="x",
    )
    await append(conn, [failure, single("job000000001")])
    async with running(Relay(settings)):
        await collector.wait_for(6)
        await append(conn, requested_job("job000000002", 1))
        await collector.wait_for(8)

        async def saved() -> bool:
            return await tracking.position_of(conn, "relay") == 8

        await eventually(saved, "the relay position to reach 8")

    logged = {e.position: e for e in await store.read_after(conn, 0, 100)}
    assert collector.positions() == list(range(1, 9))
    by_topic: dict[str, list[int]] = {}
    for message in collector.messages:
        by_topic.setdefault(message.topic, []).append(message.position)
        recorded = logged[message.position]
        assert message.value == encode_envelope(recorded.envelope())
        assert message.key == recorded.event.partition_key().encode()
        assert message.headers == {
            "event-id": str(recorded.event_id).encode(),
            "event-type": recorded.event_type.encode(),
            "event-version": b"1",
            "correlation-id": recorded.correlation_id.encode(),
        }
    prefix = settings.topic_prefix
    assert by_topic == {
        f"{prefix}videoimport.jobs": [1, 7],
        f"{prefix}videoimport.videos": [2, 3, 4, 5, 8],
        f"{prefix}videoimport.webhooks": [6],
    }
    video_message = next(m for m in collector.messages if m.position == 5)
    assert video_message.key == video_key("acme", "archive", "ext-1").encode()


def test_the_raw_envelope_is_the_envelope_with_data_as_logged() -> None:
    """Same fields in the same order: a known type's message is the bytes it always was."""
    assert kafka.RawEnvelope.__struct_fields__ == Envelope.__struct_fields__


async def test_fields_a_newer_writer_added_to_a_known_type_are_published(
    setup: tuple[RelaySettings, asyncpg.Connection, Collector],
) -> None:
    settings, conn, collector = setup
    await append(conn, requested_job("job000000001", 1))
    data = (
        b'{"type":"VideoImportFailed","job_id":"job000000001","project":"acme","index":0,'
        b'"system_name":"archive","external_id":"ext-0","reason":"not a video (text/html)",'
        b'"code":"not_a_video","added_later":{"by":"a newer writer"}}'
    )
    position = await append_unknown_event(
        conn,
        "VideoImportFailed",
        data,
        "job000000001",
        stream=video_stream("job000000001", 0),
        stream_version=1,
    )
    async with running(Relay(settings)):
        await collector.wait_for(3)
    (message,) = [m for m in collector.messages if m.position == position]
    assert message.topic == f"{settings.topic_prefix}videoimport.videos"
    assert message.key == video_key("acme", "archive", "ext-0").encode()
    assert bytes(msgspec.json.decode(message.value, type=kafka.RawEnvelope).data) == data
    # Readers of this version decode it as ever, ignoring what they do not know.
    assert isinstance(decode_envelope(message.value).data, VideoImportFailed)


async def test_relay_never_skips_a_position_committed_late(
    setup: tuple[RelaySettings, asyncpg.Connection, Collector], pg_dsn: str
) -> None:
    settings, conn, collector = setup
    first, tx_a, tx_b, tx_c = [await asyncpg.connect(pg_dsn) for _ in range(4)]
    release_b = asyncio.Event()
    try:
        async with running(Relay(settings)):
            await append(first, [single("j1")])
            await collector.wait_for(1)

            # A takes position 2 and keeps its transaction open.
            a = tx_a.transaction()
            await a.start()
            assert await store.append(tx_a, [single("j2")]) == [2]

            # B appends in parallel: it must wait for A, it cannot take position 3 now.
            async def b_appends() -> list[int]:
                async with tx_b.transaction():
                    positions = await store.append(tx_b, [single("j3")])
                    await release_b.wait()
                    return positions

            b_task = asyncio.create_task(b_appends())
            await eventually(lambda: waiting_for_append_lock(conn, 1), "B to wait for A")
            assert collector.positions() == [1]

            await a.commit()
            await collector.wait_for(2)
            # B now holds position 3 uncommitted; C queues behind it.
            c_task = asyncio.create_task(append(tx_c, [single("j4")]))
            await eventually(lambda: waiting_for_append_lock(conn, 1), "C to wait for B")
            assert collector.positions() == [1, 2]

            release_b.set()
            assert await b_task == [3]
            assert await c_task == [4]
            await collector.wait_for(4)

            async def saved() -> bool:
                return await tracking.position_of(conn, "relay") == 4

            await eventually(saved, "the relay position to reach 4")
    finally:
        release_b.set()
        for c in (first, tx_a, tx_b, tx_c):
            await c.close()

    published = [m.position for m in collector.messages]
    assert published == [1, 2, 3, 4]
    assert [decode_envelope(m.value).stream for m in collector.messages] == [
        "webhook-j1",
        "webhook-j2",
        "webhook-j3",
        "webhook-j4",
    ]


async def test_an_aborted_append_leaves_no_gap(
    setup: tuple[RelaySettings, asyncpg.Connection, Collector], pg_dsn: str
) -> None:
    settings, conn, collector = setup
    tx_a, tx_b = await asyncpg.connect(pg_dsn), await asyncpg.connect(pg_dsn)
    try:
        async with running(Relay(settings)):
            a = tx_a.transaction()
            await a.start()
            assert await store.append(tx_a, [single("aborted")]) == [1]
            b_task = asyncio.create_task(append(tx_b, [single("kept")]))
            await eventually(lambda: waiting_for_append_lock(conn, 1), "B to wait for A")
            await a.rollback()
            assert await b_task == [1]
            await append(conn, [single("after")])
            await collector.wait_for(2)
    finally:
        await tx_a.close()
        await tx_b.close()
    assert [decode_envelope(m.value).stream for m in collector.messages] == [
        "webhook-kept",
        "webhook-after",
    ]
    assert [m.position for m in collector.messages] == [1, 2]


async def test_only_the_leader_publishes_and_a_standby_takes_over(
    setup: tuple[RelaySettings, asyncpg.Connection, Collector],
) -> None:
    settings, conn, collector = setup
    first, second = Relay(settings), Relay(settings)
    async with running(first) as stop_first, running(second, leads=False):
        await append(conn, [single("one")])
        await collector.wait_for(1)
        assert (first.is_leader, second.is_leader) == (True, False)

        stop_first.set()

        async def second_leads() -> bool:
            return second.is_leader

        await eventually(second_leads, "the standby to take over")
        await append(conn, [single("two")])
        await collector.wait_for(2)
    assert [m.position for m in collector.messages] == [1, 2]


async def test_relay_migrates_a_fresh_database(stack: StackInfo, pg_dsn: str) -> None:
    settings = settings_for(stack, pg_dsn, "unused.")
    conn = await asyncpg.connect(pg_dsn)
    try:
        await schema.migrate(conn)
        await bootstrap.prepare(settings)
        assert await tracking.position_of(conn, "relay") == 0
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_the_relay_process_serves_metrics_and_exits_cleanly_on_sigterm(
    setup: tuple[RelaySettings, asyncpg.Connection, Collector],
) -> None:
    settings, conn, collector = setup
    port = free_port()
    env = {
        **os.environ,
        "VIDEOIMPORT_DATABASE_URL": settings.database_url,
        "VIDEOIMPORT_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "VIDEOIMPORT_TOPIC_PREFIX": settings.topic_prefix,
        "VIDEOIMPORT_TOPIC_PARTITIONS": "1",
        "VIDEOIMPORT_METRICS_PORT": str(port),
    }
    await append(conn, [single("before")])
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "videoimport_relay", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await collector.wait_for(1)
        await append(conn, [single("while running")])
        await collector.wait_for(2)

        async def metrics_say_two() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"http://127.0.0.1:{port}/metrics") as response,
                ):
                    text = await response.text()
            except aiohttp.ClientError:
                return False
            return (
                "videoimport_relay_published_total 2.0" in text
                and "videoimport_relay_lag 0.0" in text
            )

        await eventually(metrics_say_two, "the metrics to show two published events")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), DEADLINE)
    assert process.returncode == 0, stderr.decode()
    assert await tracking.position_of(conn, "relay") == 2


class FlakyProducer:
    """Stands in for Kafka only to make one acknowledgement fail."""

    def __init__(self, fail_at: int | None) -> None:
        self.fail_at = fail_at
        self.sent: list[int] = []

    async def send(
        self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[object]:
        position = decode_envelope(value).position
        self.sent.append(position)
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if position == self.fail_at:
            future.set_exception(KafkaTimeoutError("no acknowledgement"))
        else:
            future.set_result(None)
        return future


async def test_a_batch_with_a_failed_send_is_not_saved_and_is_sent_again(
    setup: tuple[RelaySettings, asyncpg.Connection, Collector],
) -> None:
    settings, conn, _ = setup
    await append(conn, [single(f"j{n}") for n in range(3)])
    flaky = FlakyProducer(fail_at=2)
    with pytest.raises(KafkaTimeoutError):
        await handlers.relay_batch(conn, flaky, settings.topic_prefix, 10)
    assert flaky.sent == [1, 2, 3]  # every send was made before any was awaited
    assert await tracking.position_of(conn, "relay") == 0

    healthy = FlakyProducer(fail_at=None)
    assert await handlers.relay_batch(conn, healthy, settings.topic_prefix, 2) == (2, 2)
    assert await handlers.relay_batch(conn, healthy, settings.topic_prefix, 2) == (1, 3)
    assert healthy.sent == [1, 2, 3]
    assert await tracking.position_of(conn, "relay") == 3
