"""The uploads ledger (``unsettled_uploads``): after a SIGKILL at any point, no
incomplete multipart upload and no object that nothing references.

Real PostgreSQL and s3rver throughout. s3rver keeps each multipart upload's parts
in ``<data>/<bucket>/._S3rver_uploads/<uploadId>/`` until it is completed or
aborted (it cannot list uploads), so that directory is what is checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
import msgspec
import pytest
from botocore.exceptions import ClientError
from videoimport_devstack import StackInfo
from videoimport_eventlog import tracking
from videoimport_events import Envelope, VideoImported, VideoImportFailed, VideoImportSkipped
from videoimport_ingester import bootstrap, domain
from videoimport_ingester.adapters import tasks
from videoimport_ingester.adapters.unsettled_uploads import UnsettledUploads
from videoimport_ingester.bootstrap import build_ingester
from videoimport_ingester.handlers import Ingester
from videoimport_ingester.scheduling import Limits
from videoimport_ingester.settings import Settings
from videoimport_ingester.sweeper import Sweeper
from videoimport_projects import media_decision

from tests.polling import eventually

from .ingester_harness import (
    MIB,
    PROJECT,
    Video,
    metric,
    object_keys,
    prepare_database,
    process_env,
    publish,
    read_object,
    request_import,
    running_ingester,
    settings_for,
    sha256_of,
    terminal_events,
    video_source,
)

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=31)]

PART = 5 * MIB
CLEANED = "videoimport_ingester_unsettled_uploads_cleaned_total"


def s3rver_uploads(stack: StackInfo, bucket: str) -> Path:
    """The bucket's multipart upload directory of the s3rver serving ``stack``."""
    port = str(urlparse(stack.s3_endpoint).port)
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        s3rver = any(a.endswith("server.js") for a in args) and "--directory" in args
        if s3rver and "--port" in args and args[args.index("--port") + 1] == port:
            return Path(args[args.index("--directory") + 1]) / bucket / "._S3rver_uploads"
    raise AssertionError(f"no s3rver process listening on port {port}")


def open_uploads(stack: StackInfo, bucket: str) -> set[str]:
    uploads = s3rver_uploads(stack, bucket)
    return {p.name for p in uploads.iterdir() if p.is_dir()} if uploads.is_dir() else set()


async def ledger(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT request_id, storage_key, upload_id FROM unsettled_uploads ORDER BY id"
    )
    return [dict(r) for r in rows]


def key_of(envelope: Envelope, extension: str = ".mp4") -> str:
    request = envelope.data
    media_id = media_decision.media_id_for(PROJECT, request.system_name, request.external_id)  # type: ignore[union-attr]
    return domain.storage_key(PROJECT, media_id, envelope.id, extension)


async def abandoned_multipart(ingester: Ingester, envelope: Envelope, key: str) -> str:
    """What a worker killed mid-upload leaves: its ledger entry with the upload id,
    and the upload with one part. Returns the upload id."""
    journal = UnsettledUploads(ingester.pool, ingester.uploader).journal(envelope.id)
    entry = await journal.writing(key)
    client, bucket = ingester.uploader.client, ingester.uploader.bucket
    created = await client.create_multipart_upload(Bucket=bucket, Key=key, ContentType="video/mp4")
    upload_id = created["UploadId"]
    await journal.multipart(entry, upload_id)
    await client.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=os.urandom(PART)
    )
    return upload_id


async def abandoned_object(ingester: Ingester, envelope: Envelope, key: str, body: bytes) -> None:
    """What a worker killed after its PutObject, before its commit, leaves."""
    journal = UnsettledUploads(ingester.pool, ingester.uploader).journal(envelope.id)
    await journal.writing(key)
    await ingester.uploader.client.put_object(
        Bucket=ingester.uploader.bucket, Key=key, Body=body, ContentType="video/mp4"
    )


async def assert_aborted(ingester: Ingester, key: str, upload_id: str) -> None:
    """Gone from disk, and S3 agrees: a second abort finds no such upload."""
    with pytest.raises(ClientError) as raised:
        await ingester.uploader.client.abort_multipart_upload(
            Bucket=ingester.uploader.bucket, Key=key, UploadId=upload_id
        )
    assert raised.value.response["Error"]["Code"] == "NoSuchUpload"


def janitor(ingester: Ingester, settings: Settings, grace: float = 3600.0) -> Sweeper:
    policy = bootstrap.retry_policy(settings)
    return Sweeper(ingester.pool, ingester.uploader, 0.2, policy, unsettled_grace=grace)


async def age(conn: asyncpg.Connection, seconds: float) -> None:
    await conn.execute(
        "UPDATE unsettled_uploads SET started_at = now() - make_interval(secs => $1)", seconds
    )


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    await prepare_database(pg_dsn)
    connection = await asyncpg.connect(pg_dsn)
    try:
        yield connection
    finally:
        await connection.close()


async def test_the_janitor_aborts_what_a_killed_worker_left_of_a_handled_request(
    stack: StackInfo, pg_dsn: str, conn: asyncpg.Connection, s3_bucket: str
) -> None:
    """Killed mid-upload; a retry committed and was killed before settling."""
    settings = settings_for(stack, pg_dsn, s3_bucket)
    _, [envelope] = await request_import(pg_dsn, Video("http://videos.example/a.mp4"))
    key = key_of(envelope)
    async with build_ingester(settings) as ingester:
        upload_id = await abandoned_multipart(ingester, envelope, key)
        assert open_uploads(stack, s3_bucket) == {upload_id}
        await tracking.claim_message(conn, domain.CONSUMER, envelope.id)
        sweeper = janitor(ingester, settings)
        assert await sweeper.clean_uploads() == 0  # younger than the grace
        assert len(await ledger(conn)) == 1

        await age(conn, 3601)
        cleaned = metric(CLEANED, by="janitor")
        assert await sweeper.clean_uploads() == 1
        assert open_uploads(stack, s3_bucket) == set()
        await assert_aborted(ingester, key, upload_id)
        assert await ledger(conn) == []
        assert await object_keys(settings) == []
        assert metric(CLEANED, by="janitor") == cleaned + 1
        assert await sweeper.clean_uploads() == 0

        # Killed between the abort and forgetting the entry: the next round
        # aborts again (S3 says NoSuchUpload) and forgets it.
        journal = UnsettledUploads(ingester.pool, ingester.uploader).journal(envelope.id)
        await journal.multipart(await journal.writing(key), upload_id)
        await age(conn, 3601)
        assert await sweeper.clean_uploads() == 1
        assert await ledger(conn) == []


async def test_the_next_claim_of_a_handled_request_settles_its_leftovers(
    stack: StackInfo, pg_dsn: str, conn: asyncpg.Connection, s3_bucket: str
) -> None:
    """Killed after the commit, before settling: the queue row is still there, and
    the worker that claims it again finds the request handled and settles."""
    settings = settings_for(stack, pg_dsn, s3_bucket)
    _, [envelope] = await request_import(pg_dsn, Video("http://videos.example/a.mp4"))
    key = key_of(envelope)
    async with build_ingester(settings) as ingester:
        upload_id = await abandoned_multipart(ingester, envelope, key)
        await abandoned_object(ingester, envelope, key_of(envelope, ".webm"), b"earlier attempt")
        await tracking.claim_message(conn, domain.CONSUMER, envelope.id)
        assert await ingester.handle(envelope) is None
        assert open_uploads(stack, s3_bucket) == set()
        await assert_aborted(ingester, key, upload_id)
        assert await object_keys(settings) == []
        assert await ledger(conn) == []


async def test_a_lease_run_out_loses_its_upload_and_the_retry_settles_the_rest(
    stack: StackInfo, pg_dsn: str, conn: asyncpg.Connection, s3_bucket: str, fixtures_dir: Path
) -> None:
    settings = settings_for(stack, pg_dsn, s3_bucket)
    async with video_source(fixtures_dir) as source:
        _, [envelope] = await request_import(pg_dsn, Video(source.url("/video/sample.mp4")))
        key = key_of(envelope)
        await tasks.enqueue(conn, envelope)
        claimed = await tasks.claim(conn, "killed-worker", Limits(project=6, job=6), 0.05)
        assert claimed is not None
        async with build_ingester(settings) as ingester:
            upload_id = await abandoned_multipart(ingester, envelope, key)
            await age(conn, 3601)
            await asyncio.sleep(0.1)  # the killed worker renews nothing
            assert await janitor(ingester, settings).clean_uploads() == 1
            assert open_uploads(stack, s3_bucket) == set()
            await assert_aborted(ingester, key, upload_id)
            # Not handled yet: the retry may still register this key, so the
            # entry stays (without its upload) for the request's own commit.
            assert await ledger(conn) == [
                {"request_id": envelope.id, "storage_key": key, "upload_id": None}
            ]

            event = await ingester.handle(envelope)
        assert isinstance(event, VideoImported)
        assert event.storage_key == key and event.poster_key is not None
        assert await ledger(conn) == []
        assert await object_keys(settings) == sorted([key, event.poster_key])


async def test_a_live_upload_is_never_touched(
    stack: StackInfo, pg_dsn: str, conn: asyncpg.Connection, s3_bucket: str
) -> None:
    settings = settings_for(stack, pg_dsn, s3_bucket)
    _, [live, young] = await request_import(
        pg_dsn,
        Video("http://videos.example/live.mp4", external_id="live"),
        Video("http://videos.example/young.mp4", external_id="young"),
    )
    await tasks.enqueue(conn, live)
    assert await tasks.claim(conn, "live-worker", Limits(project=6, job=6), 60.0) is not None
    async with build_ingester(settings) as ingester:
        live_upload = await abandoned_multipart(ingester, live, key_of(live))
        await age(conn, 7200)
        # Handled, but its entry is younger than the grace.
        young_upload = await abandoned_multipart(ingester, young, key_of(young))
        await tracking.claim_message(conn, domain.CONSUMER, young.id)
        before = await ledger(conn)

        assert await janitor(ingester, settings).clean_uploads() == 0
        assert open_uploads(stack, s3_bucket) == {live_upload, young_upload}
        assert await ledger(conn) == before
        # Without a grace the handled one goes; the leased one still stays.
        assert await janitor(ingester, settings, grace=0.0).clean_uploads() == 1
        assert open_uploads(stack, s3_bucket) == {live_upload}
        assert [e["request_id"] for e in await ledger(conn)] == [live.id]
        await ingester.uploader.abort(key_of(live), live_upload)


async def test_an_earlier_attempts_object_is_deleted_when_the_retry_fails(
    stack: StackInfo, pg_dsn: str, conn: asyncpg.Connection, s3_bucket: str, fixtures_dir: Path
) -> None:
    settings = settings_for(stack, pg_dsn, s3_bucket)
    sample = (fixtures_dir / "sample.mp4").read_bytes()
    async with video_source(fixtures_dir) as source:
        _, [envelope] = await request_import(pg_dsn, Video(source.url("/missing.mp4")))
        async with build_ingester(settings) as ingester:
            # The source served the video then, and the worker was killed after
            # its PutObject; the source is gone now.
            await abandoned_object(ingester, envelope, key_of(envelope), sample)
            cleaned = metric(CLEANED, by="request")
            event = await ingester.handle(envelope)
    assert isinstance(event, VideoImportFailed)
    assert event.code == "download_failed"
    assert await object_keys(settings) == []
    assert await ledger(conn) == []
    assert metric(CLEANED, by="request") == cleaned + 1


async def test_a_retry_that_ends_differently_leaves_only_what_the_registry_references(
    stack: StackInfo, pg_dsn: str, conn: asyncpg.Connection, s3_bucket: str, fixtures_dir: Path
) -> None:
    settings = settings_for(stack, pg_dsn, s3_bucket)
    sample = (fixtures_dir / "sample.mp4").read_bytes()
    async with video_source(fixtures_dir) as source:
        url = source.url("/video/sample.mp4")
        _, [first] = await request_import(pg_dsn, Video(url, external_id="a"))
        _, [moot] = await request_import(pg_dsn, Video(url, external_id="a"))
        _, [webm] = await request_import(
            pg_dsn, Video(source.url("/video/sample.webm"), external_id="b")
        )
        async with build_ingester(settings) as ingester:
            created = await ingester.handle(first)
            assert isinstance(created, VideoImported)
            # An earlier attempt of the same video's next request downloaded it,
            # and was killed; now the registry has it: a skip, no download.
            await abandoned_object(ingester, moot, key_of(moot), sample)
            assert isinstance(await ingester.handle(moot), VideoImportSkipped)
            # An earlier attempt sniffed another extension, and one of the same
            # key as the retry's stopped mid-upload.
            await abandoned_object(ingester, webm, key_of(webm, ".mp4"), sample)
            stale_upload = await abandoned_multipart(ingester, webm, key_of(webm, ".webm"))
            imported = await ingester.handle(webm)
            await assert_aborted(ingester, key_of(webm, ".webm"), stale_upload)
    assert isinstance(imported, VideoImported)
    assert imported.storage_key == key_of(webm, ".webm")
    assert open_uploads(stack, s3_bucket) == set()
    assert created.poster_key is not None and imported.poster_key is not None
    kept = [created.storage_key, created.poster_key, imported.storage_key, imported.poster_key]
    assert await object_keys(settings) == sorted(kept)
    stored, _ = await read_object(settings, imported.storage_key)
    assert (
        sha256_of(stored)
        == imported.sha256
        == sha256_of((fixtures_dir / "sample.webm").read_bytes())
    )
    assert await ledger(conn) == []


async def test_normal_imports_leave_the_ledger_empty(
    stack: StackInfo,
    pg_dsn: str,
    conn: asyncpg.Connection,
    s3_bucket: str,
    topic_prefix: str,
    fixtures_dir: Path,
    tmp_path: Path,
) -> None:
    big = big_video(tmp_path, fixtures_dir)
    settings = settings_for(stack, pg_dsn, s3_bucket, topic_prefix)
    cleaned = metric(CLEANED, by="request")
    async with video_source(fixtures_dir, big) as source:
        job_id, envelopes = await request_import(
            pg_dsn,
            Video(source.url("/video/sample.mp4"), external_id="small"),
            Video(source.url("/big.mp4"), external_id="big"),
            Video(source.url("/missing.mp4"), external_id="missing"),
        )
        async with running_ingester(settings) as running:
            await publish(stack, settings, envelopes)

            async def finished() -> bool:
                running.check_alive()
                return len(await terminal_events(pg_dsn, job_id)) == 3

            await eventually(finished, "the job", within=60)
    states = sorted(type(r.event).__name__ for r in await terminal_events(pg_dsn, job_id))
    assert states == ["VideoImportFailed", "VideoImported", "VideoImported"]
    assert await ledger(conn) == []
    assert open_uploads(stack, s3_bucket) == set()
    rows = await conn.fetch("SELECT storage_key, poster_key FROM media")
    registered = {key for row in rows for key in row}  # each video and its poster
    assert set(await object_keys(settings)) == registered and len(registered) == 4
    assert metric(CLEANED, by="request") == cleaned  # nothing was left to clean


async def test_sigkill_mid_multipart_then_a_restart_leaves_nothing_behind(
    stack: StackInfo,
    pg_dsn: str,
    conn: asyncpg.Connection,
    s3_bucket: str,
    topic_prefix: str,
    fixtures_dir: Path,
    tmp_path: Path,
) -> None:
    big = big_video(tmp_path, fixtures_dir)
    settings = settings_for(stack, pg_dsn, s3_bucket, topic_prefix, download_min_rate=0.0)
    # The killed instance's lease is short, so the restart does not wait a minute
    # for it; with one worker, a renewal that comes late on a busy machine cannot
    # let another worker of that instance claim the video a second time.
    killed = msgspec.structs.replace(settings, ingester_lease_seconds=2.0, ingester_concurrency=1)
    async with video_source(fixtures_dir, big) as source:
        job_id, envelopes = await request_import(pg_dsn, Video(source.url("/stall-big.mp4")))
        await publish(stack, settings, envelopes)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "videoimport_ingester",
            env=process_env(killed),
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:

            async def first_part_stored() -> bool:
                assert process.returncode is None
                entries = await ledger(conn)
                upload_id: str | None = entries[0]["upload_id"] if entries else None
                if upload_id is None:
                    return False
                return (s3rver_uploads(stack, s3_bucket) / upload_id / "1.md5").is_file()

            # A new process: its imports and group join are slow on a saturated machine.
            await eventually(first_part_stored, "the first part to be stored", within=120)
        finally:
            process.kill()  # SIGKILL: no abort, no release
            await process.wait()
        [left] = await ledger(conn)
        assert open_uploads(stack, s3_bucket) == {left["upload_id"]}

        source.gate.set()
        async with running_ingester(settings) as running:

            async def finished() -> bool:
                running.check_alive()
                return len(await terminal_events(pg_dsn, job_id)) == 1

            await eventually(finished, "the restarted ingester to finish", within=60)
    [result] = await terminal_events(pg_dsn, job_id)
    assert isinstance(result.event, VideoImported)
    assert result.event.storage_key == left["storage_key"]
    assert open_uploads(stack, s3_bucket) == set()
    assert await ledger(conn) == []
    poster = result.event.poster_key
    assert await object_keys(settings) == sorted([left["storage_key"], poster])
    stored, _ = await read_object(settings, left["storage_key"])
    assert sha256_of(stored) == hashlib.sha256(big.read_bytes()).hexdigest()


def big_video(directory: Path, fixtures_dir: Path) -> Path:
    """A valid MP4 start, then random bytes: 12 MiB, two and a half parts."""
    path = directory / "big.mp4"
    with path.open("wb") as f:
        f.write((fixtures_dir / "sample.mp4").read_bytes())
        f.write(os.urandom(12 * MIB - f.tell()))
    return path
