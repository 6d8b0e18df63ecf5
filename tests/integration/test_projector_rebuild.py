"""Rebuilding the status read model without a gap, and ``rebuild --check``, against a
real PostgreSQL: the commands as processes, the live projector running alongside."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta

import asyncpg
import pytest
from videoimport_eventlog import store, tracking
from videoimport_events import VideoImported, VideoImportFailed, VideoImportSkipped

from tests.integration.test_projector_readmodel import (
    DEADLINE,
    T0,
    attempt,
    caught_up,
    completions,
    delete_object,
    dump,
    failed,
    failure,
    finish,
    imported,
    projecting,
    request_job,
    skipped,
    success,
)
from tests.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=28)]


async def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def projector_rebuild(dsn: str, *options: str, batch_size: int = 3) -> tuple[int, str, str]:
    """``python -m videoimport_projector rebuild [--check]``: (exit status, stdout, stderr)."""
    env = {"VIDEOIMPORT_DATABASE_URL": dsn, "VIDEOIMPORT_BATCH_SIZE": str(batch_size)}
    return await run("-m", "videoimport_projector", "rebuild", *options, env=env)


async def videoimport(dsn: str, *args: str) -> tuple[int, str, str]:
    """The operator CLI, as ``videoimport ARGS --database-url DSN``."""
    return await run("-m", "videoimport_projects.cli", *args, "--database-url", dsn)


async def finish_job(
    conn: asyncpg.Connection,
    events: list[VideoImported | VideoImportSkipped | VideoImportFailed],
    at: int,
) -> None:
    """The terminal events of a whole job in one transaction (a faster ``finish``)."""
    new = [
        store.NewEvent(
            event,
            stream_id=f"job-{event.job_id}/video-{event.index}",
            stream_version=1,
            correlation_id=event.job_id,
            project="acme",
            occurred_at=T0 + timedelta(seconds=at),
        )
        for event in events
    ]
    async with conn.transaction():
        await store.append(conn, new)


async def event_count(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM events")
    return count


async def mixed_workload(conn: asyncpg.Connection) -> None:
    """Imported, skipped and failed videos, an open job, webhook attempts, a deleted object."""
    hook = "https://hooks.example/in"
    await request_job(conn, "jobmixed0001", 3, webhook=hook, context={"k": "v"})
    await request_job(conn, "jobfailed001", 2, webhook=hook)
    await request_job(conn, "jobopen00001", 2)
    await finish(conn, imported("jobmixed0001", 0), 1)
    await finish(conn, skipped("jobmixed0001", 1), 2)
    await finish(conn, failed("jobmixed0001", 2), 3)
    await finish(conn, failed("jobfailed001", 0), 4)
    await finish(conn, failed("jobfailed001", 1), 5)
    await finish(conn, imported("jobopen00001", 0), 6)

    async def completed() -> bool:
        return len(await completions(conn)) == 2

    await eventually(completed, "two jobs to complete")
    await attempt(conn, "jobmixed0001", failure(1, 503, T0 + timedelta(minutes=1)), 100)
    await attempt(conn, "jobmixed0001", success(2), 160)
    await attempt(conn, "jobfailed001", failure(1, None, T0 + timedelta(minutes=5)), 200)
    await delete_object(conn, imported("jobmixed0001", 0).storage_key, 300)


async def test_check_finds_nothing_after_a_mixed_workload_and_names_every_tampered_row(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    async with projecting(pg_dsn):
        await mixed_workload(conn)
        await eventually(lambda: caught_up(conn), "the projector to catch up")

        code, out, err = await videoimport(pg_dsn, "projections", "rebuild", "--check")
        assert code == 0, err
        assert out.startswith("no difference"), out

        sound = await dump(conn)
        events = await event_count(conn)
        await conn.execute(
            "UPDATE status_videos SET state = 'failed', reason = 'tampered'"
            " WHERE job_id = 'jobmixed0001' AND idx = 0"
        )
        await conn.execute("DELETE FROM status_jobs WHERE job_id = 'jobfailed001'")
        await conn.execute(
            "INSERT INTO status_videos (job_id, idx, system_name, external_id)"
            " VALUES ('jobghost0001', 0, 'archive', 'ext-0')"
        )
        tampered = await dump(conn)

        code, out, err = await projector_rebuild(pg_dsn, "--check")
        assert code == 1, err
        assert "status_videos: 1 only live, 0 only rebuilt, 1 differs" in out, out
        assert (
            'differs job_id="jobmixed0001" idx=0: reason: live "tampered", rebuilt null;'
            ' state: live "failed", rebuilt "success"'
        ) in out, out
        assert 'only live job_id="jobghost0001" idx=0' in out, out
        assert "status_jobs: 0 only live, 1 only rebuilt, 0 differs" in out, out
        assert 'only rebuilt job_id="jobfailed001"' in out, out
        assert "projector_job_state: no difference" in out, out
        # The check changed nothing, neither the tables nor the log.
        assert await dump(conn) == tampered
        assert await event_count(conn) == events

        code, out, err = await videoimport(pg_dsn, "projections", "rebuild", "--check")
        assert code == 1
        assert "differs from a rebuild" in out and "differs from the live one" in err, out + err

        code, out, err = await videoimport(pg_dsn, "projections", "rebuild")
        assert code == 0, err
        assert "status_jobs 1, status_videos 2, projector_job_state 0" in out, out
        assert await dump(conn) == sound
        # No second JobCompleted: the rebuild decided both completions again.
        assert await event_count(conn) == events
        assert len(await completions(conn)) == 2

        code, out, err = await projector_rebuild(pg_dsn, "--check")
        assert (code, out.startswith("no difference")) == (0, True), out + err


async def test_a_rebuild_fills_a_gap_the_live_projector_left_and_completes_its_jobs(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    """The projector stopped behind the log: the rebuild brings the tables to the head
    and appends the completion the projector would have, which it later does not repeat."""
    async with projecting(pg_dsn):
        await request_job(conn, "jobbehind001", 2)
        await finish(conn, imported("jobbehind001", 0), 1)
        await eventually(lambda: caught_up(conn), "the projector to catch up")
    await finish(conn, skipped("jobbehind001", 1), 2)
    head = await conn.fetchval("SELECT max(position) FROM events")
    assert await tracking.position_of(conn, "projector") < head

    code, out, err = await projector_rebuild(pg_dsn)
    assert code == 0, err
    # The completion it appended is the log's head, and projected too.
    assert [(c.stream_id, c.position) for c in await completions(conn)] == [
        ("job-jobbehind001", head + 1)
    ]
    assert await tracking.position_of(conn, "projector") == head + 1
    state = await conn.fetchval("SELECT state FROM status_jobs WHERE job_id = 'jobbehind001'")
    assert state == "success"

    async with projecting(pg_dsn):
        await eventually(lambda: caught_up(conn), "the projector to read the completion")
    assert len(await completions(conn)) == 1
    code, out, err = await projector_rebuild(pg_dsn, "--check")
    assert code == 0, out + err


JOBS = 120
VIDEOS = 10
TARGET = "jobbulk00007"


def outcome(job_id: str, index: int) -> VideoImported | VideoImportSkipped | VideoImportFailed:
    return (imported, skipped, failed)[index % 3](job_id, index)


async def test_readers_never_see_a_partial_status_and_the_projector_goes_on_after_the_swap(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    async with projecting(pg_dsn, batch_size=100):
        for n in range(JOBS):
            job_id = f"jobbulk{n:05d}"
            await request_job(conn, job_id, VIDEOS)
            await finish_job(conn, [outcome(job_id, i) for i in range(VIDEOS)], n)

        async def settled() -> bool:
            return len(await completions(conn)) == JOBS and await caught_up(conn)

        await eventually(settled, "every job to complete and be projected", within=60)
        # Make the swap change something readers can see: the target's rows differ
        # from the rebuild until the commit, and must flip all at once.
        await conn.execute(f"UPDATE status_videos SET reason = 'old' WHERE job_id = '{TARGET}'")

        reader = await asyncpg.connect(pg_dsn)
        seen: list[tuple[int, int, int, str]] = []
        stop = asyncio.Event()

        async def read() -> tuple[int, int, int, str]:
            # The API's reads of one job, and the size of the whole model.
            videos = await reader.fetchrow(
                "SELECT count(*) AS n, count(*) FILTER (WHERE reason = 'old') AS old"
                " FROM status_videos WHERE job_id = $1",
                TARGET,
            )
            jobs = await reader.fetchval(
                "SELECT count(*) FROM status_jobs WHERE state <> 'started'"
            )
            state = await reader.fetchval("SELECT state FROM status_jobs WHERE job_id = $1", TARGET)
            return videos["n"], videos["old"], jobs, state

        async def poll() -> None:
            while not stop.is_set():
                seen.append(await read())

        try:
            seen.append(await read())
            polling = asyncio.create_task(poll())
            rebuilding = asyncio.create_task(projector_rebuild(pg_dsn, batch_size=10))
            # New work while the rebuild runs: the live projector keeps projecting.
            await request_job(conn, "jobduring001", 2)
            await finish_job(conn, [imported("jobduring001", 0), failed("jobduring001", 1)], 900)
            code, out, err = await rebuilding
            stop.set()
            await asyncio.wait_for(polling, DEADLINE)
            seen.append(await read())
        finally:
            stop.set()
            await reader.close()
        assert code == 0, err

        partial = [s for s in seen if s[0] != VIDEOS or s[1] not in (0, VIDEOS)]
        assert not partial, partial[:5]
        assert all(s[2] >= JOBS and s[3] == "success" for s in seen), seen[:5]
        assert seen[0][1] == VIDEOS and seen[-1][1] == 0, (seen[0], seen[-1])
        assert len(seen) > 20, len(seen)

        # After the swap the live projector goes on from where the rebuild left off.
        await request_job(conn, "jobafter0001", 1)
        await finish(conn, imported("jobafter0001", 0), 1000)

        async def after() -> bool:
            return len(await completions(conn)) == JOBS + 2 and await caught_up(conn)

        await eventually(after, "the jobs logged during and after the rebuild to complete")
    states = dict(
        await conn.fetch(
            "SELECT job_id, state FROM status_jobs WHERE job_id IN ('jobduring001', 'jobafter0001')"
        )
    )
    assert states == {"jobduring001": "success", "jobafter0001": "success"}
    code, out, err = await projector_rebuild(pg_dsn, "--check", batch_size=500)
    assert code == 0, out + err
