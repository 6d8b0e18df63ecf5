"""The transfer on the real stack: a per-call size cap, and resumed downloads.

The origin here serves one large file and cuts the connection part-way, the way
a reset or a proxy timeout does; the transfer copies into the real S3 and
records its writes in the real uploads ledger.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from videoimport_devstack import StackInfo
from videoimport_ingester.adapters.http_fetch import FetchError, make_session
from videoimport_ingester.adapters.unsettled_uploads import Journal
from videoimport_ingester.bootstrap import build_transfer, s3_client
from videoimport_ingester.scheduling import ProgressReport
from videoimport_ingester.settings import Settings
from videoimport_ingester.transfer import Transfer

from .ingester_harness import (
    MIB,
    S3Calls,
    VideoSource,
    metric,
    object_keys,
    prepare_database,
    read_object,
    settings_for,
    sha256_of,
    video_source,
)

pytestmark = pytest.mark.integration

PART = 5 * MIB
SIZE = 24 * MIB
CUT = 0.6
"""Of each response that is cut: the share sent before the connection is closed."""
RESUMES = "videoimport_ingester_download_resumes_total"


def _key(extension: str) -> str:
    return f"resume/video{extension}"


@asynccontextmanager
async def transfer_for(settings: Settings) -> AsyncIterator[tuple[Transfer, S3Calls]]:
    async with make_session(allow_private=True) as session, s3_client(settings) as s3:
        transfer, _ = build_transfer(settings, session, s3)
        yield transfer, S3Calls(s3)


def video_bytes(fixtures: Path, seed: bytes) -> bytes:
    """A valid MP4 start, then ``SIZE`` bytes in all that differ with ``seed``."""
    head = (fixtures / "sample.mp4").read_bytes()
    return head + seed + os.urandom(SIZE - len(head) - len(seed))


@dataclass
class CuttingOrigin:
    """Serves ``/video.mp4`` (``versions[0]``), cutting the connection of the first
    ``cuts`` responses after ``CUT`` of what they carry; answers ``Range`` requests
    when ``ranges`` (with ``Accept-Ranges`` and an ``ETag``, If-Range honoured).
    After its first response it serves ``versions[1]`` when there is one."""

    versions: list[bytes]
    ranges: bool = True
    cuts: int = 1
    asked: list[str | None] = field(default_factory=list)
    """The ``Range`` header of each request (None: the whole file)."""
    sent: int = 0
    """Body bytes written, over all responses."""
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/video.mp4"))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/video.mp4", self._video)
        return app

    async def _video(self, request: web.Request) -> web.StreamResponse:
        version = min(len(self.asked), len(self.versions) - 1)
        self.asked.append(request.headers.get("Range"))
        data = self.versions[version]
        etag = f'"v{version}-{len(data)}"'
        headers = {"Content-Type": "video/mp4"}
        if self.ranges:
            headers.update({"Accept-Ranges": "bytes", "ETag": etag})
        start, status = 0, 200
        wanted = request.headers.get("Range", "")
        if self.ranges and wanted and request.headers.get("If-Range") == etag:
            start, status = int(wanted.removeprefix("bytes=").removesuffix("-")), 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(data) - start
        await response.prepare(request)
        cut = len(self.asked) <= self.cuts
        end = start + int(CUT * (len(data) - start)) if cut else len(data)
        for offset in range(start, end, 256 * 1024):
            piece = data[offset : min(end, offset + 256 * 1024)]
            await response.write(piece)
            self.sent += len(piece)
        if cut:
            assert request.transport is not None
            request.transport.close()  # what was written is flushed first
            return response
        await response.write_eof()
        return response


@asynccontextmanager
async def cutting_origin(origin: CuttingOrigin) -> AsyncIterator[CuttingOrigin]:
    server = TestServer(origin.app(), host="127.0.0.1")
    await server.start_server()
    origin.server = server
    try:
        yield origin
    finally:
        await server.close()


async def ledger(pg_dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT storage_key, upload_id FROM unsettled_uploads ORDER BY id"
        )
    finally:
        await conn.close()
    return rows


@pytest.fixture
async def database(pg_dsn: str) -> str:
    await prepare_database(pg_dsn)
    return pg_dsn


@pytest.fixture
async def journal(database: str) -> AsyncIterator[Journal]:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    try:
        yield Journal(pool, "request-1")
    finally:
        await pool.close()


@pytest.fixture
async def source(fixtures_dir: Path) -> AsyncIterator[VideoSource]:
    # The sample as the "big" file: ``/big-chunked.mp4`` serves it without a length.
    async with video_source(fixtures_dir, fixtures_dir / "sample.mp4") as running:
        yield running


async def test_a_call_cap_lowers_the_deployment_cap_and_is_named(
    stack: StackInfo, pg_dsn: str, s3_bucket: str, source: VideoSource, fixtures_dir: Path
) -> None:
    size = (fixtures_dir / "sample.mp4").stat().st_size
    settings = settings_for(stack, pg_dsn, s3_bucket, max_video_bytes=size * 10)
    async with transfer_for(settings) as (transfer, _):
        with pytest.raises(FetchError) as declared:
            await transfer.copy(source.url("/video/sample.mp4"), _key, max_bytes=size - 1)
        with pytest.raises(FetchError) as streamed:
            await transfer.copy(source.url("/big-chunked.mp4"), _key, max_bytes=size - 1)
        stored = await transfer.copy(source.url("/video/sample.mp4"), _key, max_bytes=size)

    assert (declared.value.code, declared.value.reason) == (
        "too_large",
        f"too large: {size} bytes, the limit is {size - 1} bytes",
    )
    assert (streamed.value.code, streamed.value.reason) == (
        "too_large",
        f"too large: more than {size - 1} bytes, the limit is {size - 1} bytes",
    )
    assert stored.size == size
    assert await object_keys(settings) == [stored.storage_key]


async def test_a_call_cap_never_raises_the_deployment_cap(
    stack: StackInfo, pg_dsn: str, s3_bucket: str, source: VideoSource, fixtures_dir: Path
) -> None:
    size = (fixtures_dir / "sample.mp4").stat().st_size
    settings = settings_for(stack, pg_dsn, s3_bucket, max_video_bytes=size - 1)
    async with transfer_for(settings) as (transfer, _):
        with pytest.raises(FetchError) as refused:
            await transfer.copy(source.url("/video/sample.mp4"), _key, max_bytes=size * 100)

    assert (refused.value.code, refused.value.reason) == (
        "too_large",
        f"too large: {size} bytes, the limit is {size - 1} bytes",
    )
    assert await object_keys(settings) == []


async def test_a_cut_download_resumes_with_a_range_into_the_same_upload(
    stack: StackInfo, database: str, s3_bucket: str, fixtures_dir: Path, journal: Journal
) -> None:
    data = video_bytes(fixtures_dir, b"one")
    settings = settings_for(stack, database, s3_bucket, s3_part_size=PART)
    resumed_before = metric(RESUMES, outcome="resumed")
    progress = ProgressReport()
    async with (
        cutting_origin(CuttingOrigin([data])) as origin,
        transfer_for(settings) as (transfer, calls),
    ):
        stored = await transfer.copy(origin.url, _key, journal, progress)

    [whole, rest] = origin.asked
    assert whole is None and rest is not None
    offset = int(rest.removeprefix("bytes=").removesuffix("-"))
    # The exact byte received: nothing already in the upload is fetched again.
    assert 2 * PART < offset <= int(CUT * SIZE)
    assert SIZE <= origin.sent < 2 * SIZE
    assert (stored.size, stored.sha256) == (SIZE, sha256_of(data))
    content, _ = await read_object(settings, stored.storage_key)
    assert content == data
    # One multipart upload throughout, and one ledger entry naming it.
    assert calls.succeeded["CreateMultipartUpload"] == 1
    assert calls.sent["AbortMultipartUpload"] == 0
    assert calls.succeeded["UploadPart"] == -(-SIZE // PART)
    assert [tuple(row) for row in await ledger(database)] == [
        (stored.storage_key, stored.upload_id)
    ]
    assert (progress.bytes_done, progress.bytes_total) == (SIZE, SIZE)
    assert metric(RESUMES, outcome="resumed") == resumed_before + 1


async def test_a_cut_download_without_range_support_starts_over(
    stack: StackInfo, database: str, s3_bucket: str, fixtures_dir: Path, journal: Journal
) -> None:
    data = video_bytes(fixtures_dir, b"two")
    settings = settings_for(stack, database, s3_bucket, s3_part_size=PART)
    async with (
        cutting_origin(CuttingOrigin([data], ranges=False)) as origin,
        transfer_for(settings) as (transfer, calls),
    ):
        stored = await transfer.copy(origin.url, _key, journal)

    assert origin.asked == [None, None]
    assert (stored.size, stored.sha256) == (SIZE, sha256_of(data))
    content, _ = await read_object(settings, stored.storage_key)
    assert content == data
    # The cut attempt's upload was aborted; the fresh one is the one kept.
    assert calls.succeeded["CreateMultipartUpload"] == 2
    assert calls.succeeded["AbortMultipartUpload"] == 1
    assert [row["upload_id"] for row in await ledger(database)][-1] == stored.upload_id


async def test_a_source_changed_between_the_requests_is_copied_anew(
    stack: StackInfo, database: str, s3_bucket: str, fixtures_dir: Path, journal: Journal
) -> None:
    old, new = video_bytes(fixtures_dir, b"old"), video_bytes(fixtures_dir, b"new")
    settings = settings_for(stack, database, s3_bucket, s3_part_size=PART)
    restarted_before = metric(RESUMES, outcome="restarted")
    async with (
        cutting_origin(CuttingOrigin([old, new])) as origin,
        transfer_for(settings) as (transfer, calls),
    ):
        stored = await transfer.copy(origin.url, _key, journal)

    # The range was asked for; the origin answered 200 with the new version
    # (If-Range did not match), which was dropped for a fresh attempt.
    assert origin.asked[0] is None and origin.asked[1] is not None
    assert origin.asked[2:] == [None]
    assert (stored.size, stored.sha256) == (SIZE, sha256_of(new))
    content, _ = await read_object(settings, stored.storage_key)
    assert content == new
    assert calls.succeeded["CreateMultipartUpload"] == 2
    assert calls.succeeded["AbortMultipartUpload"] == 1
    assert metric(RESUMES, outcome="restarted") == restarted_before + 1


async def test_a_source_cut_every_time_fails_transient_after_the_budget(
    stack: StackInfo, database: str, s3_bucket: str, fixtures_dir: Path, journal: Journal
) -> None:
    data = video_bytes(fixtures_dir, b"cut")
    settings = settings_for(stack, database, s3_bucket, s3_part_size=PART, download_attempts=3)
    async with (
        cutting_origin(CuttingOrigin([data], cuts=1000)) as origin,
        transfer_for(settings) as (transfer, calls),
    ):
        with pytest.raises(FetchError) as failed:
            await transfer.copy(origin.url, _key, journal)

    assert (failed.value.code, failed.value.transient) == ("download_failed", True)
    # One whole request and two resumes: the resumes spend the same budget.
    assert len(origin.asked) == settings.download_attempts
    assert origin.asked[0] is None and all(asked is not None for asked in origin.asked[1:])
    assert calls.succeeded["CreateMultipartUpload"] == 1
    assert calls.succeeded["AbortMultipartUpload"] == 1
    assert await object_keys(settings) == []
