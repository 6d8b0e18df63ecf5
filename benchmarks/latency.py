"""POST latency while imports run, and POST → webhook of a 1-video 1 MB job.

One deployment of every service (``bulk.deployment``). A background import
keeps a backlog going: a job of ``BACKGROUND_VIDEOS`` 100 KB videos, and the
next one as soon as the log has its ``JobCompleted``.

(a) Sequential POSTs of 10 videos for ``POST_SECONDS``, alternated on the same
database with the baseline: one asyncpg transaction inserting the same 11 JSON
rows (the request and each of its videos) into a plain table. Rates are counts
over the time spent in each, so both sides see the same load.

(b) A 1-video 1 MB job with a webhook to a receiver on 127.0.0.1: seconds from
its POST until the receiver got the request, ``WEBHOOK_JOBS`` in a row, on the
idle system first, then under the background import. No baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from videoimport_devstack import StackInfo

from .bulk import (
    GeneratedSource,
    deployment,
    job_deadline,
    videos_body,
    wait_completed,
    warm_up,
)
from .common import MB, Result, cli, percentile, report, serve
from .e2e import PROJECT_CONFIG
from .fairness import Client

BACKGROUND_VIDEOS = 1000
POST_SECONDS = 30.0
POST_VIDEOS = 10
WEBHOOK_JOBS = 20
WEBHOOK_DEADLINE = 120.0
TENANT = "other-tenant"
"""The project of the 1-video jobs: the load is another tenant's."""
GOAL_POST_RATIO = 0.5
GOAL_POST_P99_MS = 50.0
GOAL_WEBHOOK_P50_MS = 300.0
GOAL_WEBHOOK_P99_MS = 2000.0
PLAIN_TABLE = "CREATE TABLE bench_plain (id bigserial PRIMARY KEY, kind text NOT NULL, data json)"


class WebhookReceiver:
    """Answers every ``POST /hooks/{n}`` with 204 and notes when hook ``n`` arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, asyncio.Future[float]] = {}
        self.app = web.Application()
        self.app.router.add_post("/hooks/{n}", self._hook)

    def expect(self, name: str) -> asyncio.Future[float]:
        return self.arrivals.setdefault(name, asyncio.get_running_loop().create_future())

    async def _hook(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        await request.read()
        future = self.expect(request.match_info["n"])
        if not future.done():
            future.set_result(arrived)
        return web.Response(status=204)


async def _background(
    client: Client, dsn: str, source_url: str, size: int, done: list[int]
) -> None:
    """Keep a ``size``-video job running until cancelled; ``done`` counts finished videos."""
    round_ = 0
    while True:
        job_id = await client.post(videos_body(source_url, f"bg{round_}", size))
        await wait_completed(dsn, [job_id], time.perf_counter() + job_deadline(size))
        done[0] += size
        round_ += 1


@contextlib.asynccontextmanager
async def _loaded(client: Client, dsn: str, source_url: str, size: int) -> AsyncIterator[list[int]]:
    done = [0]
    task = asyncio.create_task(_background(client, dsn, source_url, size, done))
    try:
        yield done
        if task.done():
            task.result()  # the background failed: so does the run
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(values, 0.5) * 1000,
        "p99_ms": percentile(values, 0.99) * 1000,
        "max_ms": max(values) * 1000,
    }


async def _posts(client: Client, dsn: str, source_url: str, seconds: float) -> dict[str, Any]:
    """Alternate a 10-video POST and the plain 11-row transaction for ``seconds``."""
    posts: list[float] = []
    plain: list[float] = []
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(PLAIN_TABLE)
        insert = await conn.prepare("INSERT INTO bench_plain (kind, data) VALUES ($1, $2)")
        ends = time.perf_counter() + seconds
        while time.perf_counter() < ends:
            body = videos_body(source_url, f"post{len(posts)}", POST_VIDEOS)
            began = time.perf_counter()
            await client.post(body)
            posts.append(time.perf_counter() - began)
            began = time.perf_counter()
            rows = [("job", json.dumps(body))] + [("video", json.dumps(v)) for v in body["videos"]]
            async with conn.transaction():
                await insert.executemany(rows)
            plain.append(time.perf_counter() - began)
    finally:
        await conn.close()
    return {
        "posts": len(posts),
        "posts_per_s": len(posts) / sum(posts),
        **_ms(posts),
        "baseline_per_s": len(plain) / sum(plain),
        **{f"baseline_{k}": v for k, v in _ms(plain).items()},
    }


async def _webhooks(
    client: Client, receiver: WebhookReceiver, source_url: str, hook_url: str, tag: str, jobs: int
) -> list[float]:
    """POST → webhook received, seconds, for ``jobs`` 1-video 1 MB jobs in a row."""
    seconds = []
    for index in range(jobs):
        name = f"{tag}{index}"
        arrived = receiver.expect(name)
        body = videos_body(source_url, name, 1, size=MB, webhook=f"{hook_url}/hooks/{name}")
        began = time.perf_counter()
        await client.post(body)
        try:
            seconds.append(await asyncio.wait_for(arrived, WEBHOOK_DEADLINE) - began)
        except TimeoutError:
            # Counted at the deadline (a lower bound), so one stuck job shows in p99
            # instead of ending the whole run.
            seconds.append(WEBHOOK_DEADLINE)
    return seconds


def _webhook_result(seconds: list[float], condition: str, goal: bool) -> Result:
    figures = _ms(seconds)
    result = Result(
        name=f"latency.webhook 1 x 1 MB {condition}",
        unit="ms",
        value=figures["p50_ms"],
        baseline=0.0,
        baseline_name="",
        details={**figures, "jobs": len(seconds), "seconds": [round(s, 3) for s in seconds]},
    )
    if goal:
        result.goal = (
            f"p50 ≤ {GOAL_WEBHOOK_P50_MS:.0f} ms, p99 ≤ {GOAL_WEBHOOK_P99_MS / 1000:.0f} s"
        )
        result.met = (
            figures["p50_ms"] <= GOAL_WEBHOOK_P50_MS and figures["p99_ms"] <= GOAL_WEBHOOK_P99_MS
        )
    return result


async def run(stack: StackInfo, results: list[Result], work_dir: Path, *, quick: bool) -> None:
    background = 200 if quick else BACKGROUND_VIDEOS
    post_seconds = 5.0 if quick else POST_SECONDS
    webhook_jobs = 5 if quick else WEBHOOK_JOBS
    source = GeneratedSource(largest=MB)
    receiver = WebhookReceiver()
    async with (
        serve(source.app) as source_url,
        serve(receiver.app) as hook_url,
        deployment(stack, work_dir / "latency", "latency") as deployed,
    ):
        client = deployed.client
        await warm_up(client, source_url)
        # The 1-video jobs are another tenant's: the load (a running bulk import and the
        # stream of 10-video POSTs, project "bench") is someone else's backlog.
        await cli(deployed.dsn, "project", "create", TENANT, "--config", str(PROJECT_CONFIG))
        token = await cli(deployed.dsn, "token", "create", "--project", TENANT)
        tenant = Client(client.http, client.api, token)
        idle = await _webhooks(tenant, receiver, source_url, hook_url, "idle", webhook_jobs)
        async with _loaded(client, deployed.dsn, source_url, background) as done:
            posts = await _posts(client, deployed.dsn, source_url, post_seconds)
            loaded = await _webhooks(tenant, receiver, source_url, hook_url, "load", webhook_jobs)
            background_done = done[0]
    post = Result(
        name=f"latency.POST {POST_VIDEOS} videos during imports",
        unit="POSTs/s",
        value=posts["posts_per_s"],
        baseline=posts["baseline_per_s"],
        baseline_name="asyncpg transaction of the same 11 JSON rows",
        details={**posts, "background_job_videos": background, "background_done": background_done},
        goal=f"ratio ≥ {GOAL_POST_RATIO}, p99 ≤ {GOAL_POST_P99_MS:.0f} ms",
    )
    post.met = post.ratio >= GOAL_POST_RATIO and posts["p99_ms"] <= GOAL_POST_P99_MS
    report(post, results)
    report(_webhook_result(idle, "idle", goal=False), results)
    report(_webhook_result(loaded, "under load", goal=True), results)
