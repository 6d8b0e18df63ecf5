"""No single request, video, origin or receiver stops anyone else.

Each case sends what once halted the pipeline through the real stack (every
service a process) and shows either a 400 naming the field or a job that reaches
a terminal state; right after it, a normal one-video job of another project
finishes within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from videoimport_devstack import StackInfo

from .conftest import FIXTURES, Deployment, deploy, service_logs

pytestmark = [pytest.mark.e2e, pytest.mark.long(seconds=35)]

API = "/api/2025-03/import/videos"
SAMPLE = (FIXTURES / "sample.mp4").read_bytes()
OTHERS_WITHIN = 20.0
"""Seconds a normal job of another project may take right after a hostile one."""
WORKERS = 8
PROJECT_LIMIT = 6
"""The ingester's download slots, and how many of them one project may hold (the
defaults, set here because the fairness cases are sized by them)."""
CRAWLING = WORKERS + 1
"""Crawling videos of one project: enough to hold every slot if nothing capped them."""
HOLD_AT_MOST = 2 * OTHERS_WITHIN
"""Longest an origin holds a request back (below the ingester's 60 s read timeout)."""
BACKLOG_PACE = 5.0
"""Seconds each backlogged video takes at the origin until the test lets the backlog go."""
BACKLOG = PROJECT_LIMIT * (int(OTHERS_WITHIN / BACKLOG_PACE) + 2)
"""Backlogged videos: more than the backlog's slots can start within ``OTHERS_WITHIN``."""

SETTINGS = {
    "VIDEOIMPORT_INGESTER_CONCURRENCY": str(WORKERS),
    "VIDEOIMPORT_INGESTER_PROJECT_LIMIT": str(PROJECT_LIMIT),
    # Short windows so that each case ends within seconds.
    "VIDEOIMPORT_DOWNLOAD_RATE_WINDOW": "3",
    "VIDEOIMPORT_DOWNLOAD_BACKOFF": "0.2",
    "VIDEOIMPORT_RECONCILE_AFTER": "3",
    "VIDEOIMPORT_RECONCILE_INTERVAL": "1",
    "VIDEOIMPORT_WEBHOOK_RETRY_BASE": "1",
    "VIDEOIMPORT_WEBHOOK_TIMEOUT": "3",
}


class Origin:
    """Video host and webhook receiver that behave badly on request."""

    def __init__(self) -> None:
        self.base_url = ""
        self.hits: dict[str, int] = {}
        self.webhooks: list[tuple[str, dict[str, Any]]] = []
        self.crawl_let_go = asyncio.Event()
        self.backlog_let_go = asyncio.Event()

    def url(self, path: str) -> str:
        return self.base_url + path

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/ok/{name}", self.ok)
        app.router.add_get("/trickle/{name}", self.trickle)
        app.router.add_get("/slowish/{name}", self.slowish)
        app.router.add_get("/busy/{name}", self.busy)
        app.router.add_post("/hooks/{name}", self.hook)

    def _hit(self, request: web.Request) -> None:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1

    async def ok(self, request: web.Request) -> web.Response:
        self._hit(request)
        return web.Response(body=SAMPLE, content_type="video/mp4")

    async def trickle(self, request: web.Request) -> web.StreamResponse:
        """A real video, one byte a second: far below any minimum rate.

        Until the test lets the crawl go, it holds its download slot without an
        answer (which the rate window does not measure, so the slot stays taken
        however long another project's job takes); then the window fails it."""
        self._hit(request)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.crawl_let_go.wait(), HOLD_AT_MOST)
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = len(SAMPLE)
        await response.prepare(request)
        for i in range(len(SAMPLE)):
            await response.write(SAMPLE[i : i + 1])
            await asyncio.sleep(1.0)
        return response

    async def slowish(self, request: web.Request) -> web.Response:
        """A video that takes ``BACKLOG_PACE`` seconds, none once the test lets the
        backlog go: a backlog of these lasts longer than ``OTHERS_WITHIN``."""
        self._hit(request)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.backlog_let_go.wait(), BACKLOG_PACE)
        return web.Response(body=SAMPLE, content_type="video/mp4")

    async def busy(self, request: web.Request) -> web.Response:
        self._hit(request)
        # '²' is a digit to str.isdigit() but not to float(): it once crashed the parsers.
        return web.Response(status=503, headers={"Retry-After": "²"})

    async def hook(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = json.loads(await request.read())
        if name == "hang":
            await asyncio.sleep(3600)
        if name == "busy":
            self.webhooks.append((name, body))
            return web.Response(status=503, headers={"Retry-After": "²"})
        self.webhooks.append((name, body))
        return web.Response(status=204)


@pytest.fixture(scope="module")
async def origin() -> AsyncIterator[Origin]:
    served = Origin()
    app = web.Application()
    served.routes(app)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    served.base_url = f"http://127.0.0.1:{port}"
    yield served
    await runner.cleanup()


@pytest.fixture(scope="module")
async def deployment(stack: StackInfo) -> AsyncIterator[Deployment]:
    async with deploy(stack, SETTINGS) as deployed:
        yield deployed


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def one_video(url: str, external_id: str = "v1", **metadata: Any) -> dict[str, Any]:
    return {"url": url, "id": external_id, "fileName": external_id, "metadata": metadata}


async def post(
    http: aiohttp.ClientSession, deployment: Deployment, token: str, body: bytes | dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with http.post(
        deployment.api_url + API,
        data=data,
        headers={**auth(token), "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.json()


async def finished(
    http: aiohttp.ClientSession, deployment: Deployment, token: str, job_id: str, within: float
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        async with http.get(
            f"{deployment.api_url}{API}/status", params={"id": job_id}, headers=auth(token)
        ) as response:
            assert response.status == 200, await response.text()
            status: dict[str, Any] = await response.json()
        if status["finished"]:
            return status
        assert time.monotonic() < deadline, (
            f"job {job_id} not finished after {within:g} s: {status}\n{service_logs(deployment)}"
        )
        await asyncio.sleep(0.2)


async def others_unaffected(
    http: aiohttp.ClientSession, deployment: Deployment, origin: Origin, tag: str
) -> None:
    """A normal job of another project finishes within seconds, webhook included."""
    started = time.monotonic()
    code, body = await post(
        http,
        deployment,
        deployment.open_token,
        {
            "systemName": "calm",
            "webhook": origin.url(f"/hooks/calm-{tag}"),
            "videos": [one_video(origin.url(f"/ok/{tag}.mp4"), tag, note="fine")],
        },
    )
    assert code == 200, body
    status = await finished(http, deployment, deployment.open_token, body["id"], OTHERS_WITHIN)
    assert status["state"] == "success", status

    async def webhook_arrived() -> bool:
        return any(name == f"calm-{tag}" for name, _ in origin.webhooks)

    while not await webhook_arrived():
        assert time.monotonic() - started < OTHERS_WITHIN, "the other project's webhook is late"
        await asyncio.sleep(0.1)


def rejected(code: int, body: dict[str, Any], field: str) -> None:
    assert code == 400, body
    fields = [d["field"] for d in body["error_details"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), (field, body)


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("nul_in_system_name", "systemName"),
        ("huge_metadata_value", "videos[0].metadata"),
        ("many_long_unknown_keys", "videos[0].metadata"),
        ("sixty_thousand_keys", "videos[0].metadata"),
        ("deep_nesting", "videos[0].metadata"),
        ("deep_body", "body"),
        ("punycode_host", "videos[0].url"),
        ("empty_label", "videos[0].url"),
        ("long_label", "videos[0].url"),
        ("control_in_id", "videos[0].id"),
        ("lone_surrogate", "videos[0].fileName"),
    ],
)
async def test_what_cannot_be_stored_or_sent_is_refused_at_the_door(
    http: aiohttp.ClientSession,
    deployment: Deployment,
    origin: Origin,
    case: str,
    field: str,
) -> None:
    ok = origin.url("/ok/a.mp4")
    bodies: dict[str, bytes | dict[str, Any]] = {
        "nul_in_system_name": {"systemName": "arch\u0000ive", "videos": [one_video(ok)]},
        "huge_metadata_value": {
            "systemName": "s",
            "videos": [one_video(ok, title="t", credit="x" * 1_100_000)],
        },
        "many_long_unknown_keys": {
            "systemName": "s",
            "videos": [one_video(ok, **{f"k{i:04d}" + "x" * 200: 1 for i in range(1100)})],
        },
        "sixty_thousand_keys": {
            "systemName": "s",
            "videos": [one_video(ok, **{f"k{i}": i for i in range(60_000)})],
        },
        "deep_nesting": b'{"systemName": "s", "videos": [{"url": "%s", "id": "a", "fileName": "a",'
        b' "metadata": {"x": %s%s}}]}' % (ok.encode(), b"[" * 5000, b"]" * 5000),
        "deep_body": b"[" * 100_000 + b"]" * 100_000,
        "punycode_host": {"systemName": "s", "videos": [one_video("http://xn--a.com/v.mp4")]},
        "empty_label": {"systemName": "s", "videos": [one_video("http://a..b/v.mp4")]},
        "long_label": {"systemName": "s", "videos": [one_video(f"http://{'a' * 64}.com/v.mp4")]},
        "control_in_id": {"systemName": "s", "videos": [one_video(ok, "a\x1fb")]},
        "lone_surrogate": b'{"systemName": "s", "videos": [{"url": "%s", "id": "a",'
        b' "fileName": "\\ud800", "metadata": {}}]}' % ok.encode(),
    }
    code, body = await post(http, deployment, deployment.token, bodies[case])
    rejected(code, body, field)
    await others_unaffected(http, deployment, origin, case)


async def test_a_retry_after_of_superscript_two_ends_the_video_and_the_webhook_retries(
    http: aiohttp.ClientSession, deployment: Deployment, origin: Origin
) -> None:
    code, body = await post(
        http,
        deployment,
        deployment.open_token,
        {
            "systemName": "busy",
            "webhook": origin.url("/hooks/busy"),
            "videos": [one_video(origin.url("/busy/b.mp4"), "b1")],
        },
    )
    assert code == 200, body
    status = await finished(http, deployment, deployment.open_token, body["id"], 60)
    (result,) = status["videos"]
    assert (result["state"], result["code"]) == ("failed", "download_failed")
    assert origin.hits["/busy/b.mp4"] >= 2  # retried on its own schedule, then given up
    await others_unaffected(http, deployment, origin, "after-busy")
    assert any(name == "busy" for name, _ in origin.webhooks)  # attempted, recorded, retrying


async def test_changing_a_number_to_a_boolean_is_an_update_not_a_skip(
    http: aiohttp.ClientSession, deployment: Deployment, origin: Origin
) -> None:
    url = origin.url("/ok/typed.mp4")
    first = {"systemName": "typed", "videos": [one_video(url, "t1", n=1)]}
    code, body = await post(http, deployment, deployment.open_token, first)
    assert code == 200, body
    await finished(http, deployment, deployment.open_token, body["id"], 30)
    second = {"systemName": "typed", "videos": [one_video(url, "t1", n=True)]}
    code, body = await post(http, deployment, deployment.open_token, second)
    assert code == 200, body
    status = await finished(http, deployment, deployment.open_token, body["id"], 30)
    assert status["videos"][0]["state"] == "success", status


async def test_crawling_origins_of_one_project_do_not_hold_back_another(
    http: aiohttp.ClientSession, deployment: Deployment, origin: Origin
) -> None:
    """The crawl holds every slot it may take while the other job runs: without the
    per-project cap it would hold all of them and the other job could not start."""
    slow = [
        one_video(origin.url(f"/trickle/s{i}.mp4"), f"s{i}", title="t") for i in range(CRAWLING)
    ]
    code, body = await post(
        http, deployment, deployment.token, {"systemName": "slow", "videos": slow}
    )
    assert code == 200, body
    slow_job = body["id"]

    async def downloads_started() -> int:
        return sum(1 for path in origin.hits if path.startswith("/trickle/"))

    deadline = time.monotonic() + 20
    try:
        while await downloads_started() < PROJECT_LIMIT:
            assert time.monotonic() < deadline, f"{await downloads_started()} slow downloads"
            await asyncio.sleep(0.1)
        await others_unaffected(http, deployment, origin, "beside-slow")
    finally:
        origin.crawl_let_go.set()
    # And the crawling job itself ends: every video fails `timeout` (below the minimum rate).
    status = await finished(http, deployment, deployment.token, slow_job, 180)
    assert {v["code"] for v in status["videos"]} == {"timeout"}, status


async def test_a_small_job_is_not_queued_behind_another_projects_backlog(
    http: aiohttp.ClientSession, deployment: Deployment, origin: Origin
) -> None:
    """Queued behind the backlog, the small job would start after every backlogged
    video had; the backlog is paced so that cannot happen within ``OTHERS_WITHIN``."""
    backlog = [
        one_video(origin.url(f"/slowish/h{i}.mp4"), f"h{i}", title="t") for i in range(BACKLOG)
    ]
    code, body = await post(
        http, deployment, deployment.token, {"systemName": "backlog", "videos": backlog}
    )
    assert code == 200, body
    backlog_job = body["id"]
    try:
        await others_unaffected(http, deployment, origin, "behind-backlog")
        backlog_hits = sum(1 for path in origin.hits if path.startswith("/slowish/"))
    finally:
        origin.backlog_let_go.set()
    assert backlog_hits < BACKLOG, "the small job only finished after the whole backlog"
    status = await finished(http, deployment, deployment.token, backlog_job, 180)
    assert status["state"] == "success", status


async def test_a_job_whose_requests_kafka_lost_finishes_through_reconciliation(
    http: aiohttp.ClientSession, deployment: Deployment, origin: Origin
) -> None:
    services = deployment.services
    services.crash("relay")
    conn = await asyncpg.connect(deployment.stack.postgres_dsn)
    try:
        code, body = await post(
            http,
            deployment,
            deployment.open_token,
            {"systemName": "lost", "videos": [one_video(origin.url("/ok/lost.mp4"), "l1")]},
        )
        assert code == 200, body
        # As if Kafka had lost them: the relay's position jumps past the job's events.
        head = await conn.fetchval("SELECT max(position) FROM events")
        await conn.execute("UPDATE tracking SET position = $1 WHERE name = 'relay'", head)
    finally:
        await conn.close()
    services.start_one("relay")
    status = await finished(http, deployment, deployment.open_token, body["id"], 60)
    assert status["state"] == "success", status
