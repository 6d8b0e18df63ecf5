"""Fairness: how long a 1-video job waits behind another project's backlog.

Every service runs as a process (``ServiceSet``, as in ``e2e.py``) with the
ingester's default limits (concurrency 8, at most 6 running per project and per
job), against a fresh database, bucket and topic prefix. Two projects, ``big``
and ``small``. After a warm-up, ``small`` posts a 1-video job on the idle system
(the baseline, three rounds: two before the backlog, one after it finished;
the median is reported). Measured: ``big`` posts a backlog of N videos (jobs of
at most ``MAX_BATCH``), and as soon as the API has accepted it, ``small`` posts
its 1-video job; the seconds from that POST until its status says finished.
The log then tells how many of the backlog's videos had finished by then. A
watcher on the ingester's queue (``ingest_tasks``) splits each small job's time
into: log → queued (relay, Kafka, intake), queued → claimed (the fair
scheduler), claimed → terminal event (the download), terminal → JobCompleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from videoimport_devstack import StackInfo
from videoimport_devstack.services import ServiceSet
from videoimport_ingester.settings import Settings as IngesterSettings

from .common import Result, cli, fresh_bucket, fresh_database, median, report, serve
from .e2e import API, PROJECT_CONFIG, WARM_UP_VIDEOS, LogTimes, Source, _batch, _log_times

MAX_BATCH = 1000
"""The API's default ``VIDEOIMPORT_MAX_BATCH``: a larger backlog is posted as several jobs."""
IDLE_ROUNDS_BEFORE = 2
IDLE_ROUNDS_AFTER = 1
SMALL_POLL = 0.02
"""Status poll of the 1-video job (fine: the idle figure is a fraction of a second)."""
BACKLOG_POLL = 0.5
SMALL_DEADLINE = 120.0
WATCH_INTERVAL = 0.01
"""How often the small project's row in the ingester's queue is looked at."""


def backlog_deadline(videos: int) -> float:
    """Seconds the backlog may take before the run fails (about 4 videos/s at worst)."""
    return 60.0 + videos / 4


@dataclass
class Client:
    http: aiohttp.ClientSession
    api: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def post(self, body: dict[str, Any]) -> str:
        async with self.http.post(self.api + API, json=body, headers=self.headers) as response:
            if response.status != 200:
                raise RuntimeError(f"POST answered {response.status}: {await response.text()}")
            job_id: str = (await response.json())["id"]
        return job_id

    async def status(self, job_id: str) -> dict[str, Any]:
        async with self.http.get(
            f"{self.api}{API}/status", params={"id": job_id}, headers=self.headers
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"status answered {response.status}: {await response.text()}")
            status: dict[str, Any] = await response.json()
        return status

    async def wait(self, job_id: str, videos: int, *, poll: float, deadline: float) -> None:
        """Poll until the job finished (every video a success); fail after ``deadline``
        (a ``time.perf_counter()`` value)."""
        while True:
            status = await self.status(job_id)
            if status.get("finished"):
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"job {job_id} not finished in time: {status.get('progress')}")
            await asyncio.sleep(poll)
        overview = status["overview"]
        if overview["success"] != videos:
            failed = [v for v in status["videos"] if v["state"] != "success"][:3]
            raise RuntimeError(f"job {job_id}: not every video succeeded: {overview} {failed}")

    async def one_video(self, body: dict[str, Any]) -> tuple[str, float]:
        """Post a 1-video job, wait for it; its id and the seconds from POST to finished."""
        began = time.perf_counter()
        job_id = await self.post(body)
        await self.wait(job_id, 1, poll=SMALL_POLL, deadline=began + SMALL_DEADLINE)
        return job_id, time.perf_counter() - began


@dataclass(frozen=True)
class SmallRun:
    """One 1-video job of ``small``."""

    job_id: str
    seconds: float
    """From its POST until its status said finished (the reported figure)."""
    times: LogTimes
    queued: float | None
    """Wall clock: its row appeared in the ingester's queue (``ingest_tasks.created_at``)."""
    claimed: float | None
    """Wall clock: a worker claimed that row (None if the watcher never saw it leased)."""

    def phases(self) -> dict[str, float | None]:
        """Where the time went, from the log's ImportRequested to its JobCompleted."""
        terminal = self.times.terminal[0]
        return {
            "requested_to_queued": _diff(self.times.started, self.queued),
            "queued_to_claimed": _diff(self.queued, self.claimed),
            "claimed_to_terminal": _diff(self.claimed, terminal),
            "terminal_to_job_completed": self.times.completed - terminal,
            "requested_to_job_completed": self.times.completed - self.times.started,
        }


def _diff(earlier: float | None, later: float | None) -> float | None:
    return None if earlier is None or later is None else later - earlier


async def _watch_queue(dsn: str, project: str, stop: asyncio.Event, seen: dict[str, float]) -> None:
    """Note when ``project``'s (only) queued row appears and when a worker claims it."""
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            row = await conn.fetchrow(
                "SELECT created_at, updated_at, lease_owner FROM ingest_tasks"
                " WHERE project = $1 LIMIT 1",
                project,
            )
            if row is not None:
                seen.setdefault("queued", row["created_at"].timestamp())
                if row["lease_owner"] is not None:
                    seen.setdefault("claimed", row["updated_at"].timestamp())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_INTERVAL)
    finally:
        await conn.close()


async def _small_job(dsn: str, small: Client, body: dict[str, Any]) -> SmallRun:
    seen: dict[str, float] = {}
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_queue(dsn, "small", stop, seen))
    try:
        job_id, seconds = await small.one_video(body)
    finally:
        stop.set()
        await watcher
    return SmallRun(
        job_id=job_id,
        seconds=seconds,
        times=await _log_times(dsn, job_id),
        queued=seen.get("queued"),
        claimed=seen.get("claimed"),
    )


@dataclass(frozen=True)
class Measured:
    small: SmallRun
    backlog_post_seconds: float
    """From the first backlog POST until the small POST (the API accepting the backlog)."""
    backlog_seconds: float
    """From the first backlog POST until every backlog job's status said finished."""
    finished_at_small_post: int
    """Backlog videos with a terminal event before the small job's ImportRequested."""
    finished_at_small_done: int
    """... before the small job's JobCompleted."""
    progress_at_small_done: int
    """The backlog jobs' status progress, polled right after the small job finished."""


def _finished_by(backlog: list[LogTimes], moment: float) -> int:
    return sum(1 for times in backlog for at in times.terminal.values() if at <= moment)


async def _measure(dsn: str, big: Client, small: Client, source_url: str, videos: int) -> Measured:
    sizes = [min(MAX_BATCH, videos - start) for start in range(0, videos, MAX_BATCH)]
    began = time.perf_counter()
    deadline = began + backlog_deadline(videos)
    backlog_ids = [
        await big.post(_batch(source_url, f"backlog{index}", size))
        for index, size in enumerate(sizes)
    ]
    small_posted = time.perf_counter()
    behind = await _small_job(dsn, small, _batch(source_url, "behind", 1))
    progress = 0
    for job_id in backlog_ids:
        counts = (await big.status(job_id)).get("progress") or {}
        progress += sum(counts.get(key, 0) for key in ("success", "skipped", "failed"))
    for job_id, size in zip(backlog_ids, sizes, strict=True):
        await big.wait(job_id, size, poll=BACKLOG_POLL, deadline=deadline)
    backlog_seconds = time.perf_counter() - began
    backlog = [await _log_times(dsn, job_id) for job_id in backlog_ids]
    return Measured(
        small=behind,
        backlog_post_seconds=small_posted - began,
        backlog_seconds=backlog_seconds,
        finished_at_small_post=_finished_by(backlog, behind.times.started),
        finished_at_small_done=_finished_by(backlog, behind.times.completed),
        progress_at_small_done=progress,
    )


def _rounded(phases: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else round(v, 3) for k, v in phases.items()}


def _median_phases(runs: list[SmallRun]) -> dict[str, float | None]:
    keys = runs[0].phases().keys()
    medians: dict[str, float | None] = {}
    for key in keys:
        values = [v for v in (run.phases()[key] for run in runs) if v is not None]
        medians[key] = median(values) if values else None
    return _rounded(medians)


async def run(
    stack: StackInfo,
    results: list[Result],
    work_dir: Path,
    *,
    backlog: int,
    latency_ms: int = 50,
) -> None:
    source = Source()
    source.latency = latency_ms / 1000
    limits = IngesterSettings()
    async with serve(source.app) as source_url, fresh_database(stack, "bench_fair") as dsn:
        bucket = await fresh_bucket(stack, "bench-fair-")
        own = dataclasses.replace(stack, postgres_dsn=dsn, s3_bucket=bucket)
        services = ServiceSet(
            own, work_dir / "fairness", topic_prefix=f"bench{secrets.token_hex(4)}."
        )
        # From the main thread: the children die with the thread that spawned them.
        services.start()
        try:
            tokens = {}
            for project in ("big", "small"):
                await cli(dsn, "project", "create", project, "--config", str(PROJECT_CONFIG))
                tokens[project] = await cli(dsn, "token", "create", "--project", project)
            async with aiohttp.ClientSession() as http:
                big = Client(http, services.api_url, tokens["big"])
                small = Client(http, services.api_url, tokens["small"])
                warm_id = await big.post(_batch(source_url, "warm", WARM_UP_VIDEOS))
                await small.one_video(_batch(source_url, "warm", 1))
                await big.wait(warm_id, WARM_UP_VIDEOS, poll=0.1, deadline=time.perf_counter() + 60)
                idle = [
                    await _small_job(dsn, small, _batch(source_url, f"idle{i}", 1))
                    for i in range(IDLE_ROUNDS_BEFORE)
                ]
                measured = await _measure(dsn, big, small, source_url, backlog)
                idle += [
                    await _small_job(dsn, small, _batch(source_url, f"after{i}", 1))
                    for i in range(IDLE_ROUNDS_AFTER)
                ]
            if services.dead():
                raise RuntimeError(f"a service died: {services.dead()}")
        except BaseException:
            for name, child in services.children.items():
                print(f"--- {name} log tail ---\n{child.tail(20)}", file=sys.stderr)
            raise
        finally:
            services.stop()
    report(
        Result(
            name=f"fairness.small job behind {backlog}-video backlog",
            unit="s",
            value=measured.small.seconds,
            baseline=median([run.seconds for run in idle]),
            baseline_name="same job on the idle system",
            details={
                "backlog_videos": backlog,
                "backlog_finished_when_small_posted": measured.finished_at_small_post,
                "backlog_finished_when_small_finished": measured.finished_at_small_done,
                "backlog_progress_in_status_after_small": measured.progress_at_small_done,
                "backlog_post_seconds": measured.backlog_post_seconds,
                "backlog_seconds": measured.backlog_seconds,
                "backlog_videos_per_s": backlog / measured.backlog_seconds,
                "latency_ms": latency_ms,
                "idle_rounds_s": [round(run.seconds, 3) for run in idle],
                "phases_s": _rounded(measured.small.phases()),
                "idle_phases_median_s": _median_phases(idle),
                "ingester_limits": {
                    "concurrency": limits.ingester_concurrency,
                    "project": limits.ingester_project_limit,
                    "job": limits.ingester_job_limit,
                },
            },
        ),
        results,
    )
