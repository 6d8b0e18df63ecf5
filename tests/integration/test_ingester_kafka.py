"""The ingester as it runs in production: consuming real Kafka, writing real PostgreSQL and S3."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import msgspec
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from videoimport_devstack import StackInfo
from videoimport_eventlog.kafka import ensure_topics, make_producer
from videoimport_events import (
    ImportRequested,
    VideoImported,
    VideoImportFailed,
    encode_envelope,
)
from videoimport_ingester import bootstrap, service

from tests.polling import eventually

from .ingester_harness import (
    Video,
    count_events,
    prepare_database,
    read_object,
    request_import,
    settings_for,
    sha256_of,
    terminal_events,
    video_source,
)

pytestmark = pytest.mark.integration


async def test_requests_on_the_videos_topic_become_terminal_events(
    stack: StackInfo, pg_dsn: str, s3_bucket: str, topic_prefix: str, fixtures_dir: Path
) -> None:
    await prepare_database(pg_dsn)
    settings = settings_for(stack, pg_dsn, s3_bucket, topic_prefix)
    topic = bootstrap.videos_topic(settings)
    assert topic == f"{topic_prefix}videoimport.videos"

    async with video_source(fixtures_dir) as source:
        job_id, envelopes = await request_import(
            pg_dsn,
            Video(source.url("/video/sample.mp4"), external_id="a"),
            Video(source.url("/video/sample.webm"), external_id="b"),
            Video(source.url("/missing.mp4"), external_id="c"),
        )
        # Not a request: the ingester must acknowledge it and move on.
        job_envelope = msgspec.structs.replace(
            envelopes[0],
            type="ImportRequested",
            data=ImportRequested(
                job_id=job_id,
                project="news",
                system_name="archive",
                api_version="2025-03",
                video_count=3,
            ),
        )
        await ensure_topics(stack.kafka_bootstrap, settings.kafka_partitions, topics=[topic])
        producer = make_producer(stack.kafka_bootstrap, "test-ingester")
        await producer.start()
        try:
            # Every request is published twice, as a relay restarted mid-batch would.
            for envelope in [*envelopes, *envelopes]:
                await producer.send_and_wait(
                    topic,
                    key=envelope.data.partition_key().encode(),
                    value=encode_envelope(envelope),
                )
            await producer.send_and_wait(topic, key=b"x", value=encode_envelope(job_envelope))
            await producer.send_and_wait(topic, key=b"x", value=b"not json at all")
            # A newer writer's type, published raw by the relay: skipped, not parked.
            await producer.send_and_wait(
                topic,
                key=b"x",
                value=b'{"id":"e","type":"VideoRecolored","data":{"type":"VideoRecolored"}}',
                headers=[("event-type", b"VideoRecolored")],
            )
        finally:
            await producer.stop()
        produced = 2 * len(envelopes) + 3

        stop = asyncio.Event()
        running = asyncio.create_task(service.run(settings, stop))
        try:

            async def all_terminal() -> bool:
                assert not running.done(), running.exception()
                return len(await terminal_events(pg_dsn, job_id)) == len(envelopes)

            await eventually(all_terminal, within=60)
        finally:
            stop.set()
            await asyncio.wait_for(running, 60)

    events = {e.stream_id: e for e in await terminal_events(pg_dsn, job_id)}
    assert sorted(events) == [f"job-{job_id}/video-{i}" for i in range(3)]
    mp4, webm, missing = (events[f"job-{job_id}/video-{i}"].event for i in range(3))
    assert isinstance(mp4, VideoImported) and isinstance(webm, VideoImported)
    assert isinstance(missing, VideoImportFailed)
    assert missing.reason == "download failed: HTTP 404"
    for event, name in ((mp4, "sample.mp4"), (webm, "sample.webm")):
        stored, _ = await read_object(settings, event.storage_key)
        assert sha256_of(stored) == sha256_of((fixtures_dir / name).read_bytes())
    for recorded, envelope in zip(
        (events[f"job-{job_id}/video-{i}"] for i in range(3)), envelopes, strict=True
    ):
        assert recorded.causation_id == envelope.id
        assert recorded.correlation_id == job_id
    # Duplicates changed nothing: one ImportRequested, three requests, three results.
    assert await count_events(pg_dsn) == 1 + 3 + 3
    assert source.hits["/video/sample.mp4"] == 1
    # The undecodable message was parked at once, with its bytes; the queue is empty.
    conn = await asyncpg.connect(pg_dsn)
    try:
        letters = await conn.fetch("SELECT consumer, source, error, payload FROM dead_letters")
        queued = await conn.fetchval("SELECT count(*) FROM ingest_tasks")
    finally:
        await conn.close()
    [letter] = letters
    assert letter["consumer"] == "ingester"
    assert letter["source"].startswith(f"kafka:{topic}/")
    assert letter["error"].startswith("undecodable message")
    assert bytes(letter["payload"]) == b"not json at all"
    assert queued == 0

    # Stopping committed everything it had handled, so a restart starts past it.
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(bootstrap.group_id(settings))
    finally:
        await admin.close()
    assert sum(meta.offset for tp, meta in committed.items() if tp.topic == topic) == produced
