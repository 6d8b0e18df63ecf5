"""One step of the projector: a batch of the log applied in one transaction.

The tracking position, the read model rows and any ``JobCompleted`` commit
together, so a crash never applies an event twice nor loses one.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from videoimport_eventlog import deadletters, store, tracking
from videoimport_events import job_stream

from videoimport_projector import domain
from videoimport_projector.adapters import readmodel


@dataclass(frozen=True)
class Progress:
    events: int
    """Events read from the log (including those the projection ignores)."""
    position: int
    completed: int
    """``JobCompleted`` events appended by this batch."""


def completion(state: domain.JobState) -> store.NewEvent | None:
    event = domain.decide_completion(state)
    if event is None:
        return None
    return store.NewEvent(
        event=event,
        stream_id=job_stream(state.job_id),
        stream_version=1,
        correlation_id=state.job_id,
        project=state.project,
        causation_id=state.cause_id,
        event_id=domain.completion_event_id(state.job_id),
        occurred_at=event.finished_at,
    )


async def apply(
    conn: asyncpg.Connection,
    records: list[store.RecordedEvent],
    into: readmodel.Model = readmodel,
    *,
    complete: bool = True,
) -> int:
    """Fold ``records`` into the read model in the caller's transaction.

    ``into``: the live tables, or a rebuild's shadow copies. ``complete=False``
    appends no ``JobCompleted`` (a ``rebuild --check`` writes nothing to the log).
    Returns the number of ``JobCompleted`` events appended.
    """
    job_ids = {j for r in records if (j := domain.job_id_of(r.event)) is not None}
    jobs: dict[str, domain.JobState | None] = dict.fromkeys(job_ids)
    jobs.update(await into.load_jobs(conn, job_ids))
    changed: set[str] = set()
    rows: dict[tuple[str, int], domain.VideoRow] = {}
    expired: list[str] = []
    for record in records:
        if (deleted := domain.expired_key(record.event)) is not None:
            expired.append(deleted)
            continue
        job_id = domain.job_id_of(record.event)
        if job_id is None:
            continue
        before = jobs[job_id]
        after = domain.evolve(before, record)
        if after is not before:
            jobs[job_id] = after
            changed.add(job_id)
        row = domain.video_row(record.event)
        if row is not None:
            key = (row.job_id, row.idx)
            rows[key] = domain.newer_row(rows.get(key), row)
    states = [s for j in sorted(changed) if (s := jobs[j]) is not None]
    await into.save_jobs(conn, states)
    await into.save_videos(conn, rows.values())
    # After the rows: a result logged earlier in this batch is marked too.
    await into.expire_links(conn, expired)
    if not complete:
        return 0
    # skip_existing: a rebuild decides every completion again; the log keeps one.
    completions = [c for s in states if (c := completion(s)) is not None]
    return len(await store.append(conn, completions, skip_existing=True))


async def project_batch(conn: asyncpg.Connection, batch_size: int) -> Progress:
    async with conn.transaction():
        position = await tracking.lock_position(conn, domain.TRACKING_NAME)
        records = await store.read_after(conn, position, batch_size)
        if not records:
            return Progress(0, position, 0)
        appended = await apply(conn, records)
        last = records[-1].position
        await tracking.save_position(conn, domain.TRACKING_NAME, last)
        return Progress(len(records), last, appended)


async def park_next(conn: asyncpg.Connection, error: BaseException, attempts: int) -> int | None:
    """Park the event after the tracking position as a dead letter and move past it."""
    return await deadletters.park_next_in_log(conn, domain.TRACKING_NAME, error, attempts)


async def retry_dead_letters(conn: asyncpg.Connection) -> int:
    """Apply again the parked events an operator asked to retry; returns how many went through."""

    async def redo(conn: asyncpg.Connection, record: store.RecordedEvent) -> None:
        # The tracking row, as for a batch: a rebuild's swap holds it, so a retry
        # never writes into the live tables while they are being replaced.
        await tracking.lock_position(conn, domain.TRACKING_NAME)
        await apply(conn, [record])

    return await deadletters.retry_requested(conn, domain.TRACKING_NAME, redo)


async def catch_up(conn: asyncpg.Connection, batch_size: int) -> int:
    """Apply batches until the log is exhausted; returns the final position."""
    while True:
        progress = await project_batch(conn, batch_size)
        if progress.events == 0:
            return progress.position


async def tracked_position(conn: asyncpg.Connection) -> int:
    return await tracking.position_of(conn, domain.TRACKING_NAME)


async def log_head(conn: asyncpg.Connection) -> int:
    head: int = await conn.fetchval("SELECT COALESCE(max(position), 0) FROM events")
    return head
