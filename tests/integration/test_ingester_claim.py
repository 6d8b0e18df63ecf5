"""The claim's cost against real PostgreSQL: it reads a few rows per job, not the
queue, and keeps the fair order with running, delayed and blocked rows about; a
recorded result takes its queue row with it in the same transaction."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from videoimport_events import Envelope, VideoImportFailed
from videoimport_ingester.adapters import tasks
from videoimport_ingester.bootstrap import build_ingester
from videoimport_ingester.scheduling import Limits

from tests.conftest import StackInfo

from .ingester_harness import Video, prepare_database, request_import, settings_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    await prepare_database(pg_dsn, "sport", "films")
    connection = await asyncpg.connect(pg_dsn)
    try:
        yield connection
    finally:
        await connection.close()


async def job(pg_dsn: str, project: str, ids: list[str]) -> list[Envelope]:
    videos = [Video(f"http://127.0.0.1:9/{i}.mp4", external_id=i) for i in ids]
    _, envelopes = await request_import(pg_dsn, *videos, project=project)
    return envelopes


async def queue(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
    for envelope in envelopes:
        assert await tasks.enqueue(conn, envelope)


def blocks_read(plan: Any) -> int:
    """Shared buffers the whole plan touched (hit or read)."""
    node = plan[0]["Plan"]
    return int(node["Shared Hit Blocks"]) + int(node["Shared Read Blocks"])


async def test_a_claim_reads_a_few_rows_per_job_not_the_whole_queue(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    big = [await job(pg_dsn, project, [f"{project}-{j}-{i}" for i in range(1500)])
           for project in ("news", "sport") for j in range(2)]  # fmt: skip
    small = await job(pg_dsn, "films", ["f0", "f1"])
    for envelopes in [*big, small]:
        await queue(conn, envelopes)
    await conn.execute("ANALYZE ingest_tasks")
    pages = await conn.fetchval(
        "SELECT pg_relation_size('ingest_tasks') / current_setting('block_size')::int"
    )
    plan = json.loads(
        await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {tasks._CANDIDATES}")
    )
    # 5 jobs: a handful of index pages per job, however long each job is.
    assert blocks_read(plan) < 150 < pages

    limits = Limits(project=2, job=2)
    claimed = [await tasks.claim(conn, "one", limits, 60) for _ in range(6)]
    requests = [t.envelope.data for t in claimed if t is not None]
    # The project with the fewest running first (then the oldest), and within a
    # project the job with the fewest running.
    assert [r.project for r in requests] == ["news", "sport", "films"] * 2  # type: ignore[union-attr]
    assert requests[0].job_id != requests[3].job_id  # type: ignore[union-attr]
    assert await tasks.claim(conn, "one", limits, 60) is None  # every project at its limit


async def test_running_delayed_and_blocked_rows_are_passed_over_for_the_next_one(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    first = await job(pg_dsn, "news", ["a", "b", "c", "d"])
    again = await job(pg_dsn, "news", ["a", "e"])  # "a" waits for the first job's "a"
    await queue(conn, [*first, *again])
    wide = Limits(project=100, job=100)
    taken = await tasks.claim(conn, "one", wide, 60)
    assert taken is not None and taken.event_id == first[0].id
    await tasks.retry_later(conn, first[1].id, "nobody", delay=0, error="x", counted=False)
    await conn.execute(
        "UPDATE ingest_tasks SET not_before = now() + interval '1 hour' WHERE event_id = $1",
        first[1].id,
    )
    order = [await tasks.claim(conn, "one", wide, 60) for _ in range(3)]
    ids = [t.event_id for t in order if t is not None]
    # Per job the oldest claimable: "b" is delayed, the second "a" waits for the first.
    assert sorted(ids) == sorted([first[2].id, again[1].id, first[3].id])
    assert await tasks.claim(conn, "one", wide, 60) is None
    # A lease that ran out makes its row the job's head again.
    await conn.execute(
        "UPDATE ingest_tasks SET lease_until = now() - interval '1 second' WHERE event_id = $1",
        first[2].id,
    )
    retaken = await tasks.claim(conn, "two", wide, 60)
    assert retaken is not None and retaken.event_id == first[2].id


async def test_the_result_commit_deletes_the_queue_row(
    stack: StackInfo, pg_dsn: str, s3_bucket: str, conn: asyncpg.Connection
) -> None:
    (envelope,) = await job(pg_dsn, "news", ["gone"])
    await queue(conn, [envelope])
    assert await tasks.claim(conn, "one", Limits(project=1, job=1), 60) is not None
    async with build_ingester(settings_for(stack, pg_dsn, s3_bucket)) as ingester:
        event = await ingester.fail(envelope, "internal_error", "given up")
        assert isinstance(event, VideoImportFailed)
        assert await conn.fetchval("SELECT count(*) FROM ingest_tasks") == 0
        # Handled already: nothing appended, and the caller finishes a row if any.
        assert await ingester.fail(envelope, "internal_error", "given up") is None
