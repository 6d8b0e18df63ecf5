"""What the stored file says, in the status read model: the projector writes it from
the results, a rebuild reproduces it (and ``--check`` names a tampered column), and
the rows projected before the size and checksum columns existed are filled from
their own events by the migration."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import asyncpg
import msgspec
import pytest
from videoimport_events import MediaInfo

from tests.integration.test_projector_readmodel import (
    caught_up,
    dump,
    finish,
    imported,
    projecting,
    request_job,
    skipped,
)
from tests.integration.test_projector_rebuild import projector_rebuild
from tests.polling import eventually

pytestmark = pytest.mark.integration

MP4 = MediaInfo(
    container="mp4",
    duration=2.0,
    width=640,
    height=360,
    frame_rate=25.0,
    video_codec="h264",
    audio_codec="aac",
    bit_rate=412345,
)
SILENT_MOV = MediaInfo(
    container="mov",
    duration=0.4,
    width=320,
    height=240,
    frame_rate=None,
    video_codec="h264",
    audio_codec=None,
    bit_rate=None,
)
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


async def media_rows(conn: asyncpg.Connection, job_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT idx, state, size, sha256, media_info::text AS media_info, poster_key"
        " FROM status_videos WHERE job_id = $1 ORDER BY idx",
        job_id,
    )
    return [
        {**dict(r), "media_info": None if r["media_info"] is None else json.loads(r["media_info"])}
        for r in rows
    ]


async def probed_job(conn: asyncpg.Connection) -> None:
    """A probed import with a poster, a probed skip without one, an import from before."""
    await request_job(conn, "jobprobed001", 3)
    first = imported("jobprobed001", 0)
    await finish(
        conn,
        msgspec.structs.replace(
            first,
            size=123456,
            sha256=SHA,
            media_info=MP4,
            poster_key=first.storage_key.removesuffix(".mp4") + ".poster.jpg",
        ),
        1,
    )
    await finish(
        conn, msgspec.structs.replace(skipped("jobprobed001", 1), media_info=SILENT_MOV), 2
    )
    await finish(conn, imported("jobprobed001", 2), 3)


async def test_results_carry_what_the_file_says_into_the_read_model_and_a_rebuild(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    async with projecting(pg_dsn):
        await probed_job(conn)
        await eventually(lambda: caught_up(conn), "the projector to catch up")

        rows = await media_rows(conn, "jobprobed001")
        assert rows == [
            {
                "idx": 0,
                "state": "success",
                "size": 123456,
                "sha256": SHA,
                "media_info": msgspec.to_builtins(MP4),
                "poster_key": "acme/media0/r.poster.jpg",
            },
            {
                "idx": 1,
                "state": "skipped",
                "size": 100,
                "sha256": "ab",
                "media_info": msgspec.to_builtins(SILENT_MOV),
                "poster_key": None,
            },
            # Recorded before files were probed: nothing made up.
            {
                "idx": 2,
                "state": "success",
                "size": 100,
                "sha256": "ab",
                "media_info": None,
                "poster_key": None,
            },
        ]

        code, out, err = await projector_rebuild(pg_dsn, "--check")
        assert (code, out.startswith("no difference")) == (0, True), out + err
        sound = await dump(conn)

        await conn.execute(
            "UPDATE status_videos SET media_info = '{\"width\": 1}', poster_key = NULL"
            " WHERE job_id = 'jobprobed001' AND idx = 0"
        )
        code, out, err = await projector_rebuild(pg_dsn, "--check")
        assert code == 1, err
        assert "status_videos: 0 only live, 0 only rebuilt, 1 differs" in out, out
        assert 'differs job_id="jobprobed001" idx=0: media_info: live {"width":1}' in out, out
        assert 'poster_key: live null, rebuilt "acme/media0/r.poster.jpg"' in out, out

        code, out, err = await projector_rebuild(pg_dsn)
        assert code == 0, err
        assert await dump(conn) == sound


async def test_the_migration_fills_size_and_checksum_of_rows_projected_before_it(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    async with projecting(pg_dsn):
        await probed_job(conn)
        await eventually(lambda: caught_up(conn), "the projector to catch up")
    sound = await dump(conn)
    # As a row projected before the columns existed has them.
    await conn.execute("UPDATE status_videos SET size = NULL, sha256 = NULL")

    migration = (
        resources.files("videoimport_eventlog.migrations")
        .joinpath("0013_status_video_size.sql")
        .read_text()
    )
    backfill = migration[migration.index("UPDATE status_videos") :]
    await conn.execute(backfill)

    assert await dump(conn) == sound
    code, out, err = await projector_rebuild(pg_dsn, "--check")
    assert (code, out.startswith("no difference")) == (0, True), out + err
