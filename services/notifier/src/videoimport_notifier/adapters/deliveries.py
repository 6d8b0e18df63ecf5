"""The ``webhook_deliveries`` table (owned by the notifier).

A row is written when a ``JobCompleted`` with a webhook arrives and is then
driven by the scheduler: ``pending`` until a 2xx (``delivered``) or the last
attempt (``failed``). ``payload`` is a ``json`` column, which keeps the text
exactly as written, so every attempt sends the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from videoimport_notifier.domain import AttemptResult, Delivery, Step


async def insert(conn: asyncpg.Connection, delivery: Delivery, due: datetime) -> bool:
    """False when the delivery already exists (the same JobCompleted again)."""
    inserted = await conn.fetchval(
        "INSERT INTO webhook_deliveries (delivery_id, job_id, project, url, payload, state,"
        " attempts, next_attempt_at, cause_event_id)"
        " VALUES ($1, $2, $3, $4, $5::json, 'pending', 0, $6, $7)"
        " ON CONFLICT (delivery_id) DO NOTHING RETURNING true",
        delivery.delivery_id,
        delivery.job_id,
        delivery.project,
        delivery.url,
        delivery.body.decode(),
        due,
        delivery.cause_event_id,
    )
    return bool(inserted)


async def lock_next_due(
    conn: asyncpg.Connection,
    now: datetime,
    busy: Sequence[str] = (),
    held: Sequence[str] = (),
) -> Delivery | None:
    """The oldest due delivery of a project not in ``busy``, locked until the
    caller's transaction ends.

    SKIP LOCKED lets every scheduler (in this process or another) take a
    different one, and no two ever send the same delivery at once. ``busy``
    are the projects already at their limit of deliveries in flight; ``held``
    are deliveries this process is still attempting, even without a row lock
    (their transaction failed at commit and the attempt is being counted).
    """
    row = await conn.fetchrow(
        "SELECT delivery_id, job_id, project, url, payload::text AS payload, attempts,"
        " budget_from, cause_event_id FROM webhook_deliveries"
        " WHERE state = 'pending' AND next_attempt_at <= $1 AND project <> ALL($2::text[])"
        " AND delivery_id <> ALL($3::text[])"
        " ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        now,
        list(busy),
        list(held),
    )
    if row is None:
        return None
    return Delivery(
        delivery_id=row["delivery_id"],
        job_id=row["job_id"],
        project=row["project"],
        url=row["url"],
        body=row["payload"].encode(),
        attempts=row["attempts"],
        budget_from=row["budget_from"],
        cause_event_id=row["cause_event_id"],
    )


async def record_attempt(
    conn: asyncpg.Connection,
    delivery_id: str,
    attempt: int,
    result: AttemptResult,
    step: Step,
    now: datetime,
) -> bool:
    """False when the row is no longer at attempt ``attempt - 1`` (another
    scheduler recorded it meanwhile; only possible after the row lock was lost)."""
    changed = await conn.fetchval(
        "UPDATE webhook_deliveries SET state = $2, attempts = $3, next_attempt_at = $4,"
        " last_status = $5, last_error = $6, updated_at = $7"
        " WHERE delivery_id = $1 AND attempts = $3 - 1 RETURNING true",
        delivery_id,
        step.state,
        attempt,
        step.next_attempt_at,
        result.status,
        step.error,
        now,
    )
    return bool(changed)


async def rearm(conn: asyncpg.Connection, delivery_id: str, due: datetime) -> bool:
    """A failed delivery becomes pending again (an operator retried its dead letter).

    Its attempts are kept: the next attempt is one more, recorded at the next
    stream version. False when the delivery is not ``failed``.
    """
    changed = await conn.fetchval(
        "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $2, updated_at = $2"
        " WHERE delivery_id = $1 AND state = 'failed' RETURNING true",
        delivery_id,
        due,
    )
    return bool(changed)


async def rearm_for_redelivery(conn: asyncpg.Connection, job_id: str, due: datetime) -> list[str]:
    """The job's deliveries, whatever their state, become pending and due at ``due``
    with a fresh attempt budget (``budget_from`` = the attempts made so far).

    A delivery a scheduler is attempting right now is locked: this waits for that
    attempt to be recorded and then re-arms it. Returns the re-armed delivery ids
    (none when the job has no delivery).
    """
    rows = await conn.fetch(
        "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $2,"
        " budget_from = attempts, updated_at = $2"
        " WHERE job_id = $1 RETURNING delivery_id",
        job_id,
        due,
    )
    return sorted(r["delivery_id"] for r in rows)
