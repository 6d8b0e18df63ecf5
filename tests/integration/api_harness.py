"""Runs the API in-process on a real socket (uvicorn) against a real database.

Built by the service's own ``bootstrap.dependencies`` so migrations, the pool and
the S3 client are wired exactly as in production.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import uvicorn
from videoimport_api.app import create_app
from videoimport_api.bootstrap import SignalFreeServer, dependencies
from videoimport_api.handlers import Dependencies
from videoimport_api.settings import ApiSettings
from videoimport_projects import WRITE_SCOPE, ProjectConfig, create_project, create_token

VERSION = "2025-03"
IMPORT_URL = f"/api/{VERSION}/import/videos"
STATUS_URL = f"/api/{VERSION}/import/videos/status"
STARTUP_SECONDS = 15.0

# The shared read-model schema the projector creates (see the projector's DDL).
STATUS_DDL = """
CREATE TABLE IF NOT EXISTS status_jobs (
    job_id text PRIMARY KEY, project text NOT NULL, system_name text NOT NULL,
    state text NOT NULL, video_count int NOT NULL, started_at timestamptz NOT NULL,
    finished_at timestamptz, success int NOT NULL DEFAULT 0, skipped int NOT NULL DEFAULT 0,
    failed int NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS status_videos (
    job_id text NOT NULL, idx int NOT NULL, system_name text NOT NULL, external_id text NOT NULL,
    state text, reason text, code text, media_id text, mime_type text, storage_key text,
    outcome text, PRIMARY KEY (job_id, idx)
);
"""


@dataclass(frozen=True)
class RunningApi:
    base_url: str
    settings: ApiSettings
    deps: Dependencies
    http: httpx.AsyncClient


@asynccontextmanager
async def running_api(
    database_url: str,
    wrap: Callable[[Dependencies], Dependencies] | None = None,
    **overrides: Any,
) -> AsyncIterator[RunningApi]:
    """The API on a free port; ``wrap`` may swap dependencies (say, a spy) before serving."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = ApiSettings(
        database_url=database_url,
        host="127.0.0.1",
        port=port,
        **{"api_versions": f"{VERSION},2024-01", "retired_api_versions": "2024-01", **overrides},
    )
    try:
        async with dependencies(settings) as built:
            deps = wrap(built) if wrap else built
            config = uvicorn.Config(
                create_app(deps), log_config=None, access_log=False, lifespan="on"
            )
            server = SignalFreeServer(config)
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            deadline = time.monotonic() + STARTUP_SECONDS
            while not server.started:
                if serving.done():
                    serving.result()
                    raise RuntimeError("the API stopped during startup")
                if time.monotonic() > deadline:
                    raise TimeoutError("the API did not start")
                await asyncio.sleep(0.01)
            base_url = f"http://127.0.0.1:{port}"
            try:
                async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
                    yield RunningApi(base_url=base_url, settings=settings, deps=deps, http=http)
            finally:
                server.should_exit = True
                await serving
    finally:
        sock.close()


async def project_with_token(
    database_url: str,
    project: str,
    scopes: list[str] | None = None,
    config: ProjectConfig | None = None,
) -> str:
    """Creates the project if needed; returns a fresh token for it."""
    conn = await asyncpg.connect(database_url)
    try:
        exists = await conn.fetchval("SELECT true FROM projects WHERE name = $1", project)
        if not exists:
            await create_project(conn, project, config or ProjectConfig())
        return await create_token(conn, project, scopes or [WRITE_SCOPE])
    finally:
        await conn.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def batch(count: int = 2, system: str = "archive", **top: Any) -> dict[str, Any]:
    return {
        "systemName": system,
        "videos": [
            {
                "url": f"https://videos.example.com/{i}.mp4",
                "id": f"ext-{i}",
                "fileName": f"Video {i}",
                "metadata": {"title": f"Title {i}"},
            }
            for i in range(count)
        ],
        **top,
    }


def assert_error_shape(body: Any, status: int) -> None:
    assert isinstance(body, dict)
    assert set(body) == {"status", "error", "error_details"}, body
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["error_details"], list)
    for detail in body["error_details"]:
        assert set(detail) == {"field", "reason"}, detail


def signed_url(api: RunningApi, key: str, now: float | None = None) -> str:
    """The link a status would give for ``key`` (minted at ``now``, default: now)."""
    return api.deps.media_links.url(key, time.time() if now is None else now)


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def raw_request(api: RunningApi, target: str, method: str = "GET") -> RawResponse:
    """One request with ``target`` sent byte for byte: HTTP clients normalise ``..`` away."""
    host, _, port = api.base_url.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        )
        data = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(status=int(status_line.split()[1]), headers=headers, body=body)


# Job control (listing, paged status, retry, cancel).

JOBS_URL = f"{IMPORT_URL}/jobs"
RETRY_URL = f"{IMPORT_URL}/retry"
CANCEL_URL = f"{IMPORT_URL}/cancel"


async def append_to_log(database_url: str, events: list[Any]) -> None:
    """Append ``store.NewEvent``s in one transaction, as the service that owns them would."""
    from videoimport_eventlog import store

    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await store.append(conn, events)
    finally:
        await conn.close()


async def submit_batch(api: RunningApi, token: str, body: dict[str, Any]) -> str:
    response = await api.http.post(IMPORT_URL, json=body, headers=auth(token))
    assert response.status_code == 200, response.text
    job_id: str = response.json()["id"]
    return job_id
