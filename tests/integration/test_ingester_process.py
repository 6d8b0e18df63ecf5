"""``python -m videoimport_ingester`` as a process: metrics, and SIGTERM mid-download."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from videoimport_devstack import StackInfo
from videoimport_eventlog.kafka import ensure_topics, make_producer
from videoimport_events import VideoImported, encode_envelope
from videoimport_ingester import bootstrap

from tests.polling import eventually

from .ingester_harness import (
    Video,
    prepare_database,
    process_env,
    publish,
    queued_tasks,
    request_import,
    running_ingester,
    settings_for,
    terminal_events,
    video_source,
)

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=36)]

STARTED_WITHIN = 120.0
"""Seconds a new ingester process may take to get to work: its imports and its
Kafka group join are slow when the machine is saturated."""
ORCHESTRATOR_GRACE = 30.0
"""What an orchestrator gives a process after SIGTERM by default before killing it."""


def logged_at(lines: list[str], event: str) -> float:
    """When the process logged ``event`` (its JSON line's timestamp), in epoch seconds."""
    for line in lines:
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event:
                return datetime.fromisoformat(record["timestamp"]).timestamp()
    raise AssertionError(f"never logged {event!r}:\n" + "".join(lines))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_sigterm_finishes_the_download_in_flight_then_exits_cleanly(
    stack: StackInfo, pg_dsn: str, s3_bucket: str, topic_prefix: str, fixtures_dir: Path
) -> None:
    await prepare_database(pg_dsn)
    settings = settings_for(stack, pg_dsn, s3_bucket, topic_prefix, download_min_rate=0.0)
    env = process_env(settings, VIDEOIMPORT_LOG_JSON="true")
    topic = bootstrap.videos_topic(settings)
    await ensure_topics(stack.kafka_bootstrap, settings.kafka_partitions, topics=[topic])

    async with video_source(fixtures_dir) as source:
        path = "/gated/sample.mp4"
        job_id, [envelope] = await request_import(pg_dsn, Video(source.url(path)))
        producer = make_producer(stack.kafka_bootstrap, "test-ingester")
        await producer.start()
        try:
            await producer.send_and_wait(
                topic, key=envelope.data.partition_key().encode(), value=encode_envelope(envelope)
            )
        finally:
            await producer.stop()

        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "videoimport_ingester",
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        log_lines: list[str] = []

        async def collect() -> None:
            assert process.stderr is not None
            async for line in process.stderr:
                log_lines.append(line.decode())

        collecting = asyncio.create_task(collect())
        try:

            async def download_started() -> bool:
                assert process.returncode is None, "".join(log_lines)
                return source.hits[path] == 1

            await eventually(download_started, within=STARTED_WITHIN)
            process.send_signal(signal.SIGTERM)

            async def stopping() -> bool:
                return any("finishing videos in flight" in line for line in log_lines)

            await eventually(stopping, within=30)
            assert await terminal_events(pg_dsn, job_id) == []  # still in flight
            source.gate.set()
            returncode = await asyncio.wait_for(process.wait(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await collecting

    assert returncode == 0, "".join(log_lines)
    [result] = await terminal_events(pg_dsn, job_id)
    assert isinstance(result.event, VideoImported)
    assert any('"job_id": "' + job_id in line for line in log_lines)


async def test_metrics_are_served_while_running(
    stack: StackInfo, pg_dsn: str, s3_bucket: str, topic_prefix: str, fixtures_dir: Path
) -> None:
    await prepare_database(pg_dsn)
    settings = settings_for(stack, pg_dsn, s3_bucket, topic_prefix)
    port = free_port()
    env = process_env(settings, VIDEOIMPORT_METRICS_PORT=str(port))
    topic = bootstrap.videos_topic(settings)
    await ensure_topics(stack.kafka_bootstrap, settings.kafka_partitions, topics=[topic])
    async with video_source(fixtures_dir) as source:
        job_id, [envelope] = await request_import(pg_dsn, Video(source.url("/video/sample.mp4")))
        producer = make_producer(stack.kafka_bootstrap, "test-ingester")
        await producer.start()
        try:
            await producer.send_and_wait(
                topic, key=envelope.data.partition_key().encode(), value=encode_envelope(envelope)
            )
        finally:
            await producer.stop()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "videoimport_ingester", env=env, stderr=asyncio.subprocess.DEVNULL
        )
        try:

            async def done() -> bool:
                assert process.returncode is None
                return len(await terminal_events(pg_dsn, job_id)) == 1

            await eventually(done, within=STARTED_WITHIN)
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/metrics") as response,
            ):
                text = await response.text()
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 60) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    assert 'videoimport_ingester_results_total{state="success"} 1.0' in text
    assert "videoimport_ingester_downloads_in_flight 0.0" in text
    size = (fixtures_dir / "sample.mp4").stat().st_size
    assert f"videoimport_ingester_downloaded_bytes_total {float(size)}" in text


async def test_sigterm_with_slow_downloads_exits_in_time_and_another_instance_finishes(
    stack: StackInfo, pg_dsn: str, s3_bucket: str, topic_prefix: str, fixtures_dir: Path
) -> None:
    await prepare_database(pg_dsn)
    settings = settings_for(
        stack, pg_dsn, s3_bucket, topic_prefix, download_read_timeout=60.0, download_min_rate=0.0
    )
    assert settings.shutdown_grace == 10.0  # the default is what is tested
    env = process_env(settings, VIDEOIMPORT_LOG_JSON="true")
    async with video_source(fixtures_dir) as source:
        slow = "/gated/sample.mp4"
        job_id, envelopes = await request_import(
            pg_dsn, *(Video(source.url(f"{slow}?n={i}"), external_id=f"v{i}") for i in range(3))
        )
        await publish(stack, settings, envelopes)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "videoimport_ingester", env=env, stderr=asyncio.subprocess.PIPE
        )
        log_lines: list[str] = []

        async def collect() -> None:
            assert process.stderr is not None
            async for line in process.stderr:
                log_lines.append(line.decode())

        collecting = asyncio.create_task(collect())
        try:

            async def downloads_in_flight() -> bool:
                assert process.returncode is None, "".join(log_lines)
                return source.active[slow] == 3

            await eventually(
                downloads_in_flight, "three downloads in flight", within=STARTED_WITHIN
            )
            loop = asyncio.get_running_loop()
            signalled = loop.time()
            process.send_signal(signal.SIGTERM)
            returncode = await asyncio.wait_for(process.wait(), 60)
            took = loop.time() - signalled
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await collecting

        assert returncode == 0, "".join(log_lines)
        # The grace and no more, by the process's own clock: a busy machine slows
        # the work around the wait, not the wait.
        waited = logged_at(log_lines, "cancelling videos still in flight after the grace period")
        waited -= logged_at(log_lines, "stopping: finishing videos in flight")
        assert waited == pytest.approx(settings.shutdown_grace, abs=1.0)
        # The exit as a whole: closing down after the grace took up to 7 s on a
        # saturated machine, hence the room; still in time for an orchestrator, and
        # long before the read timeout (60 s) would have ended the downloads.
        assert took < ORCHESTRATOR_GRACE, f"exit took {took:.1f} s"
        assert any("released unfinished videos" in line for line in log_lines)
        assert await terminal_events(pg_dsn, job_id) == []
        rows = await queued_tasks(pg_dsn)
        assert len(rows) == 3
        assert all(r["lease_owner"] is None and r["attempts"] == 0 for r in rows)

        # Another instance takes them at once, not when their leases run out (60 s,
        # renewed every 20 s: not before 40 s after the exit, had they not been released).
        source.gate.set()
        async with running_ingester(settings) as other:

            async def finished() -> bool:
                other.check_alive()
                return len(await terminal_events(pg_dsn, job_id)) == 3

            await eventually(finished, "the other instance to finish the videos", within=30)

    results = await terminal_events(pg_dsn, job_id)
    assert all(isinstance(r.event, VideoImported) for r in results)
    assert await queued_tasks(pg_dsn) == []
