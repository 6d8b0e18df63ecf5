"""Shared pieces of the ingester's integration tests.

A local HTTP server plays the video sources (real sockets on 127.0.0.1), the
requests are appended to the real event log the way the API does, and the
ingester is built by its own ``bootstrap`` against real PostgreSQL and S3.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY
from videoimport_devstack import StackInfo
from videoimport_eventlog import schema, store
from videoimport_eventlog.kafka import ensure_topics, make_producer
from videoimport_events import (
    Envelope,
    ImportRequested,
    JobCancelled,
    VideoImportFailed,
    VideoImportRequested,
    cancellation_stream,
    encode_envelope,
    video_stream,
)
from videoimport_ingester import bootstrap, service
from videoimport_ingester.adapters import tasks
from videoimport_ingester.bootstrap import s3_client
from videoimport_ingester.handlers import Ingester
from videoimport_ingester.settings import Settings
from videoimport_ingester.workers import Workers
from videoimport_projects import MetadataField, ProjectConfig, create_project

PROJECT = "news"
SYSTEM = "archive"
CONFIG = ProjectConfig(
    metadata=[
        MetadataField(handle="title", type="text", required=True),
        MetadataField(handle="credit", type="text"),
    ]
)
MIB = 1024 * 1024


def settings_for(
    stack: StackInfo, pg_dsn: str, bucket: str, topic_prefix: str = "", **overrides: Any
) -> Settings:
    """Settings for one test: its stack, and ``overrides`` on top of roomy defaults.

    The download timeouts are generous because the tests share busy cores with
    each other: a source served from this very event loop can fall silent for
    a second when the machine is saturated, and a tight timeout would retry or
    fail downloads that no test asked to. A test about a timeout sets its own.
    """
    values: dict[str, Any] = {
        "database_url": pg_dsn,
        "kafka_bootstrap": stack.kafka_bootstrap,
        "topic_prefix": topic_prefix,
        "s3_endpoint": stack.s3_endpoint,
        "s3_access_key": stack.s3_access_key,
        "s3_secret_key": stack.s3_secret_key,
        "s3_region": stack.s3_region,
        "s3_bucket": bucket,
        "s3_part_size": 5 * MIB,
        "allow_private_urls": True,
        "download_connect_timeout": 10.0,
        "download_read_timeout": 30.0,
        "download_backoff": 0.05,
        "ingester_concurrency": 4,
    }
    values.update(overrides)
    return Settings(**values)


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes ``python -m videoimport_ingester`` use ``settings``."""
    env = dict(os.environ)
    for name in settings.__struct_fields__:
        value = getattr(settings, name)
        if value is not None:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            env[f"VIDEOIMPORT_{name.upper()}"] = text
    env.update(extra)
    return env


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class VideoSource:
    """A local web server with the kinds of answers video URLs give."""

    fixtures: Path
    big_file: Path | None = None
    hits: Counter[str] = field(default_factory=Counter)
    url_hits: Counter[str] = field(default_factory=Counter)
    """Requests per path and query (``hits`` counts per path only)."""
    failures_left: Counter[str] = field(default_factory=Counter)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    """Opens ``/gated/...`` downloads after their first kilobyte."""
    trickle_open: asyncio.Event = field(default_factory=asyncio.Event)
    """Lets ``/trickle/...`` downloads send the rest of their body at once."""
    active: Counter[str] = field(default_factory=Counter)
    """Responses of a path still being sent (``/gated``, ``/trickle``, ``/stall-big.mp4``)."""
    server: TestServer | None = None

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def app(self) -> web.Application:
        @web.middleware
        async def count(request: web.Request, handler: Any) -> web.StreamResponse:
            self.url_hits[request.path_qs] += 1
            response: web.StreamResponse = await handler(request)
            return response

        app = web.Application(middlewares=[count])
        app.router.add_get("/video/{name}", self._fixture)
        app.router.add_get("/missing.mp4", self._missing)
        app.router.add_get("/html-as-video.mp4", self._html_as_video)
        app.router.add_get("/page.html", self._page)
        app.router.add_get("/redirect/{hops}", self._redirect)
        app.router.add_get("/hang.mp4", self._hang)
        app.router.add_get("/flaky/{name}", self._flaky)
        app.router.add_get("/big.mp4", self._big)
        app.router.add_get("/big-chunked.mp4", self._big_chunked)
        app.router.add_get("/gated/{name}", self._gated)
        app.router.add_get("/trickle/{name}", self._trickle)
        app.router.add_get("/stall-big.mp4", self._stall_big)
        return app

    async def _fixture(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        return self._serve_fixture(request)

    def _serve_fixture(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        content_type = request.query.get("type", "video/" + name.rsplit(".", 1)[-1])
        if name.endswith(".mov") and "type" not in request.query:
            content_type = "video/quicktime"
        body = (self.fixtures / name).read_bytes()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _missing(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        return web.Response(status=404, text="not found")

    async def _html_as_video(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        body = b"<!DOCTYPE html><html><body>Please log in</body></html>"
        return web.Response(body=body, headers={"Content-Type": "video/mp4"})

    async def _page(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        return web.Response(text="<html><body>hello</body></html>", content_type="text/html")

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        hops = int(request.match_info["hops"])
        target = f"/redirect/{hops - 1}" if hops > 1 else "/video/sample.mp4"
        raise web.HTTPFound(target)

    async def _hang(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        await self.release.wait()
        return web.Response(status=204)

    async def _flaky(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        if self.failures_left[request.path] > 0:
            self.failures_left[request.path] -= 1
            return web.Response(status=503, text="busy")
        return self._serve_fixture(request)

    async def _gated(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        self.active[request.path] += 1
        try:
            body = (self.fixtures / request.match_info["name"]).read_bytes()
            response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[:1024])
            await self.gate.wait()
            await response.write(body[1024:])
            await response.write_eof()
            return response
        finally:
            self.active[request.path] -= 1

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        """The first kilobyte at once, then a byte every ``?every=`` seconds (0.1)
        until ``trickle_open``, then the rest."""
        self.hits[request.path] += 1
        self.active[request.path] += 1
        try:
            every = float(request.query.get("every", "0.1"))
            body = (self.fixtures / request.match_info["name"]).read_bytes()
            response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[:1024])
            sent = 1024
            while sent < len(body) and not self.trickle_open.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.trickle_open.wait(), every)
                if not self.trickle_open.is_set():
                    await response.write(body[sent : sent + 1])
                    sent += 1
            await response.write(body[sent:])
            await response.write_eof()
            return response
        finally:
            self.active[request.path] -= 1

    async def _stall_big(self, request: web.Request) -> web.StreamResponse:
        """The big file's first 6 MiB (more than a part), then nothing until ``gate``."""
        self.hits[request.path] += 1
        self.active[request.path] += 1
        try:
            assert self.big_file is not None
            data = self.big_file.read_bytes()
            response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
            response.content_length = len(data)
            await response.prepare(request)
            await response.write(data[: 6 * MIB])
            await self.gate.wait()
            await response.write(data[6 * MIB :])
            await response.write_eof()
            return response
        finally:
            self.active[request.path] -= 1

    async def _big(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        assert self.big_file is not None
        return web.FileResponse(self.big_file, headers={"Content-Type": "video/mp4"})

    async def _big_chunked(self, request: web.Request) -> web.StreamResponse:
        """The big file without a Content-Length: only counting can cap it."""
        self.hits[request.path] += 1
        assert self.big_file is not None
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with self.big_file.open("rb") as f:
            while chunk := f.read(256 * 1024):
                await response.write(chunk)
        await response.write_eof()
        return response


@asynccontextmanager
async def video_source(fixtures: Path, big_file: Path | None = None) -> AsyncIterator[VideoSource]:
    source = VideoSource(fixtures=fixtures, big_file=big_file)
    server = TestServer(source.app(), host="127.0.0.1")
    await server.start_server()
    source.server = server
    try:
        yield source
    finally:
        source.release.set()
        source.gate.set()
        source.trickle_open.set()
        await server.close()


async def prepare_database(pg_dsn: str, *other_projects: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await schema.migrate(conn)
        for name in (PROJECT, *other_projects):
            await create_project(conn, name, CONFIG)
    finally:
        await conn.close()


@dataclass(frozen=True)
class Video:
    url: str
    external_id: str = "ext-1"
    file_name: str = "sample"
    metadata: dict[str, Any] = field(default_factory=lambda: {"title": "A sample"})


async def request_import(
    pg_dsn: str, *videos: Video, project: str = PROJECT
) -> tuple[str, list[Envelope]]:
    """Record a job as the API does; returns its id and the requests' envelopes."""
    job_id = uuid.uuid4().hex[:12]
    job = ImportRequested(
        job_id=job_id,
        project=project,
        system_name=SYSTEM,
        api_version="2025-03",
        video_count=len(videos),
    )
    new = [store.NewEvent(job, f"job-{job_id}", 0, job_id, project)]
    for index, video in enumerate(videos):
        event = VideoImportRequested(
            job_id=job_id,
            project=project,
            index=index,
            system_name=SYSTEM,
            external_id=video.external_id,
            url=video.url,
            file_name=video.file_name,
            metadata=video.metadata,
        )
        stream = f"job-{job_id}/video-{index}"
        new.append(store.NewEvent(event, stream, 0, job_id, project, causation_id=None))
    conn = await asyncpg.connect(pg_dsn)
    try:
        async with conn.transaction():
            await store.append(conn, new)
        recorded = await store.read_correlated(conn, job_id)
    finally:
        await conn.close()
    envelopes = [r.envelope() for r in recorded if isinstance(r.event, VideoImportRequested)]
    return job_id, envelopes


async def terminal_events(pg_dsn: str, job_id: str) -> list[store.RecordedEvent]:
    conn = await asyncpg.connect(pg_dsn)
    try:
        events = await store.read_correlated(conn, job_id)
    finally:
        await conn.close()
    return [e for e in events if e.stream_version == 1 and "/video-" in e.stream_id]


async def count_events(pg_dsn: str) -> int:
    conn = await asyncpg.connect(pg_dsn)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    return count


async def registry_row(pg_dsn: str, external_id: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT * FROM media WHERE project = $1 AND system_name = $2 AND external_id = $3",
            PROJECT,
            SYSTEM,
            external_id,
        )
    finally:
        await conn.close()
    return row


class S3Calls:
    """Counts the S3 operations a client sends and those that succeed.

    Hooks botocore's own event system, so it sees the real requests and the
    server's real answers.
    """

    def __init__(self, client: Any) -> None:
        self.sent: Counter[str] = Counter()
        self.succeeded: Counter[str] = Counter()
        client.meta.events.register("before-call.s3", self._before)
        client.meta.events.register("after-call.s3", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        self.sent[model.name] += 1

    def _after(self, model: Any, http_response: Any, **_: Any) -> None:
        if http_response.status_code < 300:
            self.succeeded[model.name] += 1


async def read_object(settings: Settings, key: str) -> tuple[bytes, dict[str, Any]]:
    async with s3_client(settings) as client:
        response = await client.get_object(Bucket=settings.s3_bucket, Key=key)
        async with response["Body"] as body:
            data = await body.read()
        head = await client.head_object(Bucket=settings.s3_bucket, Key=key)
    return data, dict(head)


async def object_keys(settings: Settings) -> list[str]:
    async with s3_client(settings) as client:
        listed = await client.list_objects_v2(Bucket=settings.s3_bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


async def publish(stack: StackInfo, settings: Settings, envelopes: list[Envelope]) -> None:
    """Send the requests to the videos topic as the relay does (created if missing)."""
    topic = bootstrap.videos_topic(settings)
    await ensure_topics(stack.kafka_bootstrap, settings.kafka_partitions, topics=[topic])
    producer = make_producer(stack.kafka_bootstrap, "test-ingester")
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(
                topic, key=envelope.data.partition_key().encode(), value=encode_envelope(envelope)
            )
    finally:
        await producer.stop()


@dataclass
class RunningIngester:
    task: asyncio.Task[None]
    stop: asyncio.Event

    def check_alive(self) -> None:
        """Fails the test if the ingester ended (with the error it ended with)."""
        if self.task.done():
            raise AssertionError(f"the ingester ended: {self.task.exception()!r}")


@asynccontextmanager
async def running_ingester(settings: Settings) -> AsyncIterator[RunningIngester]:
    """``service.run`` in this process until the block ends (then stopped, bounded)."""
    stop = asyncio.Event()
    running = RunningIngester(asyncio.create_task(service.run(settings, stop)), stop)
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(running.task, settings.shutdown_grace + 30)


async def queued_tasks(pg_dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT *, lease_until > now() AS running FROM ingest_tasks ORDER BY position"
        )
    finally:
        await conn.close()
    return rows


def metric(name: str, **labels: str) -> float:
    """The current value of one of this process's Prometheus samples (0 when absent)."""
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


@dataclass
class TricklingSource(VideoSource):
    """Also serves ``/trickle-big.mp4``: more than an upload part at once (so a
    multipart upload is under way), then a byte every 0.1 s until ``trickle_open``."""

    cut: Counter[str] = field(default_factory=Counter)
    """Responses the client closed before they were sent in full."""

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_get("/trickle-big.mp4", self._trickle_big)
        return app

    async def _trickle_big(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        self.active[request.path] += 1
        head = (self.fixtures / "sample.mp4").read_bytes()
        body = head + os.urandom(6 * MIB + 64 * 1024 - len(head))
        sent = 0
        try:
            response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[: 6 * MIB])
            sent = 6 * MIB
            while sent < len(body) and not self.trickle_open.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.trickle_open.wait(), 0.1)
                await response.write(body[sent : sent + 1])
                sent += 1
            await response.write(body[sent:])
            sent = len(body)
            await response.write_eof()
            return response
        finally:
            # The handler ends early (a failed write, or cancelled) when the client hangs up.
            if sent < len(body):
                self.cut[request.path] += 1
            self.active[request.path] -= 1


@asynccontextmanager
async def trickling_source(fixtures: Path) -> AsyncIterator[TricklingSource]:
    source = TricklingSource(fixtures=fixtures)
    server = TestServer(source.app(), host="127.0.0.1")
    await server.start_server()
    source.server = server
    try:
        yield source
    finally:
        source.trickle_open.set()
        await server.close()


@dataclass
class RunningWorkers:
    """The ingester's workers alone, on rows queued by ``queue`` (no Kafka consumer)."""

    ingester: Ingester
    workers: Workers
    task: asyncio.Task[None]

    def check_alive(self) -> None:
        if self.task.done():
            raise AssertionError(f"the workers ended: {self.task.exception()!r}")

    async def queue(self, pg_dsn: str, envelopes: list[Envelope]) -> None:
        """Queue requests as the Kafka intake does, and wake the workers."""
        conn = await asyncpg.connect(pg_dsn)
        try:
            for envelope in envelopes:
                assert await tasks.enqueue(conn, envelope)
        finally:
            await conn.close()
        self.workers.wake()


@asynccontextmanager
async def running_workers(settings: Settings) -> AsyncIterator[RunningWorkers]:
    """``Workers`` of a built ingester until the block ends (then stopped)."""
    stop = asyncio.Event()
    async with bootstrap.build_ingester(settings) as ingester:
        workers = Workers(ingester, settings, bootstrap.retry_policy(settings))
        running = RunningWorkers(ingester, workers, asyncio.create_task(workers.run(stop)))
        try:
            yield running
        finally:
            stop.set()
            await asyncio.wait_for(running.task, settings.shutdown_grace + 30)


async def cancel_job(
    conn: asyncpg.Connection, job_id: str, envelopes: list[Envelope]
) -> list[store.NewEvent]:
    """Record a cancel of ``job_id`` as the API's does (the caller's transaction)."""
    requests = [e.data for e in envelopes if isinstance(e.data, VideoImportRequested)]
    cancelled = JobCancelled(
        job_id=job_id, project=PROJECT, requested_by="api", cancelled=len(requests)
    )
    new = [store.NewEvent(cancelled, cancellation_stream(job_id), 0, job_id, PROJECT)]
    for request in requests:
        failed = VideoImportFailed(
            job_id=job_id,
            project=PROJECT,
            index=request.index,
            system_name=request.system_name,
            external_id=request.external_id,
            code="cancelled",
            reason="cancelled by the client",
        )
        new.append(store.NewEvent(failed, video_stream(job_id, request.index), 1, job_id, PROJECT))
    await store.append(conn, new)
    return new


async def ingest_progress(pg_dsn: str) -> list[asyncpg.Record]:
    """Each queued row's video index, phase and bytes, in index order."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT video_index, phase, bytes_done, bytes_total FROM ingest_tasks"
            " ORDER BY video_index"
        )
    finally:
        await conn.close()
    return rows
