"""The relay and the projector get past an event they cannot handle: after bounded
retries it is parked as a dead letter and the log behind it flows; an operator's
retry handles a letter again. The relay publishes a type it does not know (a newer
writer's) as logged; the projector, which must understand an event to apply it,
parks it. Lost Kafka messages come back through reconciliation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest
from videoimport_devstack import StackInfo
from videoimport_eventlog import deadletters, kafka, schema, store, tracking
from videoimport_events import video_key, video_stream
from videoimport_projector.service import Projector
from videoimport_projector.settings import ProjectorSettings
from videoimport_relay import bootstrap
from videoimport_relay.service import Relay
from videoimport_relay.settings import RelaySettings

from tests.polling import eventually
from tests.requests import append_unknown_event, requested_job

from .test_relay_publish import Collector

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def running(service: Relay | Projector) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(service.prepared.wait(), 30)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def append(conn: asyncpg.Connection, events: list[store.NewEvent]) -> None:
    async with conn.transaction():
        await store.append(conn, events)


def relay_settings(stack: StackInfo, dsn: str, prefix: str, **extra: float) -> RelaySettings:
    return RelaySettings(
        database_url=dsn,
        kafka_bootstrap=stack.kafka_bootstrap,
        topic_prefix=prefix,
        topic_partitions=1,
        batch_size=50,
        poll_interval=0.2,
        standby_interval=0.1,
        retry_delay=0.2,
        attempts=3,
        retry_base=0.05,
        retry_max_delay=0.2,
        **extra,  # type: ignore[arg-type]
    )


async def letters(conn: asyncpg.Connection, consumer: str) -> list[deadletters.DeadLetter]:
    return [x for x in await deadletters.list_letters(conn) if x.consumer == consumer]


NEWER = (
    # What a newer writer logs on a video's stream: a type this code does not know,
    # spelled as no msgspec encoder here would (spaces, an escape), to see it kept.
    b'{"type": "VideoTranscoded",  "job_id": "job000000001", "project": "acme",'
    b' "index": 1, "system_name": "archive", "external_id": "ext-1",'
    b' "renditions": [{"height": 720, "codec": "h264"}], "note": "caf\\u00e9"}'
)


async def test_the_relay_publishes_a_type_it_does_not_know_as_logged(
    stack: StackInfo, pg_dsn: str, topic_prefix: str
) -> None:
    """Readers need not be deployed before writers: the relay routes an unknown type
    by its stream and its data, and passes the data through byte for byte. What it
    cannot route (a kind of stream it does not know) is parked, and the log flows."""
    settings = relay_settings(stack, pg_dsn, topic_prefix)
    await bootstrap.prepare(settings)
    conn = await asyncpg.connect(pg_dsn)
    collector = Collector(stack.kafka_bootstrap, bootstrap.topics(settings))
    await collector.start()
    try:
        await append(conn, requested_job("job000000001", 2))
        newer = await append_unknown_event(
            conn,
            "VideoTranscoded",
            NEWER,
            "job000000001",
            stream=video_stream("job000000001", 1),
            stream_version=2,
        )
        poison = await append_unknown_event(
            conn, "VideoTranscoded", b'{"type": "VideoTranscoded"}', "j1"
        )
        await append(conn, requested_job("job000000002", 2))
        async with running(Relay(settings)):
            await collector.wait_for(7)

            async def parked() -> bool:
                return len(await letters(conn, "relay")) == 1

            await eventually(parked, "the unroutable event to be parked")
        assert sorted(collector.positions()) == [1, 2, 3, 4, 6, 7, 8]
        (message,) = [m for m in collector.messages if m.position == newer]
        event_id = await conn.fetchval("SELECT event_id FROM events WHERE position = $1", newer)
        assert message.topic == f"{topic_prefix}videoimport.videos"
        assert message.headers == {
            "event-id": str(event_id).encode(),
            "event-type": b"VideoTranscoded",
            "event-version": b"1",
            "correlation-id": b"job000000001",
        }
        envelope = msgspec.json.decode(message.value, type=kafka.RawEnvelope)
        assert bytes(envelope.data) == NEWER
        assert (envelope.id, envelope.type, envelope.position, envelope.stream) == (
            str(event_id),
            "VideoTranscoded",
            newer,
            "job-job000000001/video-1",
        )
        # Keyed like every event of that video, so in order with them (one partition here).
        key = video_key("acme", "archive", "ext-1").encode()
        assert message.key == key
        assert [m.position for m in collector.messages if m.key == key] == [3, newer, 8]
        (letter,) = await letters(conn, "relay")
        assert (letter.position, letter.state, letter.attempts) == (poison, "parked", 3)
        assert "future-j1" in letter.error
        assert await tracking.position_of(conn, "relay") == 8
    finally:
        await collector.stop()
        await conn.close()


async def test_a_letter_an_older_relay_parked_for_an_unknown_type_is_published_on_retry(
    stack: StackInfo, pg_dsn: str, topic_prefix: str
) -> None:
    settings = relay_settings(stack, pg_dsn, topic_prefix, reconcile_interval=0.3)
    await bootstrap.prepare(settings)
    conn = await asyncpg.connect(pg_dsn)
    collector = Collector(stack.kafka_bootstrap, bootstrap.topics(settings))
    await collector.start()
    try:
        newer = await append_unknown_event(
            conn,
            "VideoTranscoded",
            NEWER,
            "job000000001",
            stream=video_stream("job000000001", 1),
            stream_version=2,
        )
        # As a relay that did not know the type left it: parked, its position passed.
        event_id = await conn.fetchval("SELECT event_id FROM events WHERE position = $1", newer)
        async with conn.transaction():
            letter_id = await deadletters.park(
                conn,
                consumer="relay",
                source=f"log:{newer}",
                error="Invalid value 'VideoTranscoded'",
                attempts=5,
                event_id=event_id,
                position=newer,
            )
            await tracking.save_position(conn, "relay", newer)
        assert await deadletters.request_retry(conn, letter_id) is not None
        async with running(Relay(settings)):
            await collector.wait_for(1)

            async def resolved() -> bool:
                (letter,) = await letters(conn, "relay")
                return letter.state == "resolved"

            await eventually(resolved, "the retried letter to be resolved")
        (message,) = collector.messages
        assert message.topic == f"{topic_prefix}videoimport.videos"
        assert message.key == video_key("acme", "archive", "ext-1").encode()
        assert bytes(msgspec.json.decode(message.value, type=kafka.RawEnvelope).data) == NEWER
    finally:
        await collector.stop()
        await conn.close()


async def test_requests_lost_on_kafka_are_published_again_from_the_log(
    stack: StackInfo, pg_dsn: str, topic_prefix: str
) -> None:
    settings = relay_settings(
        stack, pg_dsn, topic_prefix, reconcile_after=0.5, reconcile_interval=0.3
    )
    await bootstrap.prepare(settings)
    conn = await asyncpg.connect(pg_dsn)
    collector = Collector(stack.kafka_bootstrap, bootstrap.topics(settings))
    await collector.start()
    try:
        await append(conn, requested_job("job000000003", 2))
        # As if Kafka had lost them: the relay's position is already past the job.
        async with conn.transaction():
            await tracking.save_position(conn, "relay", 3)
        async with running(Relay(settings)):

            async def republished() -> bool:
                return {m.position for m in collector.messages} >= {2, 3}

            await eventually(republished, "the requested videos to be published again")
            # Once both videos are finished the cursor moves past them and they rest.
            job = requested_job("job000000003", 2)
            await append(conn, [terminal_for(job[1]), terminal_for(job[2])])

            async def cursor_moved() -> bool:
                cursor = await tracking.position_of(conn, "reconciler")
                left = await conn.fetchval("SELECT count(*) FROM republished_requests")
                return cursor == 3 and left == 0

            await eventually(cursor_moved, "the reconciliation cursor to pass the finished job")
            resent = [m.position for m in collector.messages if m.position in (2, 3)]
            await asyncio.sleep(1.0)  # several reconciliation rounds (every 0.3 s)
            assert [m.position for m in collector.messages if m.position in (2, 3)] == resent
        # Backed off per request (0.5 s, then 1 s, 2 s …), not sent every round.
        assert 2 <= len(resent) <= 8, resent
    finally:
        await collector.stop()
        await conn.close()


def terminal_for(request: store.NewEvent) -> store.NewEvent:
    from videoimport_events import VideoImportFailed, VideoImportRequested

    event = request.event
    assert isinstance(event, VideoImportRequested)
    return store.NewEvent(
        VideoImportFailed(
            job_id=event.job_id,
            project=event.project,
            index=event.index,
            system_name=event.system_name,
            external_id=event.external_id,
            reason="not a video (text/html)",
            code="not_a_video",
        ),
        stream_id=request.stream_id,
        stream_version=1,
        correlation_id=event.job_id,
        project=event.project,
    )


async def test_the_projector_parks_an_event_it_cannot_apply_and_an_operator_can_retry(
    pg_dsn: str,
) -> None:
    settings = ProjectorSettings(
        database_url=pg_dsn,
        batch_size=50,
        poll_interval=0.2,
        retry_delay=0.2,
        attempts=3,
        retry_base=0.05,
        retry_max_delay=0.2,
        dead_letter_check_interval=0.2,
    )
    conn = await asyncpg.connect(pg_dsn)
    try:
        await schema.migrate(conn)
        first = requested_job("job000000005", 1)
        await append(conn, [*first, terminal_for(first[1])])
        await append_unknown_event(conn, "VideoTranscoded", b'{"type": "VideoTranscoded"}', "j5")
        second = requested_job("job000000006", 1)
        await append(conn, [*second, terminal_for(second[1])])
        async with running(Projector(settings)):

            async def both_finished() -> bool:
                states = await conn.fetch("SELECT state FROM status_jobs ORDER BY job_id")
                return [r["state"] for r in states] == ["failed", "failed"]

            await eventually(both_finished, "the job behind the poison event to be projected")
            (letter,) = await letters(conn, "projector")
            assert letter.state == "parked"
            # An operator retries: the type is still unknown, so it is parked again.
            assert await deadletters.request_retry(conn, letter.id) is not None

            async def parked_again() -> bool:
                (again,) = await letters(conn, "projector")
                return again.state == "parked" and again.attempts > letter.attempts

            await eventually(parked_again, "the retried letter to be parked again")
            # A letter for an event whose effect was lost is applied and resolved.
            lost = requested_job("job000000007", 1)
            await append(conn, lost)
            await eventually(lambda: _projected(conn, "job000000007"), "job 7 to be projected")
            await conn.execute("DELETE FROM status_jobs WHERE job_id = 'job000000007'")
            await conn.execute("DELETE FROM projector_job_state WHERE job_id = 'job000000007'")
            async with conn.transaction():
                letter_id = await deadletters.park(
                    conn,
                    consumer="projector",
                    source="test",
                    error="lost",
                    attempts=1,
                    event_id=lost[0].event_id,
                )
            await deadletters.request_retry(conn, letter_id)
            await eventually(lambda: _projected(conn, "job000000007"), "the retry to re-project")
            resolved = [x for x in await letters(conn, "projector") if x.id == letter_id]
            assert resolved[0].state == "resolved"
    finally:
        await conn.close()


async def _projected(conn: asyncpg.Connection, job_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM status_jobs WHERE job_id = $1", job_id))
