"""Liveness and readiness of a worker: a small HTTP listener with active probes.

Every worker (relay, projector, ingester, notifier) serves, on a listener of its
own (``VIDEOIMPORT_HEALTH_PORT``; 0: none):

- ``GET /health/live``: ``200 {"status": "ok"}`` whenever the event loop answers;
  an outage of a server never makes a worker "dead" (it reconnects by itself,
  so an orchestrator must not restart it for that);
- ``GET /health/ready``: every probe runs now, concurrently, each bounded by a
  timeout; ``200 {"status": "ok", "checks": {"postgres": "up", …}}`` or
  ``503 {"status": "unavailable", "checks": {"postgres": "down", …}}``.

The body never carries error text (it may name hosts, users, databases): why a
check is down goes to the log, once when it goes down and once when it is back.
Probes are a mapping name -> async callable that raises when the server is not
usable, so this module knows nothing of any one service; ``Readiness`` is shared
with the API, which serves the same body on its own port.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import structlog
from aiohttp import web
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError

from videoimport_eventlog.faults import describe

log = structlog.get_logger(__name__)

Probe = Callable[[], Awaitable[object]]
"""Returns when the server answers; raises (or hangs) when it does not."""

PROBE_TIMEOUT = 2.0
"""Seconds one probe may take before its check counts as down (an orchestrator's
probe timeout must be above it)."""
SHUTDOWN_TIMEOUT = 1.0
"""Seconds a stopping listener gives a probe request still in flight."""
UP, DOWN = "up", "down"
KAFKA_DEFAULT_PORT = 9092
NO_STORE = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one readiness request."""

    ready: bool
    checks: dict[str, str]

    @property
    def status_code(self) -> int:
        return 200 if self.ready else 503

    def body(self) -> dict[str, Any]:
        return {"status": "ok" if self.ready else "unavailable", "checks": dict(self.checks)}


def decide(checks: Mapping[str, str], required: Collection[str]) -> Verdict:
    """Ready when every required check is up (a required check with no result is down)."""
    ready = all(checks.get(name) == UP for name in required)
    return Verdict(ready=ready, checks=dict(checks))


class Readiness:
    """Runs the probes on every request and logs each check's changes of state."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        required: Collection[str] | None = None,
        timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self._probes = dict(probes)
        self._required = frozenset(self._probes if required is None else required)
        unknown = self._required - self._probes.keys()
        if unknown:
            raise ValueError(f"required checks without a probe: {sorted(unknown)}")
        self._timeout = timeout
        self._states: dict[str, str] = {}
        self._abandoned: set[asyncio.Future[object]] = set()
        """Probes that ignored their cancellation, referenced until they end."""

    async def check(self) -> Verdict:
        names = list(self._probes)
        states = await asyncio.gather(*(self._run(name) for name in names))
        return decide(dict(zip(names, states, strict=True)), self._required)

    async def _run(self, name: str) -> str:
        # asyncio.wait (not asyncio.timeout): the answer never waits for a probe
        # that does not honour its cancellation, so readiness is strictly bounded.
        task = asyncio.ensure_future(self._probes[name]())
        try:
            done, _ = await asyncio.wait({task}, timeout=self._timeout)
        finally:
            if not task.done():
                task.cancel()
                self._abandoned.add(task)
                task.add_done_callback(self._forget)
        if not done:
            return self._record(name, DOWN, f"no answer within {self._timeout:g} s")
        if task.cancelled():
            return self._record(name, DOWN, "cancelled")
        failure = task.exception()
        if failure is not None:
            return self._record(name, DOWN, describe(failure))
        return self._record(name, UP, None)

    def _forget(self, task: asyncio.Future[object]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" noise

    def _record(self, name: str, state: str, error: str | None) -> str:
        previous = self._states.get(name)
        self._states[name] = state
        if state == previous:
            return state
        if state == DOWN:
            log.warning("readiness check down", check=name, error=error)
        elif previous == DOWN:
            log.info("readiness check up again", check=name)
        return state


class HealthServer:
    """``/health/live`` and ``/health/ready`` on ``host:port`` (port 0: any free port)."""

    def __init__(self, readiness: Readiness, host: str, port: int) -> None:
        self._readiness = readiness
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health/live", self._live)
        app.router.add_get("/health/ready", self._ready)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("health listener started", host=self._host, port=self.port)

    @property
    def port(self) -> int:
        """The bound port (the one the kernel picked when asked for 0)."""
        if self._runner is None or not self._runner.addresses:
            return self._port
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _live(self, request: web.Request) -> web.Response:
        return _json(200, {"status": "ok"})

    async def _ready(self, request: web.Request) -> web.Response:
        verdict = await self._readiness.check()
        return _json(verdict.status_code, verdict.body())


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        body=msgspec.json.encode(body),
        content_type="application/json",
        headers=NO_STORE,
    )


@contextlib.asynccontextmanager
async def serving(
    host: str,
    port: int,
    probes: Mapping[str, Probe],
    *,
    required: Collection[str] | None = None,
) -> AsyncIterator[HealthServer | None]:
    """The health listener for the duration of the block; ``port`` 0 switches it off.

    A port that cannot be bound fails the start, as a metrics port does: a
    worker nobody can probe must not look healthy by being silent.
    """
    if not port:
        yield None
        return
    server = HealthServer(Readiness(probes, required=required), host, port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class PostgresProbe:
    """``SELECT 1``: on a connection of the service's pool once it has one (what
    the service itself uses; a closed connection is replaced by the pool), before
    that on a connection of its own, closed at once."""

    def __init__(self, dsn: str, pool: asyncpg.Pool | None = None) -> None:
        self._dsn = dsn
        self._pool = pool

    def use(self, pool: asyncpg.Pool | None) -> None:
        self._pool = pool

    async def __call__(self) -> None:
        if self._pool is not None:
            async with self._pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
            return
        conn = await asyncpg.connect(self._dsn, timeout=PROBE_TIMEOUT)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close(timeout=PROBE_TIMEOUT)


def bootstrap_servers(bootstrap: str) -> list[tuple[str, int]]:
    """``host:port,[v6]:port,host`` as (host, port) pairs, as Kafka clients read it."""
    servers = []
    for item in bootstrap.split(","):
        entry = item.strip()
        if not entry:
            continue
        host, port = entry, KAFKA_DEFAULT_PORT
        if entry.startswith("["):  # [::1]:9092
            host, _, rest = entry[1:].partition("]")
            if rest.startswith(":"):
                port = int(rest[1:])
        elif entry.count(":") == 1:
            host, _, number = entry.partition(":")
            port = int(number)
        servers.append((host, port))
    if not servers:
        raise ValueError("no Kafka bootstrap server given")
    return servers


class KafkaProbe:
    """A connection to a bootstrap server that answers Kafka's ApiVersions request
    (what every client does first), closed at once; up when any server answers.

    A plain TCP connect would call a broker that accepts but does not serve "up";
    a full client would also fetch metadata and log every failed attempt itself.
    """

    def __init__(self, bootstrap: str, client_id: str = "videoimport-health") -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id

    async def __call__(self) -> None:
        # Parsed here, not at construction: a setting the service itself would
        # trip over later makes the check "down" (logged) rather than the start fail.
        failure: BaseException | None = None
        for host, port in bootstrap_servers(self._bootstrap):
            try:
                conn = await create_conn(
                    host,
                    port,
                    client_id=self._client_id,
                    request_timeout_ms=int(PROBE_TIMEOUT * 1000),
                )
            except (OSError, KafkaError, TimeoutError) as exc:
                failure = exc
                continue
            conn.close()
            return
        raise failure if failure is not None else KafkaError("no bootstrap server answered")
