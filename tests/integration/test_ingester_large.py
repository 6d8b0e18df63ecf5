"""Large videos: multipart upload with bounded memory, and the size cap."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from videoimport_devstack import StackInfo
from videoimport_events import VideoImported, VideoImportFailed
from videoimport_ingester.bootstrap import build_ingester

from tests.polling import eventually

from .ingester_harness import (
    MIB,
    S3Calls,
    Video,
    VideoSource,
    object_keys,
    prepare_database,
    read_object,
    registry_row,
    request_import,
    settings_for,
    sha256_of,
    video_source,
)

pytestmark = pytest.mark.integration

PART = 5 * MIB
PARTS = 8


@dataclass(frozen=True)
class BigVideo:
    path: Path
    size: int
    sha256: str


@pytest.fixture(scope="module")
def big_video(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> BigVideo:
    """A valid MP4 start followed by random bytes: 7.5 parts' worth."""
    path = tmp_path_factory.mktemp("big") / "big.mp4"
    digest = hashlib.sha256()
    with path.open("wb") as f:
        block = (fixtures_dir / "sample.mp4").read_bytes()
        remaining = int((PARTS - 0.5) * PART)
        while remaining > 0:
            f.write(block)
            digest.update(block)
            remaining -= len(block)
            block = os.urandom(min(MIB, remaining))
    return BigVideo(path=path, size=path.stat().st_size, sha256=digest.hexdigest())


@pytest.fixture
async def source(fixtures_dir: Path, big_video: BigVideo) -> AsyncIterator[VideoSource]:
    async with video_source(fixtures_dir, big_video.path) as running:
        yield running


@pytest.fixture
async def database(pg_dsn: str) -> str:
    await prepare_database(pg_dsn)
    return pg_dsn


async def test_a_video_of_many_parts_streams_through_bounded_memory(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource, big_video: BigVideo
) -> None:
    settings = settings_for(stack, database, s3_bucket, s3_part_size=PART, s3_parts_in_flight=2)
    _, [envelope] = await request_import(database, Video(source.url("/big.mp4")))
    async with build_ingester(settings) as ingester:
        calls = S3Calls(ingester.uploader.client)
        tracemalloc.start()
        try:
            event = await ingester.handle(envelope)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert isinstance(event, VideoImported)
    assert (event.size, event.sha256) == (big_video.size, big_video.sha256)
    stored, head = await read_object(settings, event.storage_key)
    assert sha256_of(stored) == big_video.sha256
    assert calls.succeeded["UploadPart"] == PARTS
    assert calls.succeeded["CompleteMultipartUpload"] == 1
    assert calls.sent["PutObject"] == 1  # the poster: the video went up in parts
    # Real S3 (and MinIO) name a multipart object's ETag "<md5 of md5s>-<parts>";
    # the local S3 server stores a plain MD5 instead.
    etag = head["ETag"].strip('"')
    assert "-" not in etag or etag.endswith(f"-{PARTS}")
    # (parts in flight + the one being filled) x part size, plus slack for
    # the HTTP and S3 clients' own buffers; the file itself is 37.5 MiB.
    assert peak < 4 * PART, f"peak {peak / MIB:.1f} MiB"


async def test_videos_at_once_share_one_buffer_budget(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource, big_video: BigVideo
) -> None:
    # Three videos of eight parts at once, two parts in flight each, would buffer
    # 3 x 3 parts; the budget of two parts holds the whole process to about that.
    settings = settings_for(
        stack,
        database,
        s3_bucket,
        s3_part_size=PART,
        s3_parts_in_flight=2,
        s3_buffer_budget=2 * PART,
    )
    _, envelopes = await request_import(
        database, *(Video(source.url("/big.mp4"), external_id=f"big-{n}") for n in range(3))
    )
    async with build_ingester(settings) as ingester:
        tracemalloc.start()
        try:
            events = await asyncio.gather(*(ingester.handle(e) for e in envelopes))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    for event in events:
        assert isinstance(event, VideoImported)
        assert (event.size, event.sha256) == (big_video.size, big_video.sha256)
    assert peak < 4 * PART, f"peak {peak / MIB:.1f} MiB for three videos"


async def test_a_video_over_the_size_cap_fails_and_leaves_nothing_behind(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    cap = 2 * PART + 1
    settings = settings_for(stack, database, s3_bucket, max_video_bytes=cap)
    _, envelopes = await request_import(
        database,
        Video(source.url("/big.mp4"), external_id="declared"),
        Video(source.url("/big-chunked.mp4"), external_id="streamed"),
    )
    async with build_ingester(settings) as ingester:
        calls = S3Calls(ingester.uploader.client)
        declared, streamed = [await ingester.handle(e) for e in envelopes]

    assert isinstance(declared, VideoImportFailed)
    assert declared.code == "too_large"
    assert declared.reason == (
        f"too large: {int((PARTS - 0.5) * PART)} bytes, the limit is {cap} bytes"
    )
    assert isinstance(streamed, VideoImportFailed)
    assert (streamed.code, streamed.reason) == (
        "too_large",
        f"too large: more than {cap} bytes, the limit is {cap} bytes",
    )
    assert await object_keys(settings) == []
    # The streamed one got past the first part before the cap hit: its
    # multipart upload was started, never completed, and aborted.
    assert calls.succeeded["CreateMultipartUpload"] == 1
    assert calls.sent["CompleteMultipartUpload"] == 0
    assert calls.sent["AbortMultipartUpload"] == 1
    assert await registry_row(database, "declared") is None
    assert await registry_row(database, "streamed") is None


async def test_a_cancelled_download_aborts_its_multipart_upload(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    # What a stopping worker does to a video past its first part: cancel it.
    settings = settings_for(stack, database, s3_bucket, s3_part_size=PART)
    _, [envelope] = await request_import(database, Video(source.url("/stall-big.mp4")))
    async with build_ingester(settings) as ingester:
        calls = S3Calls(ingester.uploader.client)
        handling = asyncio.create_task(ingester.handle(envelope))

        async def first_part_sent() -> bool:
            assert not handling.done(), handling
            return calls.succeeded["UploadPart"] == 1

        await eventually(first_part_sent, "the first part to be uploaded")
        handling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handling

    assert calls.succeeded["CreateMultipartUpload"] == 1
    assert calls.succeeded["AbortMultipartUpload"] == 1
    assert calls.sent["CompleteMultipartUpload"] == 0
    assert await object_keys(settings) == []
    assert await registry_row(database, "ext-1") is None
