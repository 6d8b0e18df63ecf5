"""End-to-end import throughput: every service as a process, one batch of N videos.

Each run gets a fresh database, bucket and topic prefix and its own service
processes (``ServiceSet``, as the e2e tests and ``make run`` start them). A
small warm-up batch first lets the consumers join their groups; then one batch
of N distinct videos is posted and the status polled until it is finished.
The measured run uses the default ingester concurrency (8); the baseline run
the same with ``VIDEOIMPORT_INGESTER_CONCURRENCY=1``. The source server can
wait before answering each request, like a slow archive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from videoimport_devstack import StackInfo
from videoimport_devstack.services import ServiceSet

from .common import (
    REPO,
    Result,
    cli,
    fresh_bucket,
    fresh_database,
    percentile,
    report,
    serve,
)

API = "/api/2025-03/import/videos"
SAMPLE = REPO / "tests" / "fixtures" / "sample.mp4"
PROJECT_CONFIG = REPO / "deploy" / "demo-project.json"
WARM_UP_VIDEOS = 4
JOB_DEADLINE = 180.0
POLL_INTERVAL = 0.1


class Source:
    """The client's video host: every URL serves sample.mp4, after ``latency`` seconds."""

    def __init__(self) -> None:
        self.latency = 0.0
        self.requests = 0
        self.arrivals: dict[str, float] = {}  # wall clock, comparable to the log's timestamps
        self._body = SAMPLE.read_bytes()
        self.app = web.Application()
        self.app.router.add_get("/videos/{name}", self._video)

    async def _video(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.arrivals.setdefault(request.match_info["name"], time.time())
        if self.latency:
            await asyncio.sleep(self.latency)
        return web.Response(body=self._body, content_type="video/mp4")


@dataclass(frozen=True)
class Run:
    concurrency: int
    videos: int
    seconds: float
    """From sending the POST to the status answering ``finished``."""
    to_terminal: list[float]
    """Per video: from the job's ImportRequested to its terminal event (log timestamps)."""
    job_completed_lag: float
    """From the last terminal event to JobCompleted (projector)."""
    source_requests: int
    in_flight: dict[int, float]
    """n → share of the time with n downloads (source request → terminal event) in flight."""
    idle_gaps: list[float]
    """Concurrency 1 only: from each terminal event to the next source request."""

    @property
    def throughput(self) -> float:
        return self.videos / self.seconds

    def summary(self) -> dict[str, Any]:
        return {
            "videos_per_s": self.throughput,
            "seconds": self.seconds,
            "p50_to_terminal_s": percentile(self.to_terminal, 0.5),
            "p95_to_terminal_s": percentile(self.to_terminal, 0.95),
            "first_terminal_s": min(self.to_terminal),
            "job_completed_lag_s": self.job_completed_lag,
            "source_requests": self.source_requests,
            "mean_downloads_in_flight": sum(n * share for n, share in self.in_flight.items()),
            "time_share_with_n_in_flight": self.in_flight,
            "idle_gaps_ms": sorted(round(gap * 1000) for gap in self.idle_gaps),
        }


def _batch(source_url: str, tag: str, count: int) -> dict[str, Any]:
    return {
        "systemName": "bench",
        "videos": [
            {
                "url": f"{source_url}/videos/{tag}-{index}.mp4",
                "id": f"{tag}-{index}",
                "fileName": f"{tag}-{index}",
                "metadata": {"title": f"bench video {index}"},
            }
            for index in range(count)
        ],
    }


async def _import(
    http: aiohttp.ClientSession, api: str, token: str, body: dict[str, Any]
) -> tuple[str, float]:
    """Post ``body`` and poll until the job finished; returns its id and the seconds taken."""
    headers = {"Authorization": f"Bearer {token}"}
    began = time.perf_counter()
    async with http.post(api + API, json=body, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"POST answered {response.status}: {await response.text()}")
        job_id: str = (await response.json())["id"]
    while True:
        async with http.get(f"{api}{API}/status", params={"id": job_id}, headers=headers) as r:
            status: dict[str, Any] = await r.json()
        if status.get("finished"):
            seconds = time.perf_counter() - began
            break
        if time.perf_counter() - began > JOB_DEADLINE:
            raise RuntimeError(f"job {job_id} not finished after {JOB_DEADLINE:.0f} s: {status}")
        await asyncio.sleep(POLL_INTERVAL)
    overview = status["overview"]
    if overview["success"] != len(body["videos"]):
        failed = [v for v in status["videos"] if v["state"] != "success"][:3]
        raise RuntimeError(f"job {job_id}: not every video succeeded: {overview} {failed}")
    return job_id, seconds


@dataclass(frozen=True)
class LogTimes:
    """Wall-clock times (epoch seconds) the log recorded for one job."""

    started: float
    terminal: dict[int, float]
    """Video index → its terminal event."""
    completed: float


async def _log_times(dsn: str, job_id: str) -> LogTimes:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT event_type, stream_version, stream_id, recorded_at FROM events"
            " WHERE correlation_id = $1",
            job_id,
        )
    finally:
        await conn.close()
    at = {(r["stream_id"], r["stream_version"]): r["recorded_at"].timestamp() for r in rows}
    return LogTimes(
        started=at[(f"job-{job_id}", 0)],
        completed=at[(f"job-{job_id}", 1)],
        terminal={
            int(stream.rpartition("/video-")[2]): when
            for (stream, version), when in at.items()
            if "/video-" in stream and version == 1
        },
    )


def _in_flight(times: LogTimes, arrivals: dict[int, float]) -> dict[int, float]:
    changes = sorted(
        [(at, 1) for at in arrivals.values()] + [(times.terminal[i], -1) for i in arrivals]
    )
    spent: dict[int, float] = {}
    level = 0
    for (at, step), (later, _) in itertools.pairwise(changes):
        level += step
        spent[level] = spent.get(level, 0.0) + later - at
    span = changes[-1][0] - changes[0][0]
    return {n: spent[n] / span for n in sorted(spent)}


def _idle_gaps(times: LogTimes, arrivals: dict[int, float]) -> list[float]:
    order = sorted(arrivals, key=arrivals.__getitem__)
    return [arrivals[b] - times.terminal[a] for a, b in itertools.pairwise(order)]


async def run_once(
    stack: StackInfo,
    source: Source,
    source_url: str,
    log_dir: Path,
    *,
    concurrency: int,
    latency_ms: int,
    videos: int,
) -> Run:
    source.latency = latency_ms / 1000
    source.arrivals.clear()
    async with fresh_database(stack, "bench_e2e") as dsn:
        bucket = await fresh_bucket(stack, "bench-e2e-")
        own = dataclasses.replace(stack, postgres_dsn=dsn, s3_bucket=bucket)
        services = ServiceSet(
            own,
            log_dir,
            topic_prefix=f"bench{secrets.token_hex(4)}.",
            extra_env={
                "VIDEOIMPORT_INGESTER_CONCURRENCY": str(concurrency),
                # One project's whole batch: let it use every worker, as before the
                # per-project limit existed, so the ratios stay comparable.
                "VIDEOIMPORT_INGESTER_PROJECT_LIMIT": str(concurrency),
                "VIDEOIMPORT_INGESTER_JOB_LIMIT": str(concurrency),
            },
        )
        # From the main thread: the children die with the thread that spawned them.
        services.start()
        try:
            await cli(dsn, "project", "create", "bench", "--config", str(PROJECT_CONFIG))
            token = await cli(dsn, "token", "create", "--project", "bench")
            async with aiohttp.ClientSession() as http:
                await _import(
                    http, services.api_url, token, _batch(source_url, "warm", WARM_UP_VIDEOS)
                )
                requests_before = source.requests
                job_id, seconds = await _import(
                    http, services.api_url, token, _batch(source_url, "video", videos)
                )
            times = await _log_times(dsn, job_id)
            if services.dead():
                raise RuntimeError(f"a service died: {services.dead()}")
        except BaseException:
            for name, child in services.children.items():
                print(f"--- {name} log tail ---\n{child.tail(20)}", file=sys.stderr)
            raise
        finally:
            services.stop()
    arrivals = {
        int(name.removeprefix("video-").removesuffix(".mp4")): when
        for name, when in source.arrivals.items()
        if name.startswith("video-")
    }
    return Run(
        concurrency=concurrency,
        videos=videos,
        seconds=seconds,
        to_terminal=[when - times.started for when in times.terminal.values()],
        job_completed_lag=times.completed - max(times.terminal.values()),
        source_requests=source.requests - requests_before,
        in_flight=_in_flight(times, arrivals),
        idle_gaps=_idle_gaps(times, arrivals) if concurrency == 1 else [],
    )


def _describe(run: Run) -> str:
    idle = ""
    if run.idle_gaps:
        p50, p95 = (percentile(run.idle_gaps, f) * 1000 for f in (0.5, 0.95))
        idle = f", idle gap between videos p50 {p50:.0f} ms p95 {p95:.0f} ms"
    return (
        f"    concurrency {run.concurrency}: {run.throughput:.1f} videos/s,"
        f" to terminal p50 {percentile(run.to_terminal, 0.5):.2f} s"
        f" p95 {percentile(run.to_terminal, 0.95):.2f} s; time with no download in flight"
        f" {run.in_flight.get(0, 0.0):.0%}, with all {run.concurrency}"
        f" {run.in_flight.get(run.concurrency, 0.0):.0%}{idle}"
    )


async def run(
    stack: StackInfo,
    results: list[Result],
    work_dir: Path,
    *,
    videos: int,
    latencies_ms: list[int],
    concurrency: int = 8,
) -> None:
    source = Source()
    async with serve(source.app) as source_url:
        for latency in latencies_ms:
            runs = {}
            for level in (concurrency, 1):
                runs[level] = await run_once(
                    stack,
                    source,
                    source_url,
                    work_dir / f"e2e-c{level}-l{latency}",
                    concurrency=level,
                    latency_ms=latency,
                    videos=videos,
                )
            measured, baseline = runs[concurrency], runs[1]
            report(
                Result(
                    name=f"e2e.import N={videos} latency={latency}ms concurrency={concurrency}",
                    unit="videos/s",
                    value=measured.throughput,
                    baseline=baseline.throughput,
                    baseline_name="concurrency 1",
                    details={"measured": measured.summary(), "baseline": baseline.summary()},
                ),
                results,
            )
            for each in (measured, baseline):
                print(_describe(each), flush=True)
