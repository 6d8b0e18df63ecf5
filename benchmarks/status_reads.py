"""Status reads: GET status of a finished 1,000-video job, req/s and p99.

One deployment of every service (``bulk.deployment``) imports one job of
``JOB_VIDEOS`` 100 KB videos; once it finished, ``CLIENTS`` concurrent clients
read its status for ``READ_SECONDS``: the whole status (unpaged), and the first
page of 100 videos (``limit=100``). The baseline makes the same number of round
trips with the same concurrency straight to PostgreSQL on asyncpg: the plain
``SELECT`` of the job's rows of ``status_videos`` (the first 100 by index for
the paged read), on the same database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from videoimport_devstack import StackInfo

from .bulk import GeneratedSource, deployment, job_deadline, videos_body, wait_completed, warm_up
from .common import Result, percentile, report, serve
from .e2e import API
from .fairness import Client

JOB_VIDEOS = 1000
CLIENTS = 4
READ_SECONDS = 3.0
PAGE = 100
UNPAGED_SQL = "SELECT * FROM status_videos WHERE job_id = $1"
PAGED_SQL = f"SELECT * FROM status_videos WHERE job_id = $1 ORDER BY idx LIMIT {PAGE}"


async def _reads(
    clients: int, read: Callable[[int], Awaitable[None]], *, seconds: float = 0, count: int = 0
) -> tuple[float, list[float]]:
    """``clients`` loops calling ``read(client)`` for ``seconds``, or until ``count`` reads in
    all; returns the wall time and each read's seconds."""
    took: list[float] = []
    ends = time.perf_counter() + seconds

    async def loop(client: int) -> None:
        while (time.perf_counter() < ends) if seconds else (len(took) < count):
            began = time.perf_counter()
            await read(client)
            took.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(loop(client) for client in range(clients)))
    return time.perf_counter() - began, took


async def _api(client: Client, job_id: str, params: dict[str, str], seconds: float) -> Any:
    async def read(_: int) -> None:
        async with client.http.get(
            f"{client.api}{API}/status", params={"id": job_id, **params}, headers=client.headers
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"status answered {response.status}: {await response.text()}")
            await response.read()

    return await _reads(CLIENTS, read, seconds=seconds)


async def _plain(dsn: str, job_id: str, sql: str, count: int) -> tuple[float, list[float]]:
    connections = [await asyncpg.connect(dsn) for _ in range(CLIENTS)]
    try:

        async def read(client: int) -> None:
            await connections[client].fetch(sql, job_id)

        await read(0)  # the statement prepared once, as the API's pool has it
        return await _reads(CLIENTS, read, count=count)
    finally:
        for conn in connections:
            await conn.close()


async def run(stack: StackInfo, results: list[Result], work_dir: Path, *, quick: bool) -> None:
    videos = 100 if quick else JOB_VIDEOS
    seconds = 1.0 if quick else READ_SECONDS
    source = GeneratedSource()
    measured: list[tuple[str, float, list[float], float, list[float]]] = []
    async with (
        serve(source.app) as source_url,
        deployment(stack, work_dir / "status", "status") as deployed,
    ):
        client = deployed.client
        await warm_up(client, source_url)
        job_id = await client.post(videos_body(source_url, "status", videos))
        await wait_completed(deployed.dsn, [job_id], time.perf_counter() + job_deadline(videos))
        await client.wait(job_id, videos, poll=0.1, deadline=time.perf_counter() + 30)
        for label, params, sql in (
            ("unpaged", {}, UNPAGED_SQL),
            (f"paged limit={PAGE}", {"limit": str(PAGE)}, PAGED_SQL),
        ):
            wall, took = await _api(client, job_id, params, seconds)
            plain_wall, plain_took = await _plain(deployed.dsn, job_id, sql, len(took))
            measured.append((label, wall, took, plain_wall, plain_took))
    for label, wall, took, plain_wall, plain_took in measured:
        report(
            Result(
                name=f"status.GET finished {videos}-video job {label}",
                unit="req/s",
                value=len(took) / wall,
                baseline=len(plain_took) / plain_wall,
                baseline_name=f"asyncpg SELECT of status_videos, {CLIENTS} connections",
                details={
                    "clients": CLIENTS,
                    "requests": len(took),
                    "p50_ms": percentile(took, 0.5) * 1000,
                    "p99_ms": percentile(took, 0.99) * 1000,
                    "baseline_p50_ms": percentile(plain_took, 0.5) * 1000,
                    "baseline_p99_ms": percentile(plain_took, 0.99) * 1000,
                },
            ),
            results,
        )
