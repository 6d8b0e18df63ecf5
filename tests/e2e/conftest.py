"""Every service as its own process against the real stack, driven over HTTP.

One set of service processes per module, on a fresh database, bucket and topic
prefix; a local HTTP server plays the client's video host and webhook receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from videoimport_devstack import StackInfo
from videoimport_devstack.services import ServiceSet
from videoimport_eventlog import schema
from videoimport_projects import (
    WRITE_SCOPE,
    ProjectConfig,
    create_project,
    create_token,
    parse_config,
)

from tests.conftest import drop_database, s3_client

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
CONTENT_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime"}
PROJECT_CONFIG = REPO / "deploy" / "demo-project.json"
OPEN_CONFIG = FIXTURES / "open-project.json"


@dataclass
class ClientSide:
    """The importing system: hosts the source videos and receives the webhook."""

    base_url: str = ""
    requests: dict[str, int] = field(default_factory=dict)
    webhooks: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    webhook_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


@dataclass(frozen=True)
class Deployment:
    api_url: str
    token: str
    other_token: str
    readonly_token: str
    stack: StackInfo
    topic_prefix: str
    services: ServiceSet
    open_token: str = ""

    def webhook_secret(self, project: str = "newsroom") -> str:
        """The project's current webhook secret, as an operator reads it: with
        ``videoimport webhook-secret show``."""
        return _cli(self.stack.postgres_dsn, "webhook-secret", "show", "--project", project)


def _cli(dsn: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "videoimport_projects.cli", *args, "--database-url", dsn],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
async def client_side() -> AsyncIterator[ClientSide]:
    side = ClientSide()

    async def sample(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        side.requests[name] = side.requests.get(name, 0) + 1
        path = FIXTURES / name
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.Response(body=path.read_bytes(), content_type=CONTENT_TYPES[path.suffix])

    async def slow_sample(request: web.Request) -> web.StreamResponse:
        # An origin that takes its time, so a batch is still running when a test
        # pulls the plug on a service.
        await asyncio.sleep(0.3)
        return await sample(request)

    async def html_as_mp4(request: web.Request) -> web.Response:
        return web.Response(
            body=b"<!doctype html><html><body>Not found</body></html>",
            headers={"Content-Type": "video/mp4"},
        )

    async def webhook(request: web.Request) -> web.Response:
        side.webhooks.append((dict(request.headers), await request.read()))
        side.webhook_arrived.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/samples/{name}", sample)
    app.router.add_get("/slow/{name}", slow_sample)
    app.router.add_get("/html-as-mp4", html_as_mp4)
    app.router.add_post("/webhooks", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    side.base_url = f"http://127.0.0.1:{port}"
    yield side
    await runner.cleanup()


async def _projects_and_tokens(dsn: str) -> dict[str, str]:
    """The three projects and their tokens, made with the functions behind
    ``videoimport project create`` and ``token create`` (whose command lines the
    integration tests run): seven CLI processes cost more CPU than the whole test."""
    conn = await asyncpg.connect(dsn)
    try:
        await schema.migrate(conn)
        await create_project(conn, "newsroom", parse_config(PROJECT_CONFIG.read_bytes()))
        await create_project(conn, "elsewhere", ProjectConfig())
        await create_project(conn, "open", parse_config(OPEN_CONFIG.read_bytes()))
        return {
            "newsroom": await create_token(conn, "newsroom", [WRITE_SCOPE]),
            "elsewhere": await create_token(conn, "elsewhere", [WRITE_SCOPE]),
            "newsroom:read": await create_token(conn, "newsroom", ["public-api:read"]),
            "open": await create_token(conn, "open", [WRITE_SCOPE]),
        }
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def deploy(
    stack: StackInfo, extra_env: dict[str, str] | None = None
) -> AsyncIterator[Deployment]:
    """Every service on a fresh database, bucket and topic prefix, with projects
    ``newsroom`` (the demo config), ``elsewhere`` (no metadata) and ``open`` (any
    metadata); ``extra_env`` overrides service settings."""
    database = "e2e_" + secrets.token_hex(6)
    bucket = "e2e" + secrets.token_hex(6)
    admin = await asyncpg.connect(stack.postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    dsn = stack.postgres_dsn.rpartition("/")[0] + "/" + database
    async with s3_client(stack) as s3:
        await s3.create_bucket(Bucket=bucket)
    own_stack = dataclasses.replace(stack, postgres_dsn=dsn, s3_bucket=bucket)
    prefix = f"e2e{secrets.token_hex(4)}."
    log_dir = Path(tempfile.mkdtemp(prefix="videoimport-e2e-"))
    services = ServiceSet(
        own_stack,
        log_dir,
        topic_prefix=prefix,
        extra_env=extra_env or {},
    )
    # Started from this (the main) thread: the children are tied to the thread that
    # spawns them (PR_SET_PDEATHSIG), and a pool thread may go away before they should.
    services.start()
    try:
        tokens = await _projects_and_tokens(dsn)
        yield Deployment(
            api_url=services.api_url,
            token=tokens["newsroom"],
            other_token=tokens["elsewhere"],
            readonly_token=tokens["newsroom:read"],
            stack=own_stack,
            topic_prefix=prefix,
            services=services,
            open_token=tokens["open"],
        )
        assert services.dead() == {}, "a service died during the tests"
    finally:
        services.stop()
        # The logs' tails are in any failure message already; the files would pile up.
        shutil.rmtree(log_dir, ignore_errors=True)
        admin = await asyncpg.connect(stack.postgres_dsn)
        await drop_database(admin, database)
        await admin.close()


@pytest.fixture(scope="module")
async def deployment(stack: StackInfo) -> AsyncIterator[Deployment]:
    async with deploy(stack) as deployed:
        yield deployed


def service_logs(deployment: Deployment) -> dict[str, Any]:
    return {name: child.tail(30) for name, child in deployment.services.children.items()}
