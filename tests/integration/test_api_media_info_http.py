"""The probed file's fields and its poster over real HTTP: results appended to the log
for a job the API accepted, projected by the real projector, read back through the
status (whole and paged) and the operator page; the poster link streams the JPEG
from the real S3 as ``image/jpeg`` and refuses a tampered signature."""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from videoimport_api.domain.media_links import signature
from videoimport_api.ui.session import COOKIE_NAME
from videoimport_devstack import StackInfo
from videoimport_eventlog import store
from videoimport_events import MediaInfo, VideoImported, VideoImportSkipped

from tests.conftest import s3_client
from tests.integration.test_projector_readmodel import caught_up, projecting
from tests.polling import eventually

from .api_harness import (
    STATUS_URL,
    RunningApi,
    append_to_log,
    assert_error_shape,
    auth,
    batch,
    project_with_token,
    running_api,
    submit_batch,
)

pytestmark = pytest.mark.integration

MEDIA_ID = "m4xq7c2kdaw3hz5tb6ne"
STEM = f"acme/{MEDIA_ID}/0b6f4c1e-1234-4abc-8def-0123456789ab"
VIDEO_KEY = f"{STEM}.mp4"
POSTER_KEY = f"{STEM}.poster.jpg"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
# Start and end of image markers around some bytes: the API never looks inside.
POSTER = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9"
INFO = MediaInfo(
    container="mp4",
    duration=2.0,
    width=640,
    height=360,
    frame_rate=25.0,
    video_codec="h264",
    audio_codec="aac",
    bit_rate=412345,
)


@pytest.fixture
async def api(pg_dsn: str, stack: StackInfo, s3_bucket: str) -> AsyncIterator[RunningApi]:
    async with running_api(
        pg_dsn,
        s3_endpoint=stack.s3_endpoint,
        s3_access_key=stack.s3_access_key,
        s3_secret_key=stack.s3_secret_key,
        s3_region=stack.s3_region,
        s3_bucket=s3_bucket,
    ) as running:
        yield running


@pytest.fixture
async def poster_stored(stack: StackInfo, s3_bucket: str) -> None:
    async with s3_client(stack) as client:
        # Stored without a type: the API serves a poster as a JPEG all the same.
        await client.put_object(Bucket=s3_bucket, Key=POSTER_KEY, Body=POSTER)


def results(job_id: str) -> list[store.NewEvent]:
    """What the ingester appends: a probed import with a poster, a skip from before probing."""
    common: dict[str, Any] = {"job_id": job_id, "project": "acme", "system_name": "archive"}
    probed = VideoImported(
        **common,
        index=0,
        external_id="ext-0",
        media_id=MEDIA_ID,
        mime_type="video/mp4",
        storage_key=VIDEO_KEY,
        size=123456,
        sha256=SHA,
        outcome="created",
        downloaded=True,
        url="https://videos.example.com/0.mp4",
        file_name="Video 0",
        metadata={"title": "Title 0"},
        media_info=INFO,
        poster_key=POSTER_KEY,
    )
    unprobed = VideoImportSkipped(
        **common,
        index=1,
        external_id="ext-1",
        media_id=MEDIA_ID,
        mime_type="video/mp4",
        storage_key=VIDEO_KEY,
        size=123456,
        sha256=SHA,
    )
    return [
        store.NewEvent(
            event,
            stream_id=f"job-{job_id}/video-{event.index}",
            stream_version=1,
            correlation_id=job_id,
            project="acme",
            causation_id=str(uuid.uuid4()),
        )
        for event in (probed, unprobed)
    ]


async def finished_job(api: RunningApi, pg_dsn: str) -> tuple[str, str]:
    """A job the API accepted, its results projected; returns (job id, token)."""
    token = await project_with_token(pg_dsn, "acme")
    job_id = await submit_batch(api, token, batch(2))
    await append_to_log(pg_dsn, results(job_id))
    conn = await asyncpg.connect(pg_dsn)
    try:
        async with projecting(pg_dsn):
            await eventually(lambda: caught_up(conn), "the projector to catch up")
    finally:
        await conn.close()
    return job_id, token


async def test_the_status_shows_the_probed_fields_and_a_poster_link_that_serves_the_jpeg(
    api: RunningApi, pg_dsn: str, poster_stored: None
) -> None:
    job_id, token = await finished_job(api, pg_dsn)
    response = await api.http.get(STATUS_URL, params={"id": job_id}, headers=auth(token))
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["state"] == "success"
    probed, unprobed = (v["video"] for v in document["videos"])
    poster_url = probed.pop("posterUrl")
    assert poster_url.startswith(f"{api.base_url}/media/{POSTER_KEY}?expires=")
    assert probed.pop("originalUrl").startswith(f"{api.base_url}/media/{VIDEO_KEY}?expires=")
    assert probed == {
        "mediaId": MEDIA_ID,
        "mimeType": "video/mp4",
        "duration": 2.0,
        "width": 640,
        "height": 360,
        "frameRate": 25.0,
        "videoCodec": "h264",
        "audioCodec": "aac",
        "bitRate": 412345,
        "container": "mp4",
        "size": 123456,
        "sha256": SHA,
    }
    # Recorded before probing: the contract's three fields, nothing null made up.
    assert set(unprobed) == {"mediaId", "originalUrl", "mimeType"}

    # Used as given, without credentials.
    poster = await api.http.get(poster_url)
    assert (poster.status_code, poster.content) == (200, POSTER)
    assert poster.headers["content-type"] == "image/jpeg"
    assert poster.headers["x-content-type-options"] == "nosniff"
    assert poster.headers["content-disposition"] == f'inline; filename="{MEDIA_ID}.poster.jpg"'
    head = await api.http.head(poster_url)
    assert (head.status_code, head.headers["content-type"]) == (200, "image/jpeg")

    expires = int(time.time()) + 3600
    sig = signature(api.deps.media_links.secret, POSTER_KEY, expires)
    tampered = ("A" if sig[0] != "A" else "B") + sig[1:]
    video_sig = signature(api.deps.media_links.secret, VIDEO_KEY, expires)
    for query in (
        f"expires={expires}&signature={tampered}",
        f"expires={expires}&signature={video_sig}",
    ):
        refused = await api.http.get(f"/media/{POSTER_KEY}?{query}")
        assert refused.status_code == 403, query
        body = refused.json()
        assert_error_shape(body, 403)
        assert body["error_details"][0]["field"] == "signature"

    paged = await api.http.get(STATUS_URL, params={"id": job_id, "limit": "1"}, headers=auth(token))
    assert paged.status_code == 200, paged.text
    video = paged.json()["videos"][0]["video"]
    assert (video["duration"], video["width"], video["height"]) == (2.0, 640, 360)
    assert video["posterUrl"].startswith(f"{api.base_url}/media/{POSTER_KEY}?expires=")


async def test_the_operator_page_shows_duration_size_and_the_poster_from_this_server(
    api: RunningApi, pg_dsn: str, poster_stored: None
) -> None:
    job_id, token = await finished_job(api, pg_dsn)
    page = await api.http.get(f"/ui/jobs/{job_id}", headers={"Cookie": f"{COOKIE_NAME}={token}"})
    assert page.status_code == 200, page.text
    assert "img-src 'self'" in page.headers["content-security-policy"]
    assert "<td>2.0 s</td>" in page.text and "<td>640x360</td>" in page.text
    sources = re.findall(r'<img class="poster" src="([^"]+)"', page.text)
    assert len(sources) == 1
    source = html.unescape(sources[0])
    assert source.startswith(f"/media/{POSTER_KEY}?expires=")  # same origin: a path
    image = await api.http.get(source)
    assert (image.status_code, image.headers["content-type"], image.content) == (
        200,
        "image/jpeg",
        POSTER,
    )
