"""The PostgreSQL event log: commit order, optimistic concurrency, tamper evidence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from videoimport_eventlog import audit_trail, schema, store, tracking
from videoimport_eventlog.runtime import skip_pool_reset
from videoimport_eventlog.store import NewEvent, StreamConflict
from videoimport_eventlog.subscription import LogHead
from videoimport_events import MAX_EVENT_BYTES, VideoImportFailed

from tests.requests import append_unknown_event


def failed(index: int, job: str = "job1") -> VideoImportFailed:
    return VideoImportFailed(
        job_id=job,
        project="p",
        index=index,
        system_name="s",
        external_id=f"x{index}",
        reason="r",
        code="c",
    )


def new(index: int, version: int = 1, job: str = "job1") -> NewEvent:
    return NewEvent(
        event=failed(index, job),
        stream_id=f"job-{job}/video-{index}",
        stream_version=version,
        correlation_id=job,
        project="p",
    )


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_dsn)
    await schema.migrate(connection)
    yield connection
    await connection.close()


async def test_appends_get_consecutive_positions_and_read_back_typed(
    conn: asyncpg.Connection,
) -> None:
    async with conn.transaction():
        assert await store.append(conn, [new(0), new(1)]) == [1, 2]
    async with conn.transaction():
        assert await store.append(conn, [new(2)]) == [3]
    events = await store.read_after(conn, 0)
    assert [e.position for e in events] == [1, 2, 3]
    assert [e.event for e in events] == [failed(0), failed(1), failed(2)]
    assert events[0].event_type == "VideoImportFailed"
    assert await store.read_after(conn, 2) == events[2:]


async def test_append_outside_a_transaction_is_refused(conn: asyncpg.Connection) -> None:
    with pytest.raises(RuntimeError, match="inside the caller's transaction"):
        await store.append(conn, [new(0)])
    assert await store.read_after(conn, 0) == []


async def test_same_stream_version_twice_conflicts_and_writes_nothing(
    conn: asyncpg.Connection,
) -> None:
    async with conn.transaction():
        await store.append(conn, [new(0)])
    with pytest.raises(StreamConflict):
        async with conn.transaction():
            await store.append(conn, [new(1), new(0)])
    assert [e.stream_id for e in await store.read_after(conn, 0)] == ["job-job1/video-0"]


async def test_skip_existing_appends_only_what_is_new(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        await store.append(conn, [new(0)])
    async with conn.transaction():
        assert await store.append(conn, [new(0), new(1)], skip_existing=True) == [2]
    assert len(await store.read_after(conn, 0)) == 2


async def test_a_late_committing_append_is_never_skipped_by_a_reader(pg_dsn: str) -> None:
    """Positions follow commit order: a reader never sees n+1 while n is uncommitted."""
    first = await asyncpg.connect(pg_dsn)
    second = await asyncpg.connect(pg_dsn)
    reader = await asyncpg.connect(pg_dsn)
    try:
        await schema.migrate(first)
        slow = first.transaction()
        await slow.start()
        await store.append(first, [new(0)])

        async def fast_append() -> list[int]:
            async with second.transaction():
                return await store.append(second, [new(1)])

        fast = asyncio.create_task(fast_append())
        # The fast writer must be waiting for the slow one, not overtaking it.
        deadline = asyncio.get_running_loop().time() + 10
        while not await reader.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ):
            assert asyncio.get_running_loop().time() < deadline, "second append never waited"
            await asyncio.sleep(0.02)
        assert await store.read_after(reader, 0) == []
        assert not fast.done()
        await slow.commit()
        assert await fast == [2]
        assert [e.position for e in await store.read_after(reader, 0)] == [1, 2]
        # The waiting append read the head only once the lock was its own.
        assert await audit_trail.verify_chain(reader) == 2
    finally:
        for c in (first, second, reader):
            await c.close()


async def test_an_append_notifies_its_last_position_once_at_commit(pg_dsn: str) -> None:
    writer = await asyncpg.connect(pg_dsn)
    listener = await asyncpg.connect(pg_dsn)
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        await schema.migrate(writer)
        await listener.add_listener(store.NOTIFY_CHANNEL, lambda *args: heard.put_nowait(args[3]))
        async with writer.transaction():
            await store.append(writer, [new(0), new(1), new(2)])
            await listener.fetchval("SELECT 1")  # a round trip: anything sent has arrived
            assert heard.empty()
        assert await asyncio.wait_for(heard.get(), 10) == "3"
        with pytest.raises(StreamConflict):
            async with writer.transaction():
                await store.append(writer, [new(3), new(0)])
        async with writer.transaction():
            await store.append(writer, [new(3)])
        assert await asyncio.wait_for(heard.get(), 10) == "4"  # nothing from the conflict
    finally:
        await listener.close()
        await writer.close()


async def test_an_event_too_large_is_refused_before_anything_is_written(
    conn: asyncpg.Connection,
) -> None:
    huge = NewEvent(
        event=VideoImportFailed(
            job_id="job1",
            project="p",
            index=1,
            system_name="s",
            external_id="x1",
            reason="r" * MAX_EVENT_BYTES,
            code="c",
        ),
        stream_id="job-job1/video-1",
        stream_version=1,
        correlation_id="job1",
        project="p",
    )
    with pytest.raises(store.EventTooLarge, match="VideoImportFailed for job-job1/video-1"):
        async with conn.transaction():
            await store.append(conn, [new(0), huge])
    assert await store.read_after(conn, 0) == []


async def test_every_column_round_trips_including_a_null_causation(
    conn: asyncpg.Connection,
) -> None:
    caused = NewEvent(
        event=failed(1),
        stream_id="job-job1/video-1",
        stream_version=1,
        correlation_id="job1",
        project="p",
        causation_id="cause-1",
    )
    async with conn.transaction():
        await store.append(conn, [new(0), caused])
    first, second = await store.read_after(conn, 0)
    assert (first.causation_id, second.causation_id) == (None, "cause-1")
    assert (second.event_id, second.occurred_at) == (caused.event_id, caused.occurred_at)
    assert await audit_trail.verify_chain(conn) == 2


async def test_the_log_refuses_updates_and_deletes(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        await store.append(conn, [new(0)])
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("UPDATE events SET project = 'other'")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("DELETE FROM events")


async def test_hash_chain_detects_an_altered_event(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        await store.append(conn, [new(0), new(1), new(2)])
    assert await audit_trail.verify_chain(conn) == 3
    # Someone with table-owner rights bypasses the trigger and edits history.
    await conn.execute("ALTER TABLE events DISABLE TRIGGER events_immutable")
    await conn.execute(
        "UPDATE events SET data = replace(data::text, '\"r\"', '\"edited\"')::json"
        " WHERE position = 2"
    )
    with pytest.raises(store.ChainBroken, match="position 2: hash mismatch") as broken:
        await audit_trail.verify_chain(conn)
    assert broken.value.position == 2
    await conn.execute("DELETE FROM events WHERE position = 2")
    with pytest.raises(ValueError, match="position 2: missing"):
        await audit_trail.verify_chain(conn)


@pytest.mark.parametrize(
    "edit",
    [
        "occurred_at = occurred_at - interval '1 day'",
        "occurred_at = occurred_at + interval '1 microsecond'",
        "recorded_at = recorded_at + interval '1 second'",
        "correlation_id = 'another-job'",
        "causation_id = 'someone-else'",
        "project = 'other'",
        "schema_version = 2",
        # Passing the row off as sealed by the first release's weaker formula.
        "chain_version = 1",
        "chain_version = 3",
    ],
)
async def test_the_chain_covers_when_and_which_job(conn: asyncpg.Connection, edit: str) -> None:
    async with conn.transaction():
        await store.append(conn, [new(0), new(1), new(2)])
    await conn.execute("ALTER TABLE events DISABLE TRIGGER events_immutable")
    await conn.execute(f"UPDATE events SET {edit} WHERE position = 2")
    with pytest.raises(store.ChainBroken) as broken:
        await audit_trail.verify_chain(conn)
    assert broken.value.position == 2


async def test_hash_chain_detects_reordered_events(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        await store.append(conn, [new(0), new(1), new(2)])
    await conn.execute("ALTER TABLE events DISABLE TRIGGER events_immutable")
    # Swap two whole rows, hashes included.
    await conn.execute("UPDATE events SET position = -position WHERE position IN (2, 3)")
    await conn.execute("UPDATE events SET position = 5 + position WHERE position IN (-2, -3)")
    with pytest.raises(store.ChainBroken, match="position 2: hash mismatch"):
        await audit_trail.verify_chain(conn)


async def test_rows_sealed_by_either_chain_version_verify_in_one_log(
    conn: asyncpg.Connection,
) -> None:
    async with conn.transaction():
        await store.append(conn, [new(0)])
    # A writer of the first release (no chain_version, no recorded_at) during a
    # rolling deploy, then this release's again.
    await append_unknown_event(conn, "FutureThing", b'{"type":"FutureThing"}', "job1")
    async with conn.transaction():
        await store.append(conn, [new(1), new(2)], skip_existing=True)
    versions = await conn.fetch("SELECT chain_version FROM events ORDER BY position")
    assert [r["chain_version"] for r in versions] == [2, 1, 2, 2]
    verified = await audit_trail.check_chain(conn, batch=2)
    assert verified.checked == 4
    assert verified.head == await conn.fetchval("SELECT hash FROM events WHERE position = 4")


async def test_an_append_seals_the_recorded_at_it_stores(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        await store.append(conn, [new(0), new(1)])
    async with conn.transaction():
        await store.append(conn, [new(2)])
    rows = await conn.fetch("SELECT recorded_at FROM events ORDER BY position")
    # One append, one moment (read under the append lock); later appends later.
    assert rows[0]["recorded_at"] == rows[1]["recorded_at"] < rows[2]["recorded_at"]
    assert await audit_trail.verify_chain(conn) == 3


async def test_inbox_claims_a_message_once(conn: asyncpg.Connection) -> None:
    assert await tracking.claim_message(conn, "ingester", "m1") is True
    assert await tracking.claim_message(conn, "ingester", "m1") is False
    assert await tracking.claim_message(conn, "notifier", "m1") is True
    assert await tracking.was_handled(conn, "ingester", "m1")


async def test_tracking_position_survives_and_is_per_reader(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        assert await tracking.lock_position(conn, "projector") == 0
        await tracking.save_position(conn, "projector", 42)
    assert await tracking.position_of(conn, "projector") == 42
    assert await tracking.position_of(conn, "relay") == 0


async def test_read_correlated_returns_one_jobs_history(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        await store.append(conn, [new(0, job="a"), new(0, job="b"), new(1, job="a")])
    history = await store.read_correlated(conn, "a")
    assert [(e.stream_id, e.position) for e in history] == [
        ("job-a/video-0", 1),
        ("job-a/video-1", 3),
    ]


async def test_the_lag_gauges_head_is_read_once_per_interval_and_follows_notifications(
    conn: asyncpg.Connection,
) -> None:
    now = [0.0]
    head = LogHead(interval=1.0, clock=lambda: now[0])
    async with conn.transaction():
        await store.append(conn, [new(0)])
    assert await head.read(conn) == 1
    async with conn.transaction():
        await store.append(conn, [new(1), new(2)])
    assert await head.read(conn) == 1  # not read again within the interval
    assert await head.read(conn, notified=2) == 2
    now[0] = 1.0
    assert await head.read(conn) == 3


async def test_a_pool_without_reset_still_rolls_back_what_a_user_left_open(pg_dsn: str) -> None:
    """``skip_pool_reset`` drops only the reset query: asyncpg still ends a transaction
    left open, so the next user of the connection never inherits it."""
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=1, reset=skip_pool_reset)
    try:
        async with pool.acquire() as first:
            await first.execute("BEGIN")
            await first.execute("SELECT pg_advisory_xact_lock(42)")
            pid = first.get_server_pid()
        async with pool.acquire() as second:
            assert second.get_server_pid() == pid  # the same connection, not a new one
            assert not second.is_in_transaction()
            assert not await second.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 42"
            )
    finally:
        await pool.close()
