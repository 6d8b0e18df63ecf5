"""What the stored file says (ffprobe), its poster frame, and the project's size and
duration limits, through the real ingester against real PostgreSQL and S3.

The videos are made by ffmpeg (``tests/media_harness.py``) and served by a local
source; the ingester probes and decodes them from the stored objects.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from videoimport_devstack import StackInfo
from videoimport_eventlog import schema, store
from videoimport_events import (
    MediaObjectDeleted,
    VideoImported,
    VideoImportFailed,
    VideoImportSkipped,
)
from videoimport_ingester import bootstrap
from videoimport_ingester.adapters.media_probe import run_bounded
from videoimport_ingester.settings import Settings
from videoimport_ingester.sweeper import Sweeper
from videoimport_projects import ProjectConfig, create_project

from tests.media_harness import EXPECTED, VideoKind, file_name, jpeg_size, make_video
from tests.polling import eventually

from .ingester_harness import (
    CONFIG,
    PROJECT,
    Video,
    VideoSource,
    object_keys,
    read_object,
    registry_row,
    request_import,
    settings_for,
    video_source,
)

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=31)]

LIMITED = "limited"
"""A project with a 1 s duration limit and a 100 KB size limit."""


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("videos")
    for kind in EXPECTED:
        make_video(directory, kind)
    return directory


@pytest.fixture
async def source(videos: Path) -> AsyncIterator[VideoSource]:
    async with video_source(videos) as running:
        yield running


@pytest.fixture
async def settings(stack: StackInfo, pg_dsn: str, s3_bucket: str) -> Settings:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await schema.migrate(conn)
        await create_project(conn, PROJECT, CONFIG)
        limits = ProjectConfig(metadata=CONFIG.metadata, max_duration=1.0, max_file_size=100_000)
        await create_project(conn, LIMITED, limits)
    finally:
        await conn.close()
    return settings_for(stack, pg_dsn, s3_bucket)


async def import_one(settings: Settings, video: Video, project: str = PROJECT) -> object:
    _, [envelope] = await request_import(settings.database_url, video, project=project)
    async with bootstrap.build_ingester(settings) as ingester:
        return await ingester.handle(envelope)


def file_of(kind: VideoKind) -> str:
    return f"/video/{file_name(kind)}"


@pytest.mark.parametrize("kind", ["mp4", "webm", "mov", "mp4_1080p", "short_mp4"])
async def test_a_video_comes_back_with_what_the_file_says_and_a_poster(
    settings: Settings, source: VideoSource, kind: VideoKind
) -> None:
    expected = EXPECTED[kind]
    assert expected is not None
    event = await import_one(settings, Video(source.url(file_of(kind))))

    assert isinstance(event, VideoImported), event
    info = event.media_info
    assert info is not None
    assert info.duration == pytest.approx(expected.duration, abs=0.1)
    assert (info.width, info.height) == (expected.width, expected.height)
    assert info.frame_rate == pytest.approx(expected.frame_rate)
    assert (info.video_codec, info.audio_codec) == (expected.video_codec, expected.audio_codec)
    assert (info.container, event.mime_type) == (expected.container, expected.mime_type)
    assert info.bit_rate is not None and info.bit_rate > 0
    assert event.poster_key == event.storage_key.rsplit(".", 1)[0] + ".poster.jpg"
    poster, head = await read_object(settings, event.poster_key)
    assert head["ContentType"] == "image/jpeg"
    width, height = jpeg_size(poster)
    assert width == expected.poster_width
    assert height % 2 == 0
    assert abs(width / height - expected.width / expected.height) < 0.01
    assert await object_keys(settings) == sorted([event.storage_key, event.poster_key])
    row = await registry_row(settings.database_url, "ext-1")
    assert row is not None and row["poster_key"] == event.poster_key
    assert await ledger(settings) == []


async def test_a_file_that_sniffs_as_video_but_has_no_video_fails_and_leaves_nothing(
    settings: Settings, source: VideoSource
) -> None:
    event = await import_one(settings, Video(source.url(file_of("garbage"))))

    assert isinstance(event, VideoImportFailed)
    assert event.code == "unreadable_video"
    assert "X-Amz" not in event.reason  # the presigned URL stays out of the reason
    assert await object_keys(settings) == []
    assert await registry_row(settings.database_url, "ext-1") is None
    assert await ledger(settings) == []


async def test_a_video_over_the_projects_duration_limit_fails_too_long(
    settings: Settings, source: VideoSource
) -> None:
    video = Video(source.url(file_of("webm")))  # 2 s, 100 KB: only the duration is over
    event = await import_one(settings, video, project=LIMITED)

    assert isinstance(event, VideoImportFailed)
    assert (event.code, event.reason) == (
        "too_long",
        "too long: 2.008 s, the project's limit is 1 s",
    )
    assert await object_keys(settings) == []


async def test_a_video_over_the_projects_size_limit_fails_too_large(
    settings: Settings, source: VideoSource
) -> None:
    video = Video(source.url(file_of("mov")))  # 436 KB
    event = await import_one(settings, video, project=LIMITED)

    assert isinstance(event, VideoImportFailed)
    assert event.code == "too_large"
    assert "100000 bytes" in event.reason
    assert await object_keys(settings) == []


async def test_a_metadata_only_reimport_keeps_the_media_info_and_the_poster(
    settings: Settings, source: VideoSource
) -> None:
    url = source.url(file_of("mp4"))
    first = await import_one(settings, Video(url))
    again = await import_one(settings, Video(url, metadata={"title": "Renamed"}))
    same = await import_one(settings, Video(url, metadata={"title": "Renamed"}))

    assert isinstance(first, VideoImported) and isinstance(again, VideoImported)
    assert isinstance(same, VideoImportSkipped)
    assert first.media_info is not None and first.poster_key is not None
    assert (again.outcome, again.downloaded) == ("updated", False)
    assert (again.media_info, again.poster_key) == (first.media_info, first.poster_key)
    assert (same.media_info, same.poster_key) == (first.media_info, first.poster_key)
    assert source.hits[file_of("mp4")] == 1
    assert await object_keys(settings) == sorted([first.storage_key, first.poster_key])


async def test_a_redownload_makes_a_new_poster_and_the_sweeper_deletes_the_old_one(
    stack: StackInfo, settings: Settings, source: VideoSource
) -> None:
    settings = settings_for(stack, settings.database_url, settings.s3_bucket, superseded_grace=0.01)
    first = await import_one(settings, Video(source.url(file_of("mp4"))))
    second = await import_one(settings, Video(source.url(file_of("mov"))))
    assert isinstance(first, VideoImported) and isinstance(second, VideoImported)
    assert first.poster_key is not None and second.poster_key is not None
    assert second.poster_key != first.poster_key
    assert second.media_info is not None and second.media_info.container == "mov"

    swept: list[int] = []
    async with bootstrap.build_ingester(settings) as ingester:
        sweeper = Sweeper(ingester.pool, ingester.uploader, 60.0, bootstrap.retry_policy(settings))

        async def swept_both() -> bool:
            swept.append(await sweeper.sweep())
            return sum(swept) >= 2

        await eventually(swept_both, "the sweep of the old video and its poster", within=10)
    assert sum(swept) == 2

    assert await object_keys(settings) == sorted([second.storage_key, second.poster_key])
    conn = await asyncpg.connect(settings.database_url)
    try:
        events = await store.read_after(conn, 0, 10_000)
    finally:
        await conn.close()
    deleted = {e.event.storage_key for e in events if isinstance(e.event, MediaObjectDeleted)}
    assert deleted == {first.storage_key, first.poster_key}


async def ledger(settings: Settings) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return list(await conn.fetch("SELECT * FROM unsettled_uploads"))
    finally:
        await conn.close()


async def test_a_run_past_its_time_limit_is_killed_with_its_whole_process_group(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "child.pid"
    # A grandchild that would outlive a kill of the shell alone. The limit leaves a
    # busy machine time to start both and write the pid before the kill.
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    ran = await run_bounded(["sh", "-c", script], 2.0, 1000)

    assert (ran.returncode, ran.why_killed) == (None, "not finished within 2 s")
    child = int(pid_file.read_text())

    async def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        return False

    # Gone once reaped too (by init, its parent being dead): slow on a busy machine.
    await eventually(gone, "the grandchild to be killed", within=30)


async def test_a_run_that_says_too_much_is_killed() -> None:
    ran = await run_bounded(["yes"], 10.0, 1000)
    assert (ran.returncode, ran.why_killed) == (None, "more than 1000 bytes of output")
