"""One project's hanging receivers hold at most ``webhook_project_limit`` scheduler
slots; SIGTERM ends the process within ``webhook_timeout`` and a few seconds."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiohttp import web
from videoimport_devstack import StackInfo
from videoimport_events import WebhookDeliveryFailed

from tests.integration.notifier_harness import (
    attempts,
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


@dataclass
class Hanging:
    """``/slow`` answers only once released; ``/fast`` answers at once."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    slow_in_flight: int = 0
    slow_most: int = 0
    slow_seen: int = 0
    fast_seen: int = 0
    base: str = ""

    async def slow(self, request: web.Request) -> web.Response:
        await request.read()
        self.slow_seen += 1
        self.slow_in_flight += 1
        self.slow_most = max(self.slow_most, self.slow_in_flight)
        try:
            await self.release.wait()
        finally:
            self.slow_in_flight -= 1
        return web.Response(status=200)

    async def fast(self, request: web.Request) -> web.Response:
        await request.read()
        self.fast_seen += 1
        return web.Response(status=204)


@pytest.fixture
async def hanging() -> AsyncIterator[Hanging]:
    rec = Hanging()
    async with serving({"/slow": rec.slow, "/fast": rec.fast}) as base:
        rec.base = base
        try:
            yield rec
        finally:
            rec.release.set()  # before the server waits for its handlers to end


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    async with notifier_db(pg_dsn) as connection:
        yield connection


async def slow_hanging(conn: asyncpg.Connection, hanging: Hanging) -> bool:
    count = await conn.fetchval("SELECT count(*) FROM webhook_deliveries WHERE project = 'slowco'")
    return bool(count == 6) and hanging.slow_in_flight >= 2


async def in_state(conn: asyncpg.Connection, job_id: str, state: str) -> bool:
    row = await delivery_row(conn, job_id)
    return row is not None and row["state"] == state


async def test_a_project_with_hanging_receivers_cannot_hold_every_slot(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, hanging: Hanging
) -> None:
    settings = settings_for(
        stack,
        pg_dsn,
        topic_prefix,
        webhook_concurrency=4,
        webhook_project_limit=2,
        webhook_timeout=60.0,
    )
    slow_jobs = [marker(f"jobslow{i:05d}", f"{hanging.base}/slow", "slowco") for i in range(6)]
    fast_job = marker("jobfast00001", f"{hanging.base}/fast", "fastco")
    async with notifying(settings):
        try:
            await publish(stack, jobs_topic(settings), *slow_jobs)
            await eventually(
                lambda: slow_hanging(conn, hanging), "six slow deliveries, two of them hanging"
            )
            started = asyncio.get_running_loop().time()
            await publish(stack, jobs_topic(settings), fast_job)
            # Without the limit all four slots hang for 60 s on slowco's receiver.
            await eventually(
                lambda: in_state(conn, "jobfast00001", "delivered"),
                "fastco's webhook to be delivered",
                within=10.0,
            )
            assert asyncio.get_running_loop().time() - started < 10.0
            assert (hanging.slow_in_flight, hanging.slow_most, hanging.slow_seen) == (2, 2, 2)
        finally:
            hanging.release.set()

        async def all_delivered() -> bool:
            states = await conn.fetch("SELECT state FROM webhook_deliveries")
            return len(states) == 7 and all(r["state"] == "delivered" for r in states)

        await eventually(all_delivered, "every slow delivery once released")

    assert hanging.slow_most == 2
    assert (hanging.slow_seen, hanging.fast_seen) == (6, 1)


async def test_sigterm_ends_the_process_within_the_webhook_timeout_and_a_few_seconds(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, hanging: Hanging
) -> None:
    timeout = 3.0
    settings = settings_for(stack, pg_dsn, topic_prefix)
    env = {
        **os.environ,
        "VIDEOIMPORT_DATABASE_URL": pg_dsn,
        "VIDEOIMPORT_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "VIDEOIMPORT_TOPIC_PREFIX": topic_prefix,
        "VIDEOIMPORT_TOPIC_PARTITIONS": "1",
        "VIDEOIMPORT_ALLOW_PRIVATE_URLS": "true",
        "VIDEOIMPORT_WEBHOOK_TIMEOUT": str(timeout),
        "VIDEOIMPORT_SCHEDULER_POLL_INTERVAL": "0.1",
    }
    completed = await log_job_completed(conn, "jobsigterm01", f"{hanging.base}/slow")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "videoimport_notifier", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await publish(stack, jobs_topic(settings), completed)

        async def hanging_now() -> bool:
            return hanging.slow_in_flight == 1

        await eventually(hanging_now, "the webhook request to hang")
        loop = asyncio.get_running_loop()
        signalled = loop.time()
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout + 30.0)
        took = loop.time() - signalled
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert took < timeout + 5.0, f"took {took:.1f} s after SIGTERM"
    # The attempt in flight timed out and was recorded before the process ended.
    row = await delivery_row(conn, "jobsigterm01")
    assert row is not None and (row["state"], row["attempts"]) == ("pending", 1)
    [event] = [e.event for e in await attempts(conn, row["delivery_id"])]
    assert isinstance(event, WebhookDeliveryFailed)
    assert event.error == f"no response within {timeout:g} s"
