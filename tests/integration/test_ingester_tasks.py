"""The ``ingest_tasks`` queue's SQL against real PostgreSQL: order per video, fairness
limits counted across instances, leases that run out, and putting rows back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
from videoimport_eventlog import deadletters, tracking
from videoimport_events import Envelope
from videoimport_ingester.adapters import tasks
from videoimport_ingester.scheduling import Limits

from tests.polling import eventually

from .ingester_harness import Video, prepare_database, request_import

pytestmark = pytest.mark.integration

WIDE = Limits(project=100, job=100)


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    await prepare_database(pg_dsn, "sport")
    connection = await asyncpg.connect(pg_dsn)
    try:
        yield connection
    finally:
        await connection.close()


async def job(pg_dsn: str, *ids: str, project: str = "news") -> list[Envelope]:
    videos = [Video(f"http://127.0.0.1:9/{i}.mp4", external_id=i) for i in ids]
    _, envelopes = await request_import(pg_dsn, *videos, project=project)
    return envelopes


async def queue(conn: asyncpg.Connection, *envelopes: Envelope) -> None:
    for envelope in envelopes:
        assert await tasks.enqueue(conn, envelope)


async def claim(conn: asyncpg.Connection, owner: str = "one", limits: Limits = WIDE) -> str | None:
    task = await tasks.claim(conn, owner, limits, lease_seconds=60)
    return None if task is None else task.envelope.data.external_id  # type: ignore[union-attr]


async def test_enqueue_is_idempotent_and_skips_handled_requests(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    first, second = await job(pg_dsn, "a", "b")
    assert await tasks.enqueue(conn, first)
    assert not await tasks.enqueue(conn, first)  # a redelivery
    await tracking.claim_message(conn, "ingester", second.id)
    assert not await tasks.enqueue(conn, second)  # handled before: nothing to do
    task = await tasks.claim(conn, "one", WIDE, 60)
    assert task is not None
    assert (task.event_id, task.envelope, task.attempts) == (first.id, first, 0)
    assert await tasks.claim(conn, "one", WIDE, 60) is None


async def test_requests_of_one_video_run_in_log_order(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    [older] = await job(pg_dsn, "same")
    [newer, other] = await job(pg_dsn, "same", "other")
    await queue(conn, newer, other, older)  # queued out of order
    assert await claim(conn) == "same"  # the older one: lower position
    assert await claim(conn) == "other"
    assert await claim(conn) is None  # the newer waits while the older is queued
    await tasks.retry_later(conn, older.id, "one", delay=60, error="x", counted=True)
    assert await claim(conn) is None  # ... also while it backs off
    await tasks.finish(conn, older.id)
    task = await tasks.claim(conn, "one", WIDE, 60)
    assert task is not None and task.event_id == newer.id


async def test_limits_count_running_rows_of_every_instance(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    limits = Limits(project=3, job=2)
    big = await job(pg_dsn, *(f"big{i}" for i in range(5)))
    second = await job(pg_dsn, "second")
    other = await job(pg_dsn, "sport1", "sport2", project="sport")
    await queue(conn, *big, *second, *other)
    # Two instances share the counts: never more than 3 of a project or 2 of a job.
    owners = ("one", "two", "one", "two", "one")
    claimed = [await claim(conn, owner, limits) for owner in owners]
    assert claimed == ["big0", "sport1", "second", "sport2", "big1"]
    assert await claim(conn, "two", limits) is None  # news runs 3; sport has nothing left
    by_id = {e.data.external_id: e for e in [*big, *second]}  # type: ignore[union-attr]
    await tasks.finish(conn, by_id["second"].id)
    assert await claim(conn, "two", limits) is None  # news runs 2, but big is at its job limit
    await tasks.finish(conn, by_id["big0"].id)
    assert await claim(conn, "two", limits) == "big2"


async def test_the_project_and_job_with_fewest_running_go_first(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    backlog = await job(pg_dsn, *(f"a{i}" for i in range(4)))
    later = await job(pg_dsn, "later")
    other = await job(pg_dsn, "b0", project="sport")
    await queue(conn, *backlog, *later, *other)
    assert await claim(conn) == "a0"  # nothing runs: the oldest
    assert await claim(conn) == "b0"  # sport runs nothing, news one
    assert await claim(conn) == "later"  # news' other job runs nothing
    assert await claim(conn) == "a1"


async def test_a_lease_that_runs_out_makes_the_row_claimable_again(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    [envelope] = await job(pg_dsn, "a")
    await queue(conn, envelope)
    # Claimed with a lease long enough that the check below cannot outlive it on
    # a slow machine; the short one that runs out is the renewal's.
    crashed = await tasks.claim(conn, "crashed", WIDE, lease_seconds=60)
    assert crashed is not None
    assert await claim(conn, "other") is None
    assert await tasks.renew(conn, envelope.id, "crashed", 0.3)

    async def claimable() -> bool:
        return await claim(conn, "other") == "a"

    await eventually(claimable, "the lease to run out", within=10)
    assert not await tasks.renew(conn, envelope.id, "crashed", 60)  # no longer its lease


async def test_retry_later_counts_and_delays_and_release_hands_back_at_once(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    first, second = await job(pg_dsn, "a", "b")
    await queue(conn, first, second)
    assert await claim(conn) == "a"
    assert await claim(conn) == "b"
    await tasks.retry_later(conn, first.id, "one", delay=0.0, error="boom", counted=True)
    await tasks.retry_later(conn, first.id, "someone else", delay=0, error="x", counted=True)
    again = await tasks.claim(conn, "one", WIDE, 60)
    assert again is not None and (again.event_id, again.attempts) == (first.id, 1)
    await tasks.retry_later(conn, first.id, "one", delay=60, error="outage", counted=False)
    assert await claim(conn) is None  # not due for a minute
    assert await tasks.release(conn, "two", [second.id]) == 0  # not its row
    assert await tasks.release(conn, "one", [second.id]) == 1
    back = await tasks.claim(conn, "two", WIDE, 60)
    assert back is not None and (back.event_id, back.attempts) == (second.id, 0)
    row = await conn.fetchrow(
        "SELECT attempts, last_error FROM ingest_tasks WHERE event_id = $1", first.id
    )
    assert (row["attempts"], row["last_error"]) == (1, "outage")


async def test_a_dead_letter_marked_for_retry_is_queued_again(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    [parked, handled] = await job(pg_dsn, "parked", "handled")
    for envelope in (parked, handled):
        letter = await deadletters.park(
            conn,
            consumer="ingester",
            source="kafka:test/0@1",
            error="could not queue",
            attempts=5,
            event_id=envelope.id,
            position=envelope.position,
        )
        assert await deadletters.request_retry(conn, letter) is not None
    await tracking.claim_message(conn, "ingester", handled.id)  # finished meanwhile
    assert await tasks.requeue_dead_letters(conn) == 2
    rows = await conn.fetch("SELECT event_id FROM ingest_tasks")
    assert [r["event_id"] for r in rows] == [parked.id]
    states = await conn.fetch("SELECT state FROM dead_letters ORDER BY id")
    assert [s["state"] for s in states] == ["resolved", "resolved"]
    assert await tasks.requeue_dead_letters(conn) == 0


async def test_a_row_this_release_cannot_decode_is_parked_not_claimed_forever(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    future, fine = await job(pg_dsn, "future", "fine")
    await queue(conn, future, fine)
    # As if a newer release had queued an event type this one does not know.
    await conn.execute(
        "UPDATE ingest_tasks SET envelope = $2::json WHERE event_id = $1",
        future.id,
        json.dumps({"id": future.id, "type": "VideoFromTheFuture"}),
    )
    assert await tasks.claim(conn, "one", WIDE, 60) is None
    letter = await conn.fetchrow("SELECT consumer, event_id, payload FROM dead_letters")
    assert (letter["consumer"], str(letter["event_id"])) == ("ingester", future.id)
    assert b"VideoFromTheFuture" in bytes(letter["payload"])
    assert await claim(conn) == "fine"
    assert [r["event_id"] for r in await conn.fetch("SELECT event_id FROM ingest_tasks")] == [
        fine.id
    ]
