"""The ``webhook_deliveries`` table (owned by the notifier).

A row is written when a ``JobCompleted`` with a webhook arrives and is then
driven by the scheduler: ``pending`` until a 2xx (``delivered``) or the last
attempt (``failed``). ``payload`` is a ``json`` column, which keeps the text
exactly as written, so every attempt sends the same bytes.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from videoimport_notifier.domain import AttemptResult, Delivery, Step

DDL = """
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    delivery_id      text PRIMARY KEY,
    job_id           text NOT NULL,
    project          text NOT NULL,
    url              text NOT NULL,
    payload          json NOT NULL,
    state            text NOT NULL DEFAULT 'pending',
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    cause_event_id   text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due_idx
    ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_job_idx ON webhook_deliveries (job_id);
"""


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


async def lock_next_due(conn: asyncpg.Connection, now: datetime) -> Delivery | None:
    """The oldest due delivery, locked until the caller's transaction ends.

    SKIP LOCKED lets every scheduler (in this process or another) take a
    different one, and no two ever send the same delivery at once.
    """
    row = await conn.fetchrow(
        "SELECT delivery_id, job_id, project, url, payload::text AS payload, attempts,"
        " cause_event_id FROM webhook_deliveries"
        " WHERE state = 'pending' AND next_attempt_at <= $1"
        " ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        now,
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
        cause_event_id=row["cause_event_id"],
    )


async def record_attempt(
    conn: asyncpg.Connection,
    delivery_id: str,
    attempt: int,
    result: AttemptResult,
    step: Step,
    now: datetime,
) -> None:
    await conn.execute(
        "UPDATE webhook_deliveries SET state = $2, attempts = $3, next_attempt_at = $4,"
        " last_status = $5, last_error = $6, updated_at = $7 WHERE delivery_id = $1",
        delivery_id,
        step.state,
        attempt,
        step.next_attempt_at,
        result.status,
        step.error,
        now,
    )
