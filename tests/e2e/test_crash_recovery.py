"""A service killed mid-batch loses nothing and duplicates nothing once restarted."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest
from videoimport_devstack import StackInfo

from tests.polling import eventually

from .conftest import ClientSide, Deployment, deploy
from .test_import_flow import post_batch, video, wait_finished

VIDEOS = 20
LEASE_SECONDS = 8
"""The ingester's lease (60 s by default). The videos a killed ingester held count
against the project's limit until their leases run out, so the restarted one would
wait that long before it downloads anything."""


@pytest.fixture(scope="module")
async def deployment(stack: StackInfo) -> AsyncIterator[Deployment]:
    settings = {"VIDEOIMPORT_INGESTER_LEASE_SECONDS": str(LEASE_SECONDS)}
    async with deploy(stack, extra_env=settings) as deployed:
        yield deployed


async def terminal_counts(conn: asyncpg.Connection, job_id: str) -> Counter[str]:
    rows = await conn.fetch(
        "SELECT stream_id FROM events WHERE correlation_id = $1 AND stream_version = 1"
        " AND event_type IN ('VideoImported', 'VideoImportSkipped', 'VideoImportFailed')",
        job_id,
    )
    return Counter(r["stream_id"] for r in rows)


async def test_ingester_and_relay_killed_mid_batch_recover_exactly_once(
    deployment: Deployment, client_side: ClientSide
) -> None:
    conn = await asyncpg.connect(deployment.stack.postgres_dsn)
    try:
        async with aiohttp.ClientSession() as http:
            job_id = await post_batch(
                http,
                deployment,
                {
                    "systemName": "crash",
                    "videos": [
                        {**video(client_side, f"c{i}"), "url": client_side.url("/slow/sample.mp4")}
                        for i in range(VIDEOS)
                    ],
                },
            )

            async def some_done() -> bool:
                return sum((await terminal_counts(conn, job_id)).values()) >= 3

            await eventually(some_done, "the first videos to be imported", within=60)
            # Downloads are in flight (each takes ~0.3 s at the source) when both die.
            deployment.services.crash("ingester")
            deployment.services.crash("relay")
            done_at_crash = sum((await terminal_counts(conn, job_id)).values())
            assert done_at_crash < VIDEOS, "the batch finished before the crash; slow the source"
            deployment.services.start_one("relay")
            deployment.services.start_one("ingester")

            status = await wait_finished(http, deployment, job_id, within=120)
        assert status["state"] == "success"
        assert [v["state"] for v in status["videos"]] == ["success"] * VIDEOS
        counts = await terminal_counts(conn, job_id)
        assert len(counts) == VIDEOS and set(counts.values()) == {1}
        media = await conn.fetchval("SELECT count(*) FROM media WHERE system_name = 'crash'")
        completed = await conn.fetchval(
            "SELECT count(*) FROM events WHERE correlation_id = $1 AND event_type = 'JobCompleted'",
            job_id,
        )
    finally:
        await conn.close()
    assert media == VIDEOS
    assert completed == 1
