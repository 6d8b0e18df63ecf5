"""A whole deployment to break: its own local stack, every service, one project.

The stage owns its servers (PostgreSQL, Kafka, the S3 server) in a temporary
directory, so scenarios may kill and restart them without touching anyone else's
stack. Services are started and killed from the thread running the event loop
(the main thread): a child is tied to the thread that spawned it.

Settings a real deployment would not use, and why:
- the notifier's retry schedule is compressed (the default's ~3.4 days between the
  first and the last attempt become ~30 s), so "a receiver down for three days"
  fits in a run;
- the ingester's lease is 20 s rather than 60 s, so work a killed ingester held
  is taken over sooner and a kill loop drains in minutes;
- multipart parts of 5 MiB (S3's minimum), so the larger videos of the workload
  are multipart uploads when a kill lands;
- the ingester's janitor looks every 5 s (not 60 s) for uploads a killed worker
  left behind, and takes those older than 10 s (not an hour) whose lease has
  run out, so a run need not wait an hour to see them cleaned up.

``open_stage(settings=...)`` overrides these (a shorter run's, see the e2e test).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
from videoimport_devstack import LocalStack, StackInfo
from videoimport_devstack.services import SERVICES, ServiceSet
from videoimport_eventlog import schema
from videoimport_projects import WRITE_SCOPE, create_project, create_token, parse_config

from .client_side import ClientSide

REPO = Path(__file__).resolve().parent.parent
PROJECT = "reliability"
PROJECT_CONFIG = REPO / "tests" / "fixtures" / "open-project.json"
WEBHOOK_TIME_SCALE = 1e-4
"""Real seconds per scheduled second of the notifier's retry schedule."""
SERVERS = ("postgres", "kafka", "s3")
WATCHERS = {
    "postgres": ("api", "relay", "projector", "ingester", "notifier"),
    "kafka": ("relay", "ingester", "notifier"),
    "s3": ("ingester",),
}
"""The services whose readiness checks each server."""

STAGE_SETTINGS = {
    "VIDEOIMPORT_WEBHOOK_RETRY_BASE": str(10.0 * WEBHOOK_TIME_SCALE),
    "VIDEOIMPORT_WEBHOOK_RETRY_MAX_DELAY": str(43_200.0 * WEBHOOK_TIME_SCALE),
    "VIDEOIMPORT_SCHEDULER_POLL_INTERVAL": "0.2",
    "VIDEOIMPORT_INGESTER_LEASE_SECONDS": "20",
    "VIDEOIMPORT_S3_PART_SIZE": str(5 * 1024 * 1024),
    "VIDEOIMPORT_UNSETTLED_UPLOAD_GRACE": "10",
    "VIDEOIMPORT_SUPERSEDED_SWEEP_INTERVAL": "5",
    "VIDEOIMPORT_LOG_LEVEL": "WARNING",
}


@dataclass
class Stage:
    work_dir: Path
    stack: LocalStack
    info: StackInfo
    services: ServiceSet
    client: ClientSide
    token: str

    @property
    def api_url(self) -> str:
        return self.services.api_url

    @property
    def dsn(self) -> str:
        return self.info.postgres_dsn

    @property
    def s3_dir(self) -> Path:
        return self.stack.s3.objects_dir

    # ------------------------------------------------------------- services

    def kill_service(self, name: str) -> None:
        """SIGKILL the service's whole process group: no cleanup runs."""
        self.services.crash(name)

    def start_service(self, name: str) -> None:
        self.services.start_one(name)

    async def in_flight(self, posts: int = 0) -> set[str]:
        """What is under way right now, seen from outside: the moment a kill lands in."""
        phases = {
            name
            for name, count in (
                ("import POST", posts),
                ("download", self.client.downloads_in_flight),
                ("webhook POST", self.client.webhooks_in_flight),
            )
            if count
        }
        try:
            conn = await asyncio.wait_for(asyncpg.connect(self.dsn), 2.0)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return phases
        try:
            row = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM unsettled_uploads) AS uploads,"
                " coalesce((SELECT max(position) FROM events), 0) AS head,"
                " coalesce((SELECT position FROM tracking WHERE name = 'relay'), 0) AS relay,"
                " coalesce((SELECT position FROM tracking WHERE name = 'projector'), 0)"
                " AS projector"
            )
        finally:
            await conn.close()
        if row is not None:
            phases.update(
                name
                for name, busy in (
                    ("upload", row["uploads"] > 0),
                    ("publish", row["head"] > row["relay"]),
                    ("projection", row["head"] > row["projector"]),
                )
                if busy
            )
        return phases

    async def readiness(self, name: str) -> tuple[int, dict[str, str]]:
        """``name``'s ``/health/ready``: (HTTP status or 0 if no answer, its checks)."""
        url = f"{self.services.health_url(name)}/health/ready"
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(url, timeout=aiohttp.ClientTimeout(total=6)) as response,
            ):
                body = await response.json(content_type=None)
                return response.status, dict(body.get("checks", {}))
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return 0, {}

    async def wait_ready(self, name: str, within: float = 90.0) -> None:
        deadline = time.monotonic() + within
        while (await self.readiness(name))[0] != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready within {within:.0f} s")
            await asyncio.sleep(0.2)

    async def unreported_outage(self, server: str, within: float = 15.0) -> list[str]:
        """The services that check ``server`` but did not report it down in time."""
        deadline = time.monotonic() + within
        pending = set(WATCHERS[server])
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                if (await self.readiness(name))[1].get(server) == "down":
                    pending.discard(name)
            await asyncio.sleep(0.2)
        return sorted(pending)

    # ------------------------------------------------------------- servers

    def kill_server(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a server and wait for it to exit.

        PostgreSQL's postmaster gets ``sig`` alone (SIGINT: fast shutdown, SIGQUIT:
        immediate shutdown, SIGKILL: a crash); Kafka and the S3 server get it as a
        group, as from a power cut.
        """
        child = self.stack.children()[name]
        if name == "postgres" and sig != signal.SIGKILL:
            os.kill(child.pid, sig)
        else:
            os.killpg(child.pid, sig)
        child.popen.wait(timeout=60)

    async def restart_server(self, name: str) -> None:
        """Start the server again on the same port and data; returns once it serves."""
        await asyncio.to_thread(self.stack.restart, name)

    def dead(self) -> dict[str, int]:
        """Services and servers that exited without being asked to."""
        found = {f"service {n}": c for n, c in self.services.dead().items()}
        found.update({f"server {n}": c for n, c in self.stack.dead_children().items()})
        return found


async def _project_and_token(dsn: str) -> str:
    """The project and a token for it, made with the functions behind ``videoimport
    project create`` and ``token create`` (two CLI processes would cost more)."""
    conn = await asyncpg.connect(dsn)
    try:
        await schema.migrate(conn)
        await create_project(conn, PROJECT, parse_config(PROJECT_CONFIG.read_bytes()))
        return await create_token(conn, PROJECT, [WRITE_SCOPE])
    finally:
        await conn.close()


async def open_stage(
    work_dir: Path | None = None, settings: Mapping[str, str] | None = None
) -> Stage:
    """Start servers, services, origin and receiver; create the project and a token.

    ``settings`` (``VIDEOIMPORT_*`` variables) win over ``STAGE_SETTINGS``."""
    began = time.monotonic()
    work = work_dir or Path(tempfile.mkdtemp(prefix="videoimport-reliability-"))
    stack = LocalStack(work / "stack")
    await asyncio.to_thread(stack.install)
    info = await asyncio.to_thread(stack.start)
    client = ClientSide()
    await client.start()
    services = ServiceSet(info, work / "logs", extra_env={**STAGE_SETTINGS, **(settings or {})})
    try:
        services.start()  # from the loop's thread, see the module docstring
        token = await _project_and_token(info.postgres_dsn)
    except BaseException:
        services.stop()
        await client.stop()
        stack.stop()
        raise
    print(f"stage ready in {time.monotonic() - began:.0f} s (logs: {work / 'logs'})", flush=True)
    return Stage(work, stack, info, services, client, token)


async def close_stage(stage: Stage, keep: bool = False) -> None:
    stage.services.stop(timeout=20)
    await stage.client.stop()
    await asyncio.to_thread(stage.stack.stop)
    if not keep:
        shutil.rmtree(stage.work_dir, ignore_errors=True)


__all__ = ["SERVERS", "SERVICES", "Stage", "close_stage", "open_stage"]
