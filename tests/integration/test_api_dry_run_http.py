"""POST …/import/videos?dryRun=true over real HTTP: the decision, the probe, nothing written.

Sources are aiohttp servers on 127.0.0.1; the registry rows are written by the
ingester's own registry adapter. Name lookups in the loopback-only tests are
answered by ``NamedResolver`` (no DNS), so a name can resolve off loopback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from videoimport_api.adapters.url_probe import UrlProbe
from videoimport_ingester.adapters import registry
from videoimport_projects import ProjectConfig, parse_config
from videoimport_projects.media_decision import MediaRecord, media_id_for

from .api_harness import (
    IMPORT_URL,
    RunningApi,
    assert_error_shape,
    auth,
    project_with_token,
    running_api,
)

pytestmark = pytest.mark.integration

MP4 = (Path(__file__).parents[1] / "fixtures" / "sample.mp4").read_bytes()
HTML = b"<!doctype html><html><body>not found, but friendly</body></html>"
CONFIG = parse_config('{"metadata": [{"handle": "title", "type": "text", "required": true}]}')
MAX_VIDEO_BYTES = 1_000_000
PROBE_TIMEOUT = 1.0
DRY_RUN = IMPORT_URL + "?dryRun=true"


class Origin:
    """A loopback source with one route per behaviour; it records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str | None]] = []
        self.release = asyncio.Event()
        self.base = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/video.mp4", self.video)
        app.router.add_route("*", "/no-head.mp4", self.no_head)
        app.router.add_route("*", "/page.html", self.page)
        app.router.add_route("*", "/disguised.mp4", self.disguised)
        app.router.add_route("*", "/huge.mp4", self.huge)
        app.router.add_route("*", "/stall.mp4", self.stall)
        app.router.add_route("*", "/loop", self.loop)
        app.router.add_route("*", "/to", self.to)
        app.router.add_route("*", "/missing.mp4", self.missing)
        return app

    def _record(self, request: web.Request) -> None:
        self.asked.append((request.method, request.path_qs, request.headers.get("Range")))

    async def video(self, request: web.Request) -> web.Response:
        self._record(request)
        return ranged(request, MP4, "video/mp4")

    async def no_head(self, request: web.Request) -> web.Response:
        self._record(request)
        if request.method == "HEAD":
            return web.Response(status=405)
        return ranged(request, MP4, "video/mp4")

    async def page(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.Response(body=HTML, content_type="text/html")

    async def disguised(self, request: web.Request) -> web.Response:
        self._record(request)
        return ranged(request, HTML, "video/mp4")

    async def huge(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.Response(body=MP4 * 100, content_type="video/mp4")

    async def stall(self, request: web.Request) -> web.Response:
        self._record(request)
        await self.release.wait()  # answers only when the test is over
        return web.Response(status=204)

    async def loop(self, request: web.Request) -> web.Response:
        self._record(request)
        raise web.HTTPFound("/loop")

    async def to(self, request: web.Request) -> web.Response:
        self._record(request)
        raise web.HTTPFound(request.query["url"])

    async def missing(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.Response(status=404, body=HTML, content_type="text/html")


def ranged(request: web.Request, body: bytes, content_type: str) -> web.Response:
    """``body``, or its first bytes for ``Range: bytes=0-N`` (206, as servers do)."""
    wanted = request.headers.get("Range", "")
    if wanted.startswith("bytes=0-"):
        end = min(int(wanted.removeprefix("bytes=0-")), len(body) - 1)
        return web.Response(
            status=206,
            body=body[: end + 1],
            content_type=content_type,
            headers={"Content-Range": f"bytes 0-{end}/{len(body)}"},
        )
    return web.Response(body=body, content_type=content_type)


class NamedResolver(AbstractResolver):
    """Answers lookups from a fixed table instead of DNS."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.table:
            raise OSError(f"no such name {host}")
        address = self.table[host]
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
        ]

    async def close(self) -> None:
        return None


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    source = Origin()
    runner = web.AppRunner(source.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    source.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield source
    finally:
        source.release.set()
        await runner.cleanup()


API_SETTINGS: dict[str, Any] = {
    "allow_private_urls": True,
    "max_video_bytes": MAX_VIDEO_BYTES,
    "dry_run_probe_timeout": PROBE_TIMEOUT,
}


@pytest.fixture
async def api(pg_dsn: str) -> AsyncIterator[RunningApi]:
    async with running_api(pg_dsn, **API_SETTINGS) as running:
        yield running


async def token_for(api: RunningApi, config: ProjectConfig = CONFIG) -> str:
    return await project_with_token(api.settings.database_url, "news", config=config)


def body(*videos: dict[str, Any]) -> dict[str, Any]:
    return {
        "systemName": "archive",
        "videos": [
            {
                "id": v.get("id", f"ext-{i}"),
                "url": v["url"],
                "fileName": v.get("fileName", f"Video {i}"),
                "metadata": v.get("metadata", {"title": f"Title {i}"}),
            }
            for i, v in enumerate(videos)
        ],
    }


async def register(dsn: str, external_id: str, url: str, file_name: str, title: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        record = MediaRecord(
            project="news",
            system_name="archive",
            external_id=external_id,
            media_id=media_id_for("news", "archive", external_id),
            url=url,
            file_name=file_name,
            metadata={"title": title},
            mime_type="video/mp4",
            storage_key=f"news/{external_id}/first.mp4",
            size=len(MP4),
            sha256="0" * 64,
        )
        assert await registry.insert(conn, record)
    finally:
        await conn.close()


async def written(dsn: str) -> tuple[int, list[Any]]:
    """The number of events and every registry row: what a dry run must leave alone."""
    conn = await asyncpg.connect(dsn)
    try:
        events = int(await conn.fetchval("SELECT count(*) FROM events"))
        media = [tuple(r) for r in await conn.fetch("SELECT * FROM media ORDER BY external_id")]
        return events, media
    finally:
        await conn.close()


def verdicts(answer: dict[str, Any]) -> list[tuple[str, bool, str | None, str | None]]:
    return [(v["action"], v["download"], v["code"], v["reason"]) for v in answer["videos"]]


async def test_every_video_is_answered_as_the_import_would_handle_it(
    api: RunningApi, origin: Origin
) -> None:
    token = await token_for(api)
    dsn = api.settings.database_url
    video = f"{origin.base}/video.mp4"
    await register(dsn, "ext-1", video, "Video 1", "Title 1")  # unchanged: skip
    await register(dsn, "ext-2", video, "Old name", "Title 2")  # renamed: update in place
    await register(dsn, "ext-3", f"{origin.base}/old.mp4", "Video 3", "Title 3")  # moved
    before = await written(dsn)

    started = time.monotonic()
    response = await api.http.post(
        DRY_RUN,
        headers=auth(token),
        json=body(
            {"url": video},
            {"url": video},
            {"url": video},
            {"url": f"{video}?v=2"},
            {"url": video, "metadata": {}},
            {"url": f"{origin.base}/no-head.mp4"},
            {"url": f"{origin.base}/page.html"},
            {"url": f"{origin.base}/disguised.mp4"},
            {"url": f"{origin.base}/missing.mp4"},
            {"url": f"{origin.base}/loop"},
            {"url": f"{origin.base}/huge.mp4"},
            {"url": f"{origin.base}/stall.mp4"},
            {"url": video, "id": "another-id"},
        ),
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["dryRun"] is True
    assert [(v["index"], v["systemName"], v["externalId"]) for v in answer["videos"]][:2] == [
        (0, "archive", "ext-0"),
        (1, "archive", "ext-1"),
    ]
    assert verdicts(answer) == [
        ("create", True, None, None),
        ("skip", False, None, None),
        ("update", False, None, None),
        ("update", True, None, None),
        ("fail", False, "invalid_metadata", "metadata.title: required"),
        ("create", True, None, None),
        ("fail", True, "not_a_video", "not a video (text/html)"),
        ("fail", True, "not_a_video", "not a video (video/mp4 declared, content is text/html)"),
        ("fail", True, "download_failed", "download failed: HTTP 404"),
        ("fail", True, "too_many_redirects", "more than 5 redirects"),
        (
            "fail",
            True,
            "too_large",
            f"too large: {len(MP4) * 100} bytes, the limit is {MAX_VIDEO_BYTES} bytes",
        ),
        ("fail", True, "timeout", f"timeout: no answer within {PROBE_TIMEOUT:g} s"),
        ("create", True, None, None),
    ]
    assert answer["summary"] == {"create": 3, "update": 2, "skip": 1, "fail": 7}
    assert elapsed < PROBE_TIMEOUT + 4, "the stalling source held the answer past its bound"

    asked = origin.asked
    assert asked.count(("HEAD", "/video.mp4", None)) == 1, "one URL, probed once"
    assert ("GET", "/video.mp4", "bytes=0-4095") in asked
    assert [a for a in asked if a[1] == "/no-head.mp4"] == [
        ("HEAD", "/no-head.mp4", None),
        ("GET", "/no-head.mp4", "bytes=0-4095"),
    ]
    # Headers that already refuse the video end the probe: no GET.
    assert [a[0] for a in asked if a[1] in ("/page.html", "/huge.mp4")] == ["HEAD", "HEAD"]
    # A source the HEAD cannot reach is not asked again: the first URL and 5 redirects.
    assert [a[0] for a in asked if a[1] == "/loop"] == ["HEAD"] * 6
    assert await written(dsn) == before, "a dry run wrote something"


async def test_the_deadline_leaves_the_rest_unchecked_with_their_action(
    pg_dsn: str, origin: Origin
) -> None:
    settings = {**API_SETTINGS, "dry_run_request_probes": 2, "dry_run_deadline": 1.5}
    async with running_api(pg_dsn, **settings) as api:
        token = await token_for(api)
        started = time.monotonic()
        response = await api.http.post(
            DRY_RUN,
            headers=auth(token),
            json=body(*({"url": f"{origin.base}/stall.mp4?n={n}"} for n in range(4))),
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    unchecked = "not checked: the dry run probes URLs for at most 1.5 s"
    assert verdicts(response.json()) == [
        ("fail", True, "timeout", "timeout: no answer within 1 s"),
        ("fail", True, "timeout", "timeout: no answer within 1 s"),
        ("create", True, None, unchecked),
        ("create", True, None, unchecked),
    ]
    assert elapsed < 1.5 + 2.5


async def test_a_dry_run_is_validated_and_authorised_like_an_import(api: RunningApi) -> None:
    token = await token_for(api)
    before = await written(api.settings.database_url)
    invalid = await api.http.post(DRY_RUN, headers=auth(token), json={"systemName": "archive"})
    assert invalid.status_code == 400
    assert_error_shape(invalid.json(), 400)
    assert invalid.json()["error_details"] == [{"field": "videos", "reason": "required"}]
    odd = await api.http.post(
        IMPORT_URL + "?dryRun=yes", headers=auth(token), json=body({"url": "http://127.0.0.1/"})
    )
    assert odd.status_code == 400 and odd.json()["error_details"][0]["field"] == "dryRun"
    reader = await project_with_token(api.settings.database_url, "news", scopes=["public-api:read"])
    refused = await api.http.post(
        DRY_RUN, headers=auth(reader), json=body({"url": "http://127.0.0.1/"})
    )
    assert refused.status_code == 403
    assert_error_shape(refused.json(), 403)
    assert await written(api.settings.database_url) == before


@pytest.fixture
async def loopback_api(pg_dsn: str) -> AsyncIterator[RunningApi]:
    """Loopback-only (as fuzzing runs it), its probe resolving names from a table."""
    resolver = NamedResolver({"public.example": "93.184.216.34", "loopback.example": "127.0.0.1"})
    probe = UrlProbe(
        scope="loopback",
        timeout=PROBE_TIMEOUT,
        deadline=10,
        request_probes=8,
        process_probes=8,
        max_bytes=MAX_VIDEO_BYTES,
        resolver=resolver,
    )

    def with_probe(deps: Any) -> Any:
        return dataclasses.replace(deps, url_probe=probe)

    try:
        async with running_api(
            pg_dsn, with_probe, loopback_only_urls=True, **API_SETTINGS
        ) as running:
            yield running
    finally:
        await probe.close()


@pytest.mark.parametrize("url", ["http://93.184.216.34/v.mp4", "http://public.example/v.mp4"])
async def test_loopback_only_refuses_other_hosts_at_the_door(
    loopback_api: RunningApi, url: str
) -> None:
    token = await token_for(loopback_api)
    before = await written(loopback_api.settings.database_url)
    for target in (DRY_RUN, IMPORT_URL):
        response = await loopback_api.http.post(
            target, headers=auth(token), json=body({"url": url})
        )
        assert response.status_code == 400, response.text
        assert_error_shape(response.json(), 400)
        [detail] = response.json()["error_details"]
        assert detail["field"] == "videos[0].url"
        assert detail["reason"].startswith("forbidden address")
    assert await written(loopback_api.settings.database_url) == before


async def test_loopback_only_refuses_a_redirect_off_loopback_where_it_connects(
    loopback_api: RunningApi, origin: Origin
) -> None:
    token = await token_for(loopback_api)
    port = origin.base.rsplit(":", 1)[1]
    off_literal = f"http://93.184.216.34:{port}/video.mp4"
    off_name = f"http://public.example:{port}/video.mp4"
    on_name = f"http://loopback.example:{port}/video.mp4"
    response = await loopback_api.http.post(
        DRY_RUN,
        headers=auth(token),
        json=body(
            *({"url": f"{origin.base}/to?url={u}"} for u in (off_literal, off_name, on_name))
        ),
    )
    assert response.status_code == 200, response.text
    assert verdicts(response.json()) == [
        (
            "fail",
            True,
            "forbidden_address",
            "forbidden address: 93.184.216.34 is not a loopback address (loopback-only mode)",
        ),
        (
            "fail",
            True,
            "forbidden_address",
            "forbidden address: public.example is not a loopback address (loopback-only mode)",
        ),
        ("create", True, None, None),  # the same origin, by a name that resolves to it
    ]
