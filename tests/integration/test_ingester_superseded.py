"""Superseded media objects: deleted after the grace period, recorded once, statuses expire."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import msgspec
import pytest
from videoimport_devstack import StackInfo
from videoimport_eventlog import store
from videoimport_events import MediaObjectDeleted, VideoImported
from videoimport_ingester import bootstrap
from videoimport_ingester.sweeper import Sweeper
from videoimport_projector import handlers as projector

from tests.polling import eventually

from .ingester_harness import (
    Video,
    object_keys,
    prepare_database,
    publish,
    read_object,
    request_import,
    running_ingester,
    settings_for,
    sha256_of,
    terminal_events,
    video_source,
)

pytestmark = pytest.mark.integration


async def deletions(conn: asyncpg.Connection) -> list[store.RecordedEvent]:
    events = await store.read_after(conn, 0, 10_000)
    return [e for e in events if isinstance(e.event, MediaObjectDeleted)]


async def imported(pg_dsn: str, job_id: str) -> VideoImported:
    [result] = await terminal_events(pg_dsn, job_id)
    assert isinstance(result.event, VideoImported)
    return result.event


async def test_a_superseded_object_is_deleted_after_the_grace_and_old_statuses_expire(
    stack: StackInfo, pg_dsn: str, s3_bucket: str, topic_prefix: str, fixtures_dir: Path
) -> None:
    await prepare_database(pg_dsn)
    settings = settings_for(
        stack,
        pg_dsn,
        s3_bucket,
        topic_prefix,
        superseded_grace=1.0,
        superseded_sweep_interval=0.2,
    )
    # The instance that imports sweeps once as it starts (nothing is superseded
    # yet), then not for an hour: the rows stay to be looked at however long a
    # busy machine takes to notice the re-import. The next instance sweeps them.
    importing = msgspec.structs.replace(settings, superseded_sweep_interval=3600.0)
    conn = await asyncpg.connect(pg_dsn)
    try:
        async with video_source(fixtures_dir) as source:
            async with running_ingester(importing) as running:

                async def finished(job_id: str) -> bool:
                    running.check_alive()
                    return len(await terminal_events(pg_dsn, job_id)) == 1

                first_job, first = await request_import(
                    pg_dsn, Video(source.url("/video/sample.mp4"), external_id="a")
                )
                await publish(stack, settings, first)
                await eventually(lambda: finished(first_job), "the first import", within=60)
                second_job, second = await request_import(
                    pg_dsn, Video(source.url("/video/sample.webm"), external_id="a")
                )
                await publish(stack, settings, second)
                await eventually(lambda: finished(second_job), "the re-import", within=60)
            old, new = await imported(pg_dsn, first_job), await imported(pg_dsn, second_job)
            assert (new.outcome, new.downloaded, new.media_id) == ("updated", True, old.media_id)
            assert old.storage_key != new.storage_key
            row = await conn.fetchrow(
                "SELECT *, delete_after - superseded_at AS grace FROM superseded_objects"
                " ORDER BY storage_key"  # the video's key sorts before its poster's
            )
            assert row is not None and row["storage_key"] == old.storage_key
            assert (row["project"], row["media_id"], row["external_id"]) == (
                "news",
                old.media_id,
                "a",
            )
            assert row["grace"].total_seconds() == pytest.approx(1.0, abs=0.01)

            async with running_ingester(settings) as running:

                async def swept() -> bool:
                    running.check_alive()
                    return old.storage_key not in await object_keys(settings) and bool(
                        await deletions(conn)
                    )

                # Joining the consumer group comes first, and takes seconds.
                await eventually(swept, "the old object to be deleted", within=60)
                await asyncio.sleep(1.0)  # a few more sweeps: nothing is recorded twice
                running.check_alive()

        # The old video and its poster, each recorded once.
        assert old.poster_key is not None and new.poster_key is not None
        by_key = {
            d.event.storage_key: d
            for d in await deletions(conn)
            if isinstance(d.event, MediaObjectDeleted)
        }
        assert sorted(by_key) == sorted([old.storage_key, old.poster_key])
        deleted = by_key[old.storage_key]
        event = deleted.event
        assert isinstance(event, MediaObjectDeleted)
        assert (event.storage_key, event.media_id, event.reason) == (
            old.storage_key,
            old.media_id,
            "superseded",
        )
        assert (event.project, event.system_name, event.external_id) == ("news", "archive", "a")
        assert deleted.stream_id.startswith(f"media-{old.media_id}/deleted-")
        assert deleted.stream_version == 0
        assert await conn.fetchval("SELECT count(*) FROM superseded_objects") == 0
        # The new object is intact and still registered.
        assert await object_keys(settings) == sorted([new.storage_key, new.poster_key])
        stored, _ = await read_object(settings, new.storage_key)
        assert (
            sha256_of(stored)
            == new.sha256
            == sha256_of((fixtures_dir / "sample.webm").read_bytes())
        )
        registered = await conn.fetchval("SELECT storage_key FROM media WHERE external_id = 'a'")
        assert registered == new.storage_key

        # The projector marks the old job's video expired, and only that one.
        await projector.catch_up(conn, 3)
        expired = {
            r["job_id"]: r["link_expired"]
            for r in await conn.fetch("SELECT job_id, link_expired FROM status_videos")
        }
        assert expired == {first_job: True, second_job: False}
    finally:
        await conn.close()


async def test_the_sweeper_is_idempotent_and_grace_zero_keeps_objects(
    stack: StackInfo, pg_dsn: str, s3_bucket: str, fixtures_dir: Path
) -> None:
    """A crash between the S3 delete and the commit, or a repeat after it, is harmless."""
    await prepare_database(pg_dsn)
    settings = settings_for(stack, pg_dsn, s3_bucket)
    insert = (
        "INSERT INTO superseded_objects (storage_key, project, media_id, system_name,"
        " external_id, delete_after) VALUES ($1, 'news', 'm1', 'archive', 'a', $2)"
    )
    data = (fixtures_dir / "sample.mp4").read_bytes()
    async with bootstrap.build_ingester(settings) as ingester:
        sweeper = Sweeper(ingester.pool, ingester.uploader, 0.2, bootstrap.retry_policy(settings))
        client = ingester.uploader.client
        for key in ("news/m1/due.mp4", "news/m1/kept.mp4"):
            await client.put_object(Bucket=s3_bucket, Key=key, Body=data)
        async with ingester.pool.acquire() as conn:
            # Due; and one with no delete_after (grace <= 0): never deleted.
            await conn.execute(insert, "news/m1/due.mp4", None)
            await conn.execute("UPDATE superseded_objects SET delete_after = now()")
            await conn.execute(insert, "news/m1/kept.mp4", None)
            assert await sweeper.sweep() == 1
            assert await object_keys(settings) == ["news/m1/kept.mp4"]
            assert len(await deletions(conn)) == 1
            # The row again (as if the commit had not happened): deleted again, and
            # the log keeps its single event.
            await conn.execute(insert, "news/m1/due.mp4", None)
            await conn.execute(
                "UPDATE superseded_objects SET delete_after = now()"
                " WHERE storage_key = 'news/m1/due.mp4'"
            )
            assert await sweeper.sweep() == 1
            assert len(await deletions(conn)) == 1
            remaining = await conn.fetch("SELECT storage_key FROM superseded_objects")
            assert [r["storage_key"] for r in remaining] == ["news/m1/kept.mp4"]
            assert await sweeper.sweep() == 0
        assert await object_keys(settings) == ["news/m1/kept.mp4"]
