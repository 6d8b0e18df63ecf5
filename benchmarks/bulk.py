"""Bulk import: N distinct 100 KB videos, first POST → every job finished, videos/s.

Every service runs as a process (``ServiceSet``) with its default settings, as
``make run`` starts them, against a fresh database, bucket and topic prefix.
The videos are posted as jobs of at most ``MAX_BATCH`` (two for 2,000); the
clock runs from the first POST until the log holds every job's
``JobCompleted``, then each job's status must say every video succeeded.

The baseline moves the same number of videos of the same size from the same
origin into the same s3rver the simplest way: a bare aiohttp GET, then one
PutObject, 8 in flight. Its two halves are also timed on their own (GET only,
PutObject only), so the figures say whether the S3 server limits the bare copy.

Also home of what the other service-level benchmarks share: the generated
origin (``GeneratedSource``) and one deployment of every service (``deployment``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiobotocore.session import get_session
from aiohttp import web
from videoimport_devstack import StackInfo
from videoimport_devstack.services import ServiceSet

from .common import Result, cli, fresh_bucket, fresh_database, report, serve
from .e2e import PROJECT_CONFIG, WARM_UP_VIDEOS
from .fairness import MAX_BATCH, Client
from .media import video_head

VIDEO_BYTES = 100_000
BARE_IN_FLIGHT = 8
COMPLETION_POLL = 0.05
GOAL_RATIO = 0.5


def job_deadline(videos: int) -> float:
    """Seconds a run may take before it fails (about 4 videos/s at worst)."""
    return 60.0 + videos / 4


class GeneratedSource:
    """The client's video host: ``/v/{size}/{name}`` answers a decodable video of ``size``
    bytes, distinct per name (``media.video_head``, then random filler), at once."""

    def __init__(self, largest: int = 1_000_000) -> None:
        self._filler = os.urandom(largest)
        self.app = web.Application()
        self.app.router.add_get("/v/{size}/{name}", self._video)

    def body(self, name: str, size: int) -> bytes:
        head = video_head(name, size)
        return head + self._filler[: size - len(head)]

    async def _video(self, request: web.Request) -> web.Response:
        size = min(int(request.match_info["size"]), len(self._filler))
        return web.Response(
            body=self.body(request.match_info["name"], size), content_type="video/mp4"
        )


def videos_body(
    source_url: str, tag: str, count: int, *, size: int = VIDEO_BYTES, webhook: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "systemName": "bench",
        "videos": [
            {
                "url": f"{source_url}/v/{size}/{tag}-{index}.mp4",
                "id": f"{tag}-{index}",
                "fileName": f"{tag}-{index}",
                "metadata": {"title": f"bench video {index}"},
            }
            for index in range(count)
        ],
    }
    if webhook is not None:
        body["webhook"] = webhook
    return body


def batch_sizes(videos: int) -> list[int]:
    return [min(MAX_BATCH, videos - start) for start in range(0, videos, MAX_BATCH)]


@dataclass
class Deployment:
    dsn: str
    bucket: str
    services: ServiceSet
    client: Client


@contextlib.asynccontextmanager
async def deployment(
    stack: StackInfo, log_dir: Path, name: str, *, ingesters: int = 1
) -> AsyncIterator[Deployment]:
    """Every service as a process (``ingesters`` ingester processes) on a fresh database,
    bucket and topic prefix, project ``bench`` with a token, warmed up by one small job
    (consumer groups, pools)."""
    async with fresh_database(stack, f"bench_{name}") as dsn:
        bucket = await fresh_bucket(stack, f"bench-{name}-")
        own = dataclasses.replace(stack, postgres_dsn=dsn, s3_bucket=bucket)
        services = ServiceSet(
            own, log_dir, topic_prefix=f"bench{secrets.token_hex(4)}.", ingesters=ingesters
        )
        # From the main thread: the children die with the thread that spawned them.
        services.start()
        try:
            await cli(dsn, "project", "create", "bench", "--config", str(PROJECT_CONFIG))
            token = await cli(dsn, "token", "create", "--project", "bench")
            async with aiohttp.ClientSession() as http:
                client = Client(http, services.api_url, token)
                yield Deployment(dsn, bucket, services, client)
            if services.dead():
                raise RuntimeError(f"a service died: {services.dead()}")
        except BaseException:
            for child_name, child in services.children.items():
                print(f"--- {child_name} log tail ---\n{child.tail(20)}", file=sys.stderr)
            raise
        finally:
            services.stop()


async def warm_up(client: Client, source_url: str) -> None:
    job_id = await client.post(videos_body(source_url, "warm", WARM_UP_VIDEOS))
    await client.wait(job_id, WARM_UP_VIDEOS, poll=0.1, deadline=time.perf_counter() + 60)


async def wait_completed(dsn: str, job_ids: list[str], deadline: float) -> None:
    """Poll the log until it holds every job's ``JobCompleted`` (job stream version 1)."""
    streams = [f"job-{job_id}" for job_id in job_ids]
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            done = await conn.fetchval(
                "SELECT count(*) FROM events WHERE stream_id = ANY($1) AND stream_version = 1",
                streams,
            )
            if done == len(streams):
                return
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{done} of {len(streams)} jobs completed in time")
            await asyncio.sleep(COMPLETION_POLL)
    finally:
        await conn.close()


async def _halves(dsn: str, job_ids: list[str]) -> tuple[float, float]:
    """Videos/s of the first and the second half of the terminal events (log times):
    equal when the per-video cost does not grow with the backlog."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM recorded_at)::float8 AS at FROM events"
            " WHERE correlation_id = ANY($1) AND stream_version = 1"
            " AND stream_id LIKE '%/video-%' ORDER BY recorded_at",
            job_ids,
        )
    finally:
        await conn.close()
    times = [row["at"] for row in rows]
    middle = len(times) // 2
    first, second = times[: middle + 1], times[middle:]
    return (
        (len(first) - 1) / max(first[-1] - first[0], 1e-9),
        (len(second) - 1) / max(second[-1] - second[0], 1e-9),
    )


async def pipeline(
    stack: StackInfo, source_url: str, log_dir: Path, videos: int, *, ingesters: int = 1
) -> dict[str, Any]:
    async with deployment(stack, log_dir, "bulk", ingesters=ingesters) as deployed:
        client = deployed.client
        await warm_up(client, source_url)
        sizes = batch_sizes(videos)
        began = time.perf_counter()
        job_ids = [
            await client.post(videos_body(source_url, f"n{videos}b{index}", size))
            for index, size in enumerate(sizes)
        ]
        posted = time.perf_counter() - began
        await wait_completed(deployed.dsn, job_ids, began + job_deadline(videos))
        seconds = time.perf_counter() - began
        for job_id, size in zip(job_ids, sizes, strict=True):
            await client.wait(job_id, size, poll=0.1, deadline=time.perf_counter() + 30)
        first_half, second_half = await _halves(deployed.dsn, job_ids)
    return {
        "videos": videos,
        "jobs": len(sizes),
        "seconds": seconds,
        "videos_per_s": videos / seconds,
        "post_seconds": posted,
        "first_half_videos_per_s": first_half,
        "second_half_videos_per_s": second_half,
    }


async def _in_flight(items: Iterable[str], work: Callable[[str], Awaitable[None]]) -> float:
    """Run ``work`` over ``items`` with ``BARE_IN_FLIGHT`` at a time; items per second."""
    pending = list(items)
    queue = iter(pending)

    async def worker() -> None:
        for item in queue:
            await work(item)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(BARE_IN_FLIGHT)))
    return len(pending) / (time.perf_counter() - began)


async def bare_copy(
    stack: StackInfo, source: GeneratedSource, source_url: str, videos: int
) -> dict[str, float]:
    """GET → PutObject, 8 in flight; then GET only and PutObject only, same N."""
    bucket = await fresh_bucket(stack, "bench-bare-")
    names = [f"bare{videos}-{index}.mp4" for index in range(videos)]
    async with (
        aiohttp.ClientSession() as http,
        get_session().create_client(
            "s3",
            endpoint_url=stack.s3_endpoint,
            aws_access_key_id=stack.s3_access_key,
            aws_secret_access_key=stack.s3_secret_key,
            region_name=stack.s3_region,
        ) as s3,
    ):

        async def get(name: str) -> bytes:
            async with http.get(f"{source_url}/v/{VIDEO_BYTES}/{name}") as response:
                response.raise_for_status()
                return await response.read()

        async def put(key: str, body: bytes) -> None:
            await s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="video/mp4")

        async def copy(name: str) -> None:
            await put(f"copy/{name}", await get(name))

        async def get_only(name: str) -> None:
            await get(name)

        async def put_only(name: str) -> None:
            await put(f"put/{name}", source.body(name, VIDEO_BYTES))

        await _in_flight(names[:BARE_IN_FLIGHT], copy)  # warm-up: connections, bucket
        return {
            "bare_copy_per_s": await _in_flight(names, copy),
            "get_only_per_s": await _in_flight(names, get_only),
            "put_only_per_s": await _in_flight(names, put_only),
        }


async def run(
    stack: StackInfo, results: list[Result], work_dir: Path, *, video_counts: list[int]
) -> None:
    source = GeneratedSource()
    async with serve(source.app) as source_url:
        for videos in video_counts:
            bare = await bare_copy(stack, source, source_url, videos)
            measured = await pipeline(stack, source_url, work_dir / f"bulk-{videos}", videos)
            result = Result(
                name=f"bulk.import N={videos} x 100 KB",
                unit="videos/s",
                value=measured["videos_per_s"],
                baseline=bare["bare_copy_per_s"],
                baseline_name=f"bare GET → PutObject, {BARE_IN_FLIGHT} in flight",
                details={**measured, **bare},
                goal=f"ratio ≥ {GOAL_RATIO}",
            )
            result.met = result.ratio >= GOAL_RATIO
            report(result, results)
