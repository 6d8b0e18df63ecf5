"""A client controls its jobs through every service: cancels one whose download hangs,
retries the failed video of another, and lists both.

Cancel: the API records the failures, the projector completes the job, the notifier
sends the webhook, the videos already done keep their results. Retry: a new job with
just the failed video, the same webhook and context, ``retry_of`` in the log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from videoimport_eventlog import store
from videoimport_events import ImportRequested, JobCancelled, JobCompleted

from tests.polling import eventually

from .conftest import FIXTURES, ClientSide, Deployment, service_logs
from .test_import_flow import API, auth, post_batch, video, wait_finished

pytestmark = pytest.mark.e2e

SAMPLE = (FIXTURES / "sample.mp4").read_bytes()
DECLARED_BYTES = 40 * len(SAMPLE)
"""What the hanging origin announces: far more than it ever sends."""


@dataclass
class Origin:
    """Video sources on 127.0.0.1 that misbehave on purpose."""

    base_url: str = ""
    requested: dict[str, int] = field(default_factory=dict)
    healed: bool = False
    """``/flaky/…`` answers 404 until set."""
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


@pytest.fixture(scope="module")
async def origin() -> AsyncIterator[Origin]:
    side = Origin()

    async def hanging(request: web.Request) -> web.StreamResponse:
        # A real video's first bytes, then nothing: a download that never ends by itself.
        side.requested[request.path] = side.requested.get(request.path, 0) + 1
        response = web.StreamResponse(
            headers={"Content-Type": "video/mp4", "Content-Length": str(DECLARED_BYTES)}
        )
        await response.prepare(request)
        await response.write(SAMPLE)
        await side.release.wait()
        return response

    async def flaky(request: web.Request) -> web.Response:
        side.requested[request.path] = side.requested.get(request.path, 0) + 1
        if not side.healed:
            raise web.HTTPNotFound()
        return web.Response(body=SAMPLE, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/hanging/{name}", hanging)
    app.router.add_get("/flaky/{name}", flaky)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    side.base_url = f"http://127.0.0.1:{port}"
    yield side
    side.release.set()
    await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    deployment: Deployment,
    method: str,
    path: str,
    expect: int = 200,
    **params: Any,
) -> dict[str, Any]:
    async with http.request(
        method, f"{deployment.api_url}{API}{path}", params=params, headers=auth(deployment.token)
    ) as response:
        assert response.status == expect, await response.text()
        document: dict[str, Any] = await response.json()
    return document


async def webhook_of(client_side: ClientSide, deployment: Deployment, job_id: str) -> Any:
    def posted() -> list[Any]:
        bodies = [json.loads(raw) for _, raw in client_side.webhooks]
        return [body for body in bodies if body.get("id") == job_id]

    async def arrived() -> bool:
        return bool(posted())

    await eventually(arrived, f"the webhook of {job_id}\n{service_logs(deployment)}", 90)
    [body] = posted()
    return body


async def log_of(deployment: Deployment, job_id: str) -> list[Any]:
    conn = await asyncpg.connect(deployment.stack.postgres_dsn)
    try:
        return [r.event for r in await store.read_correlated(conn, job_id)]
    finally:
        await conn.close()


async def test_cancelling_a_hanging_download_completes_the_job_and_sends_its_webhook(
    http: aiohttp.ClientSession, deployment: Deployment, client_side: ClientSide, origin: Origin
) -> None:
    body = {
        "systemName": "cancelling",
        "webhook": client_side.url("/webhooks"),
        "context": {"myIdentifier": "to-cancel"},
        "videos": [
            video(client_side, "cancel-fast-1", "sample.mp4"),
            {
                "url": origin.url("/hanging/never.mp4"),
                "id": "cancel-hanging",
                "fileName": "never",
                "metadata": {"title": "never arrives"},
            },
            video(client_side, "cancel-fast-2", "sample.webm"),
        ],
    }
    job_id = await post_batch(http, deployment, body)

    async def hanging_while_the_others_are_done() -> bool:
        page = await call(http, deployment, "GET", "/status", id=job_id, limit=10)
        hanging = page["videos"][1] if page.get("videos") else {}
        receiving = hanging.get("phase") == "downloading" and hanging["bytesDownloaded"] > 0
        return page["progress"]["success"] == 2 and receiving

    await eventually(
        hanging_while_the_others_are_done,
        f"two results and a running download\n{service_logs(deployment)}",
        90,
    )
    page = await call(http, deployment, "GET", "/status", id=job_id, state="started")
    [running] = page["videos"]
    assert running["externalId"] == "cancel-hanging" and running["state"] == "started"
    assert running["bytesTotal"] == DECLARED_BYTES
    assert 0 < running["bytesDownloaded"] <= len(SAMPLE)
    assert page["nextCursor"] is None

    answer = await call(http, deployment, "POST", "/cancel", 202, id=job_id)
    assert answer == {"id": job_id, "cancelled": 1}

    status = await wait_finished(http, deployment, job_id)
    assert status["state"] == "success"
    assert status["overview"] == {"total": 3, "success": 2, "skipped": 0, "failed": 1}
    assert [(v["externalId"], v["state"]) for v in status["videos"]] == [
        ("cancel-fast-1", "success"),
        ("cancel-hanging", "failed"),
        ("cancel-fast-2", "success"),
    ]
    cancelled = status["videos"][1]
    assert (cancelled["code"], cancelled["reason"]) == ("cancelled", "cancelled by the client")
    assert all(v["video"]["mediaId"] for v in status["videos"][::2])

    assert await webhook_of(client_side, deployment, job_id) == {
        "id": job_id,
        "state": "success",
        "context": {"myIdentifier": "to-cancel"},
        "overview": {"total": 3, "success": 2, "skipped": 0, "failed": 1},
    }
    events = await log_of(deployment, job_id)
    assert [type(e) for e in events].count(JobCancelled) == 1
    assert [type(e) for e in events].count(JobCompleted) == 1
    again = await call(http, deployment, "POST", "/cancel", 409, id=job_id)
    assert again["status"] == 409


async def test_retrying_a_failed_video_and_listing_both_jobs(
    http: aiohttp.ClientSession, deployment: Deployment, client_side: ClientSide, origin: Origin
) -> None:
    body = {
        "systemName": "retrying",
        "webhook": client_side.url("/webhooks"),
        "context": {"myIdentifier": "to-retry"},
        "videos": [
            video(client_side, "retry-good", "sample.mp4"),
            {
                "url": origin.url("/flaky/sample.mp4"),
                "id": "retry-flaky",
                "fileName": "flaky",
                "metadata": {"title": "comes back", "credit": "LC"},
            },
        ],
    }
    first = await post_batch(http, deployment, body)
    status = await wait_finished(http, deployment, first)
    assert [v["state"] for v in status["videos"]] == ["success", "failed"]
    assert status["videos"][1]["code"] == "download_failed"
    await webhook_of(client_side, deployment, first)

    origin.healed = True
    answer = await call(http, deployment, "POST", "/retry", id=first)
    second = answer["id"]
    assert answer == {"id": second, "retryOf": first, "videos": 1} and second != first

    retried = await wait_finished(http, deployment, second)
    assert retried["state"] == "success"
    assert [(v["externalId"], v["state"]) for v in retried["videos"]] == [
        ("retry-flaky", "success")
    ]
    assert await webhook_of(client_side, deployment, second) == {
        "id": second,
        "state": "success",
        "context": {"myIdentifier": "to-retry"},
        "overview": {"total": 1, "success": 1, "skipped": 0, "failed": 0},
    }
    requested = (await log_of(deployment, second))[0]
    assert isinstance(requested, ImportRequested)
    assert requested.retry_of == first and requested.webhook == body["webhook"]
    assert origin.requested["/flaky/sample.mp4"] == 2

    # Both jobs, newest first, a page at a time.
    listed = await call(http, deployment, "GET", "/jobs", systemName="retrying", limit=1)
    assert [j["id"] for j in listed["jobs"]] == [second]
    assert listed["jobs"][0]["progress"] == {"total": 1, "success": 1, "skipped": 0, "failed": 0}
    rest = await call(
        http,
        deployment,
        "GET",
        "/jobs",
        systemName="retrying",
        limit=1,
        cursor=listed["nextCursor"],
    )
    assert [(j["id"], j["state"], j["finished"]) for j in rest["jobs"]] == [
        (first, "success", True)
    ]
    assert rest["nextCursor"] is None
    everything = await call(http, deployment, "GET", "/jobs")
    ids = [j["id"] for j in everything["jobs"]]
    assert ids.index(second) < ids.index(first)
