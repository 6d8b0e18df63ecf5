"""A client's view of what the stored file says: a real mp4 (made with ffmpeg) goes
through every service as a process, and its status shows duration, dimensions,
codecs and container as ffprobe read them, with a ``posterUrl`` that serves a JPEG
of the video's size."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.media_harness import EXPECTED, jpeg_size, make_video

from .conftest import Deployment
from .test_import_flow import post_batch, wait_finished

DURATION_TOLERANCE = 0.1
"""Seconds: audio priming and the last frame's length move a probed duration a little."""


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_video(tmp_path_factory.mktemp("media"), "mp4").read_bytes()


@pytest.fixture(scope="module")
async def video_host(mp4: bytes) -> AsyncIterator[str]:
    """The client's video host, on loopback, serving the made file."""

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=mp4, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/made.mp4", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/made.mp4"
    await runner.cleanup()


async def test_an_imported_mp4_shows_what_ffprobe_read_and_a_poster(
    http: aiohttp.ClientSession, deployment: Deployment, video_host: str, mp4: bytes
) -> None:
    expected = EXPECTED["mp4"]
    assert expected is not None
    body = {
        "systemName": "archive",
        "videos": [
            {"url": video_host, "id": "probed-1", "fileName": "made", "metadata": {"title": "t"}}
        ],
    }
    job_id = await post_batch(http, deployment, body)
    status = await wait_finished(http, deployment, job_id)

    assert status["state"] == "success", status
    video = status["videos"][0]["video"]
    assert video["mimeType"] == expected.mime_type
    assert abs(video["duration"] - expected.duration) <= DURATION_TOLERANCE, video
    assert (video["width"], video["height"]) == (expected.width, expected.height)
    assert video["frameRate"] == pytest.approx(expected.frame_rate)
    assert (video["videoCodec"], video["audioCodec"]) == (
        expected.video_codec,
        expected.audio_codec,
    )
    assert video["container"] == expected.container
    assert (video["size"], video["sha256"]) == (len(mp4), hashlib.sha256(mp4).hexdigest())
    assert isinstance(video["bitRate"], int) and video["bitRate"] > 0

    async with http.get(video["posterUrl"]) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/jpeg"
        poster = await response.read()
    assert jpeg_size(poster) == (expected.poster_width, expected.height)
