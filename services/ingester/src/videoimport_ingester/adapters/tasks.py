"""The ``ingest_tasks`` queue in PostgreSQL: requests waiting for (or under) download.

The Kafka handler ``enqueue``s; workers ``claim`` under a transaction-scoped
advisory lock, so the per-project and per-job counts they decide on are those of
every instance at that moment. A claimed row carries a lease (``lease_owner``,
``lease_until`` on the database clock) that ``renew`` extends; a row is running
while its lease is in the future, and claimable again when it runs out (its
worker crashed). ``finish`` deletes a handled row (normally in the transaction
that commits its result, ``handlers.Ingester``); ``retry_later`` puts it back
with a delay; ``release`` hands rows back at once (a stopping instance).
The running worker keeps ``phase`` and the byte counts up to date
(``report_progress``); a row without a phase is queued, and every hand-back
(and every claim) makes it so again.
"""

from __future__ import annotations

import contextlib
import uuid

import asyncpg
import msgspec
from videoimport_eventlog import deadletters, store
from videoimport_events import (
    Envelope,
    VideoImportRequested,
    decode_envelope,
    encode_envelope,
    video_stream,
)
from videoimport_projects.media_decision import identity

from videoimport_ingester.domain import CONSUMER
from videoimport_ingester.scheduling import Head, Limits, ProgressSnapshot, choose

CLAIM_LOCK = 7_110_203
"""Advisory lock serialising claims (any constant unused by other locks)."""


class Task(msgspec.Struct, frozen=True, kw_only=True):
    """A claimed request: what to handle, and the failures it has had so far."""

    event_id: str
    envelope: Envelope
    attempts: int
    decided: bool | None = None
    """Whether the video had its result (a cancel) when claimed; None: not looked up."""


async def enqueue(conn: asyncpg.Connection, envelope: Envelope) -> bool:
    """Queue a request; False when it is queued already or was handled before."""
    return bool(await enqueue_many(conn, [envelope]))


async def enqueue_many(conn: asyncpg.Connection, envelopes: list[Envelope]) -> set[str]:
    """Queue many requests in one statement; returns the ids that were queued (the
    others are queued already or were handled before)."""
    rows = [(e, _requested(e)) for e in envelopes]
    inserted = await conn.fetch(
        "INSERT INTO ingest_tasks"
        " (event_id, position, project, job_id, video_key, envelope, video_index)"
        " SELECT r.event_id, r.position, r.project, r.job_id, r.video_key, r.envelope::json,"
        " r.video_index FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[],"
        " $5::text[], $6::text[], $7::int[]) AS r(event_id, position, project, job_id,"
        " video_key, envelope, video_index)"
        " WHERE NOT EXISTS (SELECT 1 FROM inbox WHERE consumer = $8 AND message_id = r.event_id)"
        " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        [e.id for e, _ in rows],
        [e.position for e, _ in rows],
        [r.project for _, r in rows],
        [r.job_id for _, r in rows],
        [identity(r.project, r.system_name, r.external_id) for _, r in rows],
        [encode_envelope(e).decode() for e, _ in rows],
        [r.index for _, r in rows],
        CONSUMER,
    )
    return {row["event_id"] for row in inserted}


def _requested(envelope: Envelope) -> VideoImportRequested:
    if not isinstance(envelope.data, VideoImportRequested):
        raise TypeError(f"not a VideoImportRequested: {envelope.type}")
    return envelope.data


_QUEUED = "phase = NULL, bytes_done = NULL, bytes_total = NULL"
"""No progress: what a row is again when nobody (or a new claimant) works on it yet."""

# Every (project, job) with a row, by a skip scan over ingest_tasks_job_idx (one
# index probe per job, however many rows each has queued); per job the videos
# running (counted from live leases, so across instances) and its first claimable
# row: not running, due, and no earlier request of the same video still queued
# (each video in log order). The head is a ``LIMIT 1`` in position order, so a
# claim reads a few rows per job instead of every queued row.
_CANDIDATES = (
    "WITH RECURSIVE jobs AS ("
    "  (SELECT project, job_id FROM ingest_tasks ORDER BY project, job_id LIMIT 1)"
    "  UNION ALL"
    "  SELECT n.project, n.job_id FROM jobs j CROSS JOIN LATERAL ("
    "   SELECT t.project, t.job_id FROM ingest_tasks t"
    "   WHERE (t.project, t.job_id) > (j.project, j.job_id)"
    "   ORDER BY t.project, t.job_id LIMIT 1) n"
    ")"
    " SELECT j.project, j.job_id, h.event_id, h.position, h.video_index,"
    "  (SELECT count(*)::int FROM ingest_tasks r WHERE r.project = j.project"
    "   AND r.job_id = j.job_id AND r.lease_until > now()) AS running"
    " FROM jobs j LEFT JOIN LATERAL ("
    "  SELECT t.event_id, t.position, t.video_index FROM ingest_tasks t"
    "  WHERE t.project = j.project AND t.job_id = j.job_id"
    "  AND (t.lease_until IS NULL OR t.lease_until <= now()) AND t.not_before <= now()"
    "  AND NOT EXISTS (SELECT 1 FROM ingest_tasks e"
    "   WHERE e.video_key = t.video_key AND e.position < t.position)"
    "  ORDER BY t.position LIMIT 1) h ON true"
)


async def claim(
    conn: asyncpg.Connection, owner: str, limits: Limits, lease_seconds: float
) -> Task | None:
    """The fairest claimable request, leased to ``owner``; None when there is none.

    Committed asynchronously: a claim lost in a crash is a lease that never was,
    and the row stays claimable. The lock is held for three round trips (read,
    lease, commit) and no commit flush.
    """
    async with conn.transaction():
        await conn.execute(
            "SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock($1)",
            CLAIM_LOCK,
        )
        running: dict[tuple[str, str], int] = {}
        heads: list[Head] = []
        for r in await conn.fetch(_CANDIDATES):
            if r["running"]:
                running[(r["project"], r["job_id"])] = r["running"]
            if r["event_id"] is not None:
                heads.append(
                    Head(
                        event_id=r["event_id"], project=r["project"], job_id=r["job_id"],
                        position=r["position"], video_index=r["video_index"],
                    )
                )  # fmt: skip
        chosen = choose(heads, running, limits)
        if chosen is None:
            return None
        # Whether the video already has its result (a cancel) comes with the lease:
        # the worker then needs no lookup of its own before it starts.
        result_stream = (
            None if chosen.video_index is None else video_stream(chosen.job_id, chosen.video_index)
        )
        row = await conn.fetchrow(
            "UPDATE ingest_tasks SET lease_owner = $2,"
            " lease_until = now() + make_interval(secs => $3), updated_at = now(),"
            f" {_QUEUED}"
            " WHERE event_id = $1 RETURNING envelope::text AS envelope, attempts,"
            " CASE WHEN $4::text IS NULL THEN NULL ELSE EXISTS (SELECT 1 FROM events"
            "  WHERE stream_id = $4 AND stream_version = 1) END AS decided",
            chosen.event_id,
            owner,
            lease_seconds,
            result_stream,
        )
        if row is None:  # its lease had run out and its worker finished it just now
            return None
        try:
            envelope = decode_envelope(row["envelope"].encode())
        except (msgspec.MsgspecError, ValueError) as exc:
            # Queued by a release that knew more (a newer event schema): park it,
            # and make sure the dead letter is flushed before the row is gone.
            await conn.execute("SET LOCAL synchronous_commit = on")
            await _park_undecodable(conn, chosen, row["envelope"], exc)
            return None
    return Task(
        event_id=chosen.event_id,
        envelope=envelope,
        attempts=row["attempts"],
        decided=row["decided"],
    )


async def _park_undecodable(
    conn: asyncpg.Connection, head: Head, text: str, exc: Exception
) -> None:
    event_id: uuid.UUID | None = None
    with contextlib.suppress(ValueError):
        event_id = uuid.UUID(head.event_id)
    await deadletters.park(
        conn,
        consumer=CONSUMER,
        source=f"ingest_tasks:{head.event_id}",
        error=exc,
        attempts=1,
        event_id=event_id,
        position=head.position,
        payload=text.encode(),
    )
    await finish(conn, head.event_id)


# Prefixed to a single statement run outside a transaction: it commits without
# waiting for the flush. Only for writes whose loss in a crash repeats harmless
# work (a lease renewal, progress shown to clients), never for a result's commit.
_ASYNC_COMMIT = "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))"


async def renew(conn: asyncpg.Connection, event_id: str, owner: str, lease_seconds: float) -> bool:
    """Extend the lease; False when the row is gone or no longer ours.

    Committed asynchronously (outside a transaction only): a renewal lost in a
    crash only shortens a lease whose owner is gone anyway.
    """
    renewed = await conn.fetchval(
        f"{_ASYNC_COMMIT} UPDATE ingest_tasks"
        " SET lease_until = now() + make_interval(secs => $3) FROM async_commit"
        " WHERE event_id = $1 AND lease_owner = $2 RETURNING true",
        event_id,
        owner,
        lease_seconds,
    )
    return bool(renewed)


async def report_progress(
    conn: asyncpg.Connection, event_id: str, owner: str, progress: ProgressSnapshot
) -> None:
    """Write a running video's phase and bytes (one row by key, while still ours).

    Committed asynchronously (outside a transaction only): it is only shown.
    """
    await conn.execute(
        f"{_ASYNC_COMMIT} UPDATE ingest_tasks"
        " SET phase = $3, bytes_done = $4, bytes_total = $5 FROM async_commit"
        " WHERE event_id = $1 AND lease_owner = $2",
        event_id,
        owner,
        progress.phase,
        progress.bytes_done,
        progress.bytes_total,
    )


async def finish(conn: asyncpg.Connection, event_id: str) -> None:
    """The request is handled (its terminal event is in the log): forget it."""
    await conn.execute("DELETE FROM ingest_tasks WHERE event_id = $1", event_id)


async def retry_later(
    conn: asyncpg.Connection,
    event_id: str,
    owner: str,
    *,
    delay: float,
    error: str,
    counted: bool,
) -> None:
    """Back to pending, claimable after ``delay`` seconds; ``counted`` adds an attempt."""
    await conn.execute(
        "UPDATE ingest_tasks SET lease_owner = NULL, lease_until = NULL,"
        " not_before = now() + make_interval(secs => $3), attempts = attempts + $4,"
        f" last_error = $5, updated_at = now(), {_QUEUED}"
        " WHERE event_id = $1 AND lease_owner = $2",
        event_id,
        owner,
        delay,
        1 if counted else 0,
        error,
    )


async def release(conn: asyncpg.Connection, owner: str, event_ids: list[str]) -> int:
    """Hand rows back at once (claimable by anyone now); returns how many."""
    released = await conn.fetch(
        f"UPDATE ingest_tasks SET lease_owner = NULL, lease_until = NULL, {_QUEUED},"
        " updated_at = now() WHERE lease_owner = $1 AND event_id = ANY($2::text[])"
        " RETURNING event_id",
        owner,
        event_ids,
    )
    return len(released)


async def requeue_dead_letters(conn: asyncpg.Connection) -> int:
    """Queue again the ingester's dead letters an operator asked to retry.

    The letter names the logged request; queuing it is all a retry needs (a
    request that was handled meanwhile is not queued: the inbox has it).
    """

    async def redo(conn: asyncpg.Connection, recorded: store.RecordedEvent) -> None:
        if not isinstance(recorded.event, VideoImportRequested):
            raise TypeError(f"not a VideoImportRequested: {recorded.event_type}")
        await enqueue(conn, recorded.envelope())

    return await deadletters.retry_requested(conn, CONSUMER, redo)
