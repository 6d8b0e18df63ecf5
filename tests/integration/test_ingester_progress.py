"""A running video's phase and bytes in ``ingest_tasks``, as the API's status reads
them: queued (no phase), downloading (bytes so far, and the announced size),
storing; every hand-back makes a row queued again. Real PostgreSQL, Kafka and S3."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from videoimport_devstack import StackInfo
from videoimport_eventlog import store
from videoimport_events import VideoImported
from videoimport_ingester.adapters import tasks
from videoimport_ingester.scheduling import Limits, ProgressSnapshot

from tests.polling import eventually

from .ingester_harness import (
    Video,
    VideoSource,
    ingest_progress,
    prepare_database,
    publish,
    queued_tasks,
    request_import,
    running_ingester,
    settings_for,
    terminal_events,
    video_source,
)

pytestmark = pytest.mark.integration

SAMPLE_SIZE = 12_746
"""Bytes of ``tests/fixtures/sample.mp4``, announced as its Content-Length."""


@pytest.fixture
async def source(fixtures_dir: Path) -> AsyncIterator[VideoSource]:
    async with video_source(fixtures_dir) as running:
        yield running


@pytest.fixture
async def database(pg_dsn: str) -> str:
    await prepare_database(pg_dsn)
    return pg_dsn


async def test_a_trickling_download_shows_its_bytes_then_storing(
    stack: StackInfo, database: str, s3_bucket: str, topic_prefix: str, source: VideoSource
) -> None:
    assert (source.fixtures / "sample.mp4").stat().st_size == SAMPLE_SIZE
    settings = settings_for(stack, database, s3_bucket, topic_prefix, download_min_rate=0.0)
    slow = "/trickle/sample.mp4"
    # The first video is quick; the second (index 1) sends 20 bytes/s after its first KiB.
    job_id, envelopes = await request_import(
        database,
        Video(source.url("/video/sample.mp4"), external_id="quick"),
        Video(source.url(f"{slow}?every=0.05"), external_id="slow"),
    )
    await publish(stack, settings, envelopes)
    async with running_ingester(settings) as ingester:
        clock = asyncio.get_running_loop().time
        seen: list[tuple[float, int]] = []  # (when first seen, bytes_done)

        async def downloading() -> bool:
            ingester.check_alive()
            rows = await ingest_progress(database)
            if [r["video_index"] for r in rows] != [1] or rows[0]["phase"] != "downloading":
                return False
            assert rows[0]["bytes_total"] == SAMPLE_SIZE
            done: int = rows[0]["bytes_done"]
            assert 0 <= done < SAMPLE_SIZE
            if not seen or seen[-1][1] != done:
                seen.append((clock(), done))
            return len(seen) >= 4

        await eventually(downloading, "four progress writes of the slow video", within=30)
        values = [done for _, done in seen]
        assert values == sorted(values) and values[-1] > 1024
        # Each byte arrives as a chunk of its own, 20 a second; the row is written
        # at most about once a second, so three changes take about three seconds.
        assert seen[-1][0] - seen[0][0] > 2.0

        # Hold every append: the slow video's commit waits, and shows it is storing.
        holder = await asyncpg.connect(database)
        try:
            async with holder.transaction():
                await holder.execute("SELECT pg_advisory_xact_lock($1)", store.APPEND_LOCK)
                source.trickle_open.set()

                async def storing() -> bool:
                    ingester.check_alive()
                    rows = await ingest_progress(database)
                    return [(r["phase"], r["bytes_done"]) for r in rows] == [
                        ("storing", SAMPLE_SIZE)
                    ]

                await eventually(storing, "the slow video to be storing", within=30)
        finally:
            await holder.close()

        async def done() -> bool:
            ingester.check_alive()
            return len(await terminal_events(database, job_id)) == 2

        await eventually(done, "both results", within=30)
    assert all(isinstance(r.event, VideoImported) for r in await terminal_events(database, job_id))
    assert await queued_tasks(database) == []


async def test_a_row_is_queued_again_whenever_it_is_handed_back(
    database: str, conn: asyncpg.Connection, source: VideoSource
) -> None:
    _, envelopes = await request_import(
        database, *(Video(source.url("/video/sample.mp4"), external_id=f"v{i}") for i in range(3))
    )
    for envelope in envelopes:
        assert await tasks.enqueue(conn, envelope)
    rows = await ingest_progress(database)
    assert [tuple(r) for r in rows] == [(i, None, None, None) for i in range(3)]

    limits = Limits(project=6, job=6)
    downloading = ProgressSnapshot(phase="downloading", bytes_done=512, bytes_total=4096)

    async def claim_and_report() -> str:
        task = await tasks.claim(conn, "worker", limits, 60.0)
        assert task is not None
        await tasks.report_progress(conn, task.event_id, "worker", downloading)
        return task.event_id

    first = await claim_and_report()
    second = await claim_and_report()
    await tasks.report_progress(conn, first, "someone else", ProgressSnapshot(
        phase="storing", bytes_done=4096, bytes_total=4096
    ))  # fmt: skip
    phases = {r["event_id"]: (r["phase"], r["bytes_done"]) for r in await queued_tasks(database)}
    assert phases[first] == phases[second] == ("downloading", 512)  # only the owner writes

    await tasks.retry_later(conn, first, "worker", delay=0.0, error="boom", counted=True)
    assert await tasks.release(conn, "worker", [second]) == 1
    rows = await queued_tasks(database)
    assert [(r["phase"], r["bytes_done"], r["bytes_total"]) for r in rows] == [(None,) * 3] * 3

    # A row whose worker crashed mid-download keeps its phase until claimed again.
    crashed = await claim_and_report()
    await conn.execute("UPDATE ingest_tasks SET lease_until = now() WHERE event_id = $1", crashed)
    again = await tasks.claim(conn, "another worker", limits, 60.0)
    assert again is not None and again.event_id == crashed
    reclaimed = {r["event_id"]: r["phase"] for r in await queued_tasks(database)}
    assert reclaimed[crashed] is None
