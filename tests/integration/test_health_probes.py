"""Worker health against real servers: every worker answers, readiness follows an
outage down and back up without a restart, and nothing hangs on a silent server.

The session's PostgreSQL is shared, so it is never stopped: an outage is a TCP
proxy in front of it that this test cuts (listener closed, every forwarded
connection reset) and resumes on the same port, exactly what a client of a
restarting server sees.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec
import pytest
from structlog.testing import capture_logs
from videoimport_devstack import StackInfo
from videoimport_devstack.services import WORKERS, ServiceSet
from videoimport_eventlog import store
from videoimport_eventlog.health import HealthServer, KafkaProbe, PostgresProbe, Readiness
from videoimport_ingester import service as ingester_service
from videoimport_notifier.service import Notifier
from videoimport_projector.service import Projector
from videoimport_projector.settings import ProjectorSettings
from videoimport_relay.service import Relay
from videoimport_relay.settings import RelaySettings

from tests.polling import eventually
from tests.requests import requested_job

from . import ingester_harness, notifier_harness
from .test_api_ops_http import free_port

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=26)]
DEADLINE = 30.0
Run = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class TcpProxy:
    """``127.0.0.1:port`` forwarding to a real server, until ``cut`` and after ``resume``."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    def dsn(self, dsn: str) -> str:
        """``dsn`` with its host and port replaced by the proxy's."""
        parts = urlsplit(dsn)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@127.0.0.1:{self.port}" if user else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def resume(self) -> None:
        self._server = await asyncio.start_server(
            self._forward, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()  # a reset, as from a server that went away
        await self._server.wait_closed()
        self._server = None

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}
        pipes = [
            asyncio.ensure_future(_pipe(reader, up_writer)),
            asyncio.ensure_future(_pipe(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            for end in (writer, up_writer):
                end.transport.abort()
                self._open.discard(end)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


@asynccontextmanager
async def proxy_to(dsn: str) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(dsn)
    await proxy.resume()
    try:
        yield proxy
    finally:
        await proxy.cut()


@asynccontextmanager
async def running(run: Run) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)


async def get(url: str) -> tuple[int, Any]:
    """(status, JSON body); (0, None) while nothing listens."""
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(url)
    except httpx.TransportError:
        return 0, None
    return response.status_code, response.json()


async def answers(url: str, status: int, body: dict[str, Any], task: asyncio.Task[None]) -> None:
    async def check() -> bool:
        if task.done():
            task.result()
            raise AssertionError("the worker ended")
        return await get(url) == (status, body)

    await eventually(check, f"{url} to answer {status} {body}", DEADLINE)


def ready(**checks: str) -> dict[str, Any]:
    up = all(state == "up" for state in checks.values())
    return {"status": "ok" if up else "unavailable", "checks": checks}


CHECKS = {
    "relay": ("postgres", "kafka"),
    "projector": ("postgres",),
    "ingester": ("postgres", "kafka", "s3"),
    "notifier": ("postgres", "kafka"),
}
"""What each worker's readiness checks."""
ALL_UP = {name: ready(**dict.fromkeys(checks, "up")) for name, checks in CHECKS.items()}


def worker(name: str, stack: StackInfo, dsn: str, prefix: str, bucket: str, port: int) -> Run:
    """How ``name`` runs in this process with its health listener on ``port``."""
    if name == "relay":
        relay = RelaySettings(
            database_url=dsn, kafka_bootstrap=stack.kafka_bootstrap, topic_prefix=prefix
        )
        return Relay(_listening(relay, port)).run
    if name == "projector":
        return projector(dsn, port).run
    if name == "notifier":
        notifier = notifier_harness.settings_for(stack, dsn, prefix, retry_delay=0.2)
        return Notifier(_listening(notifier, port)).run
    settings = _listening(ingester_harness.settings_for(stack, dsn, bucket, prefix), port)
    return lambda stop: ingester_service.run(settings, stop)


def projector(dsn: str, port: int) -> Projector:
    settings = ProjectorSettings(database_url=dsn, retry_delay=0.2, poll_interval=0.2)
    return Projector(_listening(settings, port))


S = TypeVar("S", bound=msgspec.Struct)


def _listening(settings: S, port: int) -> S:
    return msgspec.structs.replace(settings, host="127.0.0.1", health_port=port)


@pytest.mark.parametrize("name", WORKERS)
async def test_every_worker_reports_its_real_servers_up(
    name: str, stack: StackInfo, pg_dsn: str, topic_prefix: str, s3_bucket: str
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/health"
    async with running(worker(name, stack, pg_dsn, topic_prefix, s3_bucket, port)) as task:
        await answers(f"{base}/ready", 200, ALL_UP[name], task)
        assert await get(f"{base}/live") == (200, {"status": "ok"})
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{base}/ready")
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"].startswith("application/json")
    # Stopping the worker closes its listener too.
    assert await get(f"{base}/live") == (0, None)


async def test_readiness_follows_a_database_outage_and_the_projector_carries_on(
    pg_dsn: str,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/health"
    async with proxy_to(pg_dsn) as proxy:
        following = projector(proxy.dsn(pg_dsn), port)
        with capture_logs() as logs:
            async with running(following.run) as task:
                await answers(f"{base}/ready", 200, ready(postgres="up"), task)
                # Following the log (a job projected): the outage hits a running loop.
                await asyncio.wait_for(following.prepared.wait(), DEADLINE)
                await project_a_job(pg_dsn)
                await proxy.cut()
                await answers(f"{base}/ready", 503, ready(postgres="down"), task)
                # Alive: an orchestrator must not restart a worker for an outage.
                assert await get(f"{base}/live") == (200, {"status": "ok"})
                await proxy.resume()
                await answers(f"{base}/ready", 200, ready(postgres="up"), task)
                # The same process reconnected by itself and projects again.
                await project_a_job(pg_dsn)
                assert not task.done()
    changes = [entry["event"] for entry in logs if entry.get("check") == "postgres"]
    assert changes == ["readiness check down", "readiness check up again"]


async def test_the_notifiers_pool_probe_sees_the_outage_while_kafka_stays_up(
    stack: StackInfo, pg_dsn: str, topic_prefix: str
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/health"
    async with proxy_to(pg_dsn) as proxy:
        settings = notifier_harness.settings_for(stack, proxy.dsn(pg_dsn), topic_prefix)
        notifier = Notifier(_listening(settings, port))
        # Captured, not rendered: in this process the console renderer's rich
        # traceback of every failed attempt would hold the shared event loop for seconds.
        with capture_logs() as logs:
            async with running(notifier.run) as task:
                await answers(f"{base}/ready", 200, ready(postgres="up", kafka="up"), task)
                # Consuming, so the probe is on the notifier's pool when the outage begins.
                await asyncio.wait_for(notifier.prepared.wait(), DEADLINE)
                await proxy.cut()
                await answers(f"{base}/ready", 503, ready(postgres="down", kafka="up"), task)
                await proxy.resume()
                await answers(f"{base}/ready", 200, ready(postgres="up", kafka="up"), task)
    changes = [entry["event"] for entry in logs if entry.get("check") == "postgres"]
    assert changes == ["readiness check down", "readiness check up again"]


async def test_closed_and_silent_servers_are_down_within_the_timeout(
    stack: StackInfo, pg_dsn: str
) -> None:
    silent = await asyncio.start_server(_never_answer, "127.0.0.1", 0)
    silent_port = silent.sockets[0].getsockname()[1]
    closed = free_port()
    readiness = Readiness(
        {
            "postgres": PostgresProbe(pg_dsn),
            "kafka": KafkaProbe(stack.kafka_bootstrap),
            "closed_postgres": PostgresProbe(f"postgresql://probe@127.0.0.1:{closed}/none"),
            "silent_kafka": KafkaProbe(f"127.0.0.1:{silent_port}"),
        },
        required={"postgres", "kafka"},
        timeout=0.5,
    )
    server = HealthServer(readiness, "127.0.0.1", 0)
    await server.start()
    try:
        began = time.monotonic()
        status, body = await get(f"http://127.0.0.1:{server.port}/health/ready")
        assert time.monotonic() - began < 3
        checks = {"postgres": "up", "kafka": "up", "closed_postgres": "down"}
        assert (status, body) == (
            200,
            {"status": "ok", "checks": {**checks, "silent_kafka": "down"}},
        )
    finally:
        await server.stop()
        silent.close()
        await silent.wait_closed()


async def _never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the client gives up
    writer.close()


async def test_every_worker_process_serves_its_health_url(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, s3_bucket: str, tmp_path: Path
) -> None:
    services = ServiceSet(
        stack,
        tmp_path / "logs",
        topic_prefix=topic_prefix,
        bucket=s3_bucket,
        extra_env={"VIDEOIMPORT_DATABASE_URL": pg_dsn},
    )
    try:
        for name in WORKERS:
            services.start_one(name)
        for name in WORKERS:

            async def check(name: str = name) -> bool:
                dead = services.dead()
                assert not dead, {n: services.children[n].tail() for n in dead}
                url = f"{services.health_url(name)}/health/ready"
                return await get(url) == (200, ALL_UP[name])

            await eventually(check, f"{name}'s readiness", 60)
    finally:
        services.stop()
    assert len({services.health_url(name) for name in WORKERS}) == len(WORKERS)


def test_health_urls_follow_the_environment_the_services_get(
    stack: StackInfo, tmp_path: Path
) -> None:
    services = ServiceSet(stack, tmp_path)
    ports = {name: services.environment(name)["VIDEOIMPORT_HEALTH_PORT"] for name in WORKERS}
    assert len(set(ports.values())) == len(WORKERS)
    assert str(services.api_port) not in ports.values()
    assert services.health_url("relay") == f"http://127.0.0.1:{ports['relay']}"
    assert services.health_url("api") == services.api_url
    assert "VIDEOIMPORT_HEALTH_PORT" not in services.environment("api")
    # An operator's setting wins, and the URL says where the service really listens.
    pinned = ServiceSet(stack, tmp_path, extra_env={"VIDEOIMPORT_HEALTH_PORT": "0"})
    with pytest.raises(ValueError, match="no health listener"):
        pinned.health_url("relay")


async def project_a_job(dsn: str) -> None:
    """Append a job's request and wait until the projector has its status row."""
    job_id = f"job{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await store.append(conn, requested_job(job_id, 1))

        async def projected() -> bool:
            row = await conn.fetchval("SELECT 1 FROM status_jobs WHERE job_id = $1", job_id)
            return bool(row)

        await eventually(projected, f"the status of {job_id}", DEADLINE)
    finally:
        await conn.close()
