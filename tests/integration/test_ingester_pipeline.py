"""The ingester's handler against real PostgreSQL and S3, fed by a local video server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from videoimport_devstack import StackInfo
from videoimport_events import VideoImported, VideoImportFailed, VideoImportSkipped
from videoimport_ingester.bootstrap import build_ingester, s3_client
from videoimport_projects.media_decision import media_id_for

from .ingester_harness import (
    PROJECT,
    SYSTEM,
    Video,
    VideoSource,
    count_events,
    object_keys,
    prepare_database,
    read_object,
    registry_row,
    request_import,
    settings_for,
    sha256_of,
    terminal_events,
    video_source,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def source(fixtures_dir: Path) -> AsyncIterator[VideoSource]:
    async with video_source(fixtures_dir) as running:
        yield running


@pytest.fixture
async def database(pg_dsn: str) -> str:
    await prepare_database(pg_dsn)
    return pg_dsn


@pytest.mark.parametrize(
    ("name", "mime_type", "extension"),
    [
        ("sample.mp4", "video/mp4", ".mp4"),
        ("sample.webm", "video/webm", ".webm"),
        ("sample.mov", "video/quicktime", ".mov"),
    ],
)
async def test_a_requested_video_lands_in_s3_and_gets_one_terminal_event(
    stack: StackInfo,
    database: str,
    s3_bucket: str,
    source: VideoSource,
    fixtures_dir: Path,
    name: str,
    mime_type: str,
    extension: str,
) -> None:
    settings = settings_for(stack, database, s3_bucket)
    job_id, [envelope] = await request_import(database, Video(source.url(f"/video/{name}")))
    async with build_ingester(settings) as ingester:
        event = await ingester.handle(envelope)

    assert isinstance(event, VideoImported)
    assert (event.outcome, event.downloaded, event.mime_type) == ("created", True, mime_type)
    media_id = media_id_for(PROJECT, SYSTEM, "ext-1")
    assert event.media_id == media_id
    assert event.storage_key == f"{PROJECT}/{media_id}/{envelope.id}{extension}"
    original = (fixtures_dir / name).read_bytes()
    assert (event.size, event.sha256) == (len(original), sha256_of(original))

    stored, head = await read_object(settings, event.storage_key)
    assert sha256_of(stored) == sha256_of(original)
    assert head["ContentType"] == mime_type

    [recorded] = await terminal_events(database, job_id)
    assert recorded.stream_id == f"job-{job_id}/video-0"
    assert recorded.correlation_id == job_id
    assert recorded.causation_id == envelope.id
    assert recorded.event == event

    row = await registry_row(database, "ext-1")
    assert row is not None
    assert (row["media_id"], row["storage_key"], row["sha256"]) == (
        media_id,
        event.storage_key,
        event.sha256,
    )


async def test_a_redelivered_request_appends_nothing(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    settings = settings_for(stack, database, s3_bucket)
    _, [envelope] = await request_import(database, Video(source.url("/video/sample.mp4")))
    async with build_ingester(settings) as ingester:
        assert isinstance(await ingester.handle(envelope), VideoImported)
        events_after_first = await count_events(database)
        assert await ingester.handle(envelope) is None
    assert await count_events(database) == events_after_first
    assert source.hits["/video/sample.mp4"] == 1


async def test_same_url_with_changed_file_name_updates_without_downloading(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    settings = settings_for(stack, database, s3_bucket)
    url = source.url("/video/sample.mp4")
    _, [first] = await request_import(database, Video(url))
    _, [second] = await request_import(
        database, Video(url, file_name="renamed", metadata={"title": "New title"})
    )
    async with build_ingester(settings) as ingester:
        created = await ingester.handle(first)
        updated = await ingester.handle(second)

    assert isinstance(created, VideoImported) and isinstance(updated, VideoImported)
    assert (updated.outcome, updated.downloaded) == ("updated", False)
    assert updated.media_id == created.media_id
    assert updated.storage_key == created.storage_key
    assert updated.file_name == "renamed"
    assert source.hits["/video/sample.mp4"] == 1
    row = await registry_row(database, "ext-1")
    assert row is not None
    assert row["file_name"] == "renamed"
    assert row["storage_key"] == created.storage_key


async def test_an_unchanged_video_is_skipped_with_the_existing_media(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    settings = settings_for(stack, database, s3_bucket)
    url = source.url("/video/sample.mp4")
    _, [first] = await request_import(database, Video(url))
    job_id, [second] = await request_import(database, Video(url))
    async with build_ingester(settings) as ingester:
        created = await ingester.handle(first)
        skipped = await ingester.handle(second)

    assert isinstance(created, VideoImported)
    assert isinstance(skipped, VideoImportSkipped)
    assert skipped.reason == "already exists"
    assert (skipped.media_id, skipped.storage_key, skipped.mime_type, skipped.sha256) == (
        created.media_id,
        created.storage_key,
        created.mime_type,
        created.sha256,
    )
    assert source.hits["/video/sample.mp4"] == 1
    [recorded] = await terminal_events(database, job_id)
    assert isinstance(recorded.event, VideoImportSkipped)


async def test_a_new_url_downloads_again_and_keeps_the_media_id(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    settings = settings_for(stack, database, s3_bucket)
    _, [first] = await request_import(database, Video(source.url("/video/sample.mp4")))
    _, [second] = await request_import(database, Video(source.url("/video/sample.webm")))
    async with build_ingester(settings) as ingester:
        created = await ingester.handle(first)
        updated = await ingester.handle(second)

    assert isinstance(created, VideoImported) and isinstance(updated, VideoImported)
    assert (updated.outcome, updated.downloaded) == ("updated", True)
    assert updated.media_id == created.media_id
    assert updated.mime_type == "video/webm"
    assert updated.storage_key.endswith(".webm")
    assert created.storage_key in await object_keys(settings)  # earlier events still point there
    row = await registry_row(database, "ext-1")
    assert row is not None
    assert row["url"] == second.data.url  # type: ignore[union-attr]


async def test_a_video_whose_metadata_misfits_fails_without_download(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    settings = settings_for(stack, database, s3_bucket)
    _, [envelope] = await request_import(
        database, Video(source.url("/video/sample.mp4"), metadata={"credit": "LC"})
    )
    async with build_ingester(settings) as ingester:
        event = await ingester.handle(envelope)
    assert isinstance(event, VideoImportFailed)
    assert (event.code, event.reason) == ("invalid_metadata", "metadata.title: required")
    assert source.hits["/video/sample.mp4"] == 0
    assert await registry_row(database, "ext-1") is None


@pytest.mark.parametrize(
    ("path", "code", "reason"),
    [
        ("/missing.mp4", "download_failed", "download failed: HTTP 404"),
        ("/page.html", "not_a_video", "not a video (text/html)"),
        (
            "/html-as-video.mp4",
            "not_a_video",
            "not a video (video/mp4 declared, content is text/html)",
        ),
        ("/redirect/6", "too_many_redirects", "more than 5 redirects"),
    ],
)
async def test_sources_that_do_not_serve_a_video_fail_it(
    stack: StackInfo,
    database: str,
    s3_bucket: str,
    source: VideoSource,
    path: str,
    code: str,
    reason: str,
) -> None:
    settings = settings_for(stack, database, s3_bucket)
    _, [envelope] = await request_import(database, Video(source.url(path)))
    async with build_ingester(settings) as ingester:
        event = await ingester.handle(envelope)
    assert isinstance(event, VideoImportFailed)
    assert (event.code, event.reason) == (code, reason)
    assert source.hits[path] == 1  # permanent: not retried
    assert await object_keys(settings) == []
    assert await registry_row(database, "ext-1") is None


async def test_a_redirect_chain_is_followed_hop_by_hop(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource, fixtures_dir: Path
) -> None:
    settings = settings_for(stack, database, s3_bucket)
    _, [envelope] = await request_import(database, Video(source.url("/redirect/5")))
    async with build_ingester(settings) as ingester:
        event = await ingester.handle(envelope)
    assert isinstance(event, VideoImported)
    assert event.sha256 == sha256_of((fixtures_dir / "sample.mp4").read_bytes())
    assert [source.hits[f"/redirect/{n}"] for n in range(1, 6)] == [1, 1, 1, 1, 1]


async def test_transient_server_errors_are_retried(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    settings = settings_for(stack, database, s3_bucket)
    path = "/flaky/sample.mp4"
    source.failures_left[path] = 2
    _, [envelope] = await request_import(database, Video(source.url(path)))
    async with build_ingester(settings) as ingester:
        event = await ingester.handle(envelope)
    assert isinstance(event, VideoImported)
    assert source.hits[path] == 3


async def test_a_source_that_keeps_failing_fails_after_three_attempts(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    settings = settings_for(stack, database, s3_bucket)
    path = "/flaky/sample.mp4"
    source.failures_left[path] = 10
    _, [envelope] = await request_import(database, Video(source.url(path)))
    async with build_ingester(settings) as ingester:
        event = await ingester.handle(envelope)
    assert isinstance(event, VideoImportFailed)
    assert (event.code, event.reason) == ("download_failed", "download failed: HTTP 503")
    assert source.hits[path] == 3


async def test_a_hanging_server_times_out(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    settings = settings_for(stack, database, s3_bucket, download_read_timeout=0.3)
    _, [envelope] = await request_import(database, Video(source.url("/hang.mp4")))
    async with build_ingester(settings) as ingester:
        event = await asyncio.wait_for(ingester.handle(envelope), 30)
    assert isinstance(event, VideoImportFailed)
    assert event.code == "timeout"
    assert source.hits["/hang.mp4"] == 3


async def test_a_loopback_url_is_forbidden_unless_private_urls_are_allowed(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    settings = settings_for(stack, database, s3_bucket, allow_private_urls=False)
    by_ip = source.url("/video/sample.mp4")
    assert "127.0.0.1" in by_ip
    by_name = by_ip.replace("127.0.0.1", "localhost")
    _, envelopes = await request_import(
        database, Video(by_ip, external_id="ip"), Video(by_name, external_id="name")
    )
    async with build_ingester(settings) as ingester:
        events = [await ingester.handle(e) for e in envelopes]
    for event in events:
        assert isinstance(event, VideoImportFailed)
        assert event.code == "forbidden_address"
        assert "not a public address" in event.reason
    assert source.hits["/video/sample.mp4"] == 0


async def test_concurrent_jobs_for_one_video_register_it_once(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    # Kafka keeps one video's requests in order, but across a rebalance two
    # instances may still hold two of them at once.
    settings = settings_for(stack, database, s3_bucket)
    url = source.url("/video/sample.mp4")
    _, [first] = await request_import(database, Video(url))
    _, [second] = await request_import(database, Video(url))
    async with build_ingester(settings) as ingester:
        results = await asyncio.gather(ingester.handle(first), ingester.handle(second))

    kinds = sorted(type(r).__name__ for r in results)
    assert kinds == ["VideoImportSkipped", "VideoImported"]
    created = next(r for r in results if isinstance(r, VideoImported))
    # The loser's download (and poster) was made moot and removed; only the winner's remain.
    assert created.poster_key is not None
    assert await object_keys(settings) == sorted([created.storage_key, created.poster_key])


async def test_a_storage_outage_raises_so_the_message_is_retried(
    stack: StackInfo, database: str, source: VideoSource
) -> None:
    # A bucket that does not exist (yet) stands in for S3 being unavailable.
    missing_bucket = f"t{uuid.uuid4().hex[:16]}"
    settings = settings_for(stack, database, missing_bucket)
    job_id, [envelope] = await request_import(database, Video(source.url("/video/sample.mp4")))
    events_before = await count_events(database)
    async with build_ingester(settings) as ingester:
        with pytest.raises(ClientError):
            await ingester.handle(envelope)
        assert await count_events(database) == events_before
        assert await registry_row(database, "ext-1") is None

        async with s3_client(settings) as client:
            await client.create_bucket(Bucket=missing_bucket)
        event = await ingester.handle(envelope)  # the consumer's retry

    assert isinstance(event, VideoImported)
    [recorded] = await terminal_events(database, job_id)
    assert recorded.event == event


async def test_a_download_over_the_total_time_limit_fails_without_retry(
    stack: StackInfo, database: str, s3_bucket: str, source: VideoSource
) -> None:
    # The limit covers connecting too: long enough that a busy machine still gets
    # the request to the source (counted below) before it runs out.
    settings = settings_for(stack, database, s3_bucket, download_total_timeout=2.0)
    _, [envelope] = await request_import(database, Video(source.url("/gated/sample.mp4")))
    async with build_ingester(settings) as ingester:
        event = await asyncio.wait_for(ingester.handle(envelope), 30)
    assert isinstance(event, VideoImportFailed)
    assert (event.code, event.reason) == ("timeout", "timeout: download took longer than 2 s")
    assert source.hits["/gated/sample.mp4"] == 1
