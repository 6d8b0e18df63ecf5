"""Asking for a finished job's webhook to be sent again, by the API or an operator.

    videoimport webhook redeliver JOB

Both append one ``WebhookRedeliveryRequested`` on a stream of its own,
``job-{job}/redelivery-{uuid}`` at version 0 (so requests never conflict),
caused by the job's ``JobCompleted``, and only once that ``JobCompleted`` (with a
webhook) is in the log: the request then always follows it in the log and on the
jobs topic (same key), so the notifier has its delivery before the request. The
notifier re-arms the delivery: same ``webhook-id`` and body, freshly signed.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Literal

import asyncpg
from videoimport_eventlog import store
from videoimport_events import (
    RequestedBy,
    WebhookRedeliveryRequested,
    job_stream,
    redelivery_stream,
)

Refusal = Literal["unknown_job", "not_finished", "no_webhook"]


class RedeliveryRefused(Exception):
    """The job is unknown (to the project), not finished, or has no webhook."""

    def __init__(self, job_id: str, reason: Refusal) -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(MESSAGES[reason].format(job=job_id))


MESSAGES: dict[Refusal, str] = {
    "unknown_job": "no import job {job}",
    "not_finished": "import job {job} has not finished yet",
    "no_webhook": "import job {job} has no webhook",
}


async def request_redelivery(
    conn: asyncpg.Connection, job_id: str, requested_by: RequestedBy, project: str | None = None
) -> uuid.UUID:
    """Append the request in the caller's transaction (or its own); returns its event id.

    ``project`` limits the job to one project (the API's caller); None is any (an
    operator). Raises ``RedeliveryRefused``.
    """
    rows = await conn.fetch(
        "SELECT stream_version, event_id, project, data->>'webhook' AS webhook FROM events"
        " WHERE stream_id = $1 AND stream_version IN (0, 1)"
        " AND ($2::text IS NULL OR project = $2)",
        job_stream(job_id),
        project,
    )
    by_version = {r["stream_version"]: r for r in rows}
    if 0 not in by_version:
        raise RedeliveryRefused(job_id, "unknown_job")
    completed = by_version.get(1)
    if completed is None:
        raise RedeliveryRefused(job_id, "not_finished")
    if completed["webhook"] is None:
        raise RedeliveryRefused(job_id, "no_webhook")
    owner: str = completed["project"]
    new = store.NewEvent(
        event=WebhookRedeliveryRequested(job_id=job_id, project=owner, requested_by=requested_by),
        stream_id=redelivery_stream(job_id, uuid.uuid4()),
        stream_version=0,
        correlation_id=job_id,
        project=owner,
        causation_id=str(completed["event_id"]),
    )
    async with conn.transaction():
        await store.append(conn, [new])
    return new.event_id


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    webhook = commands.add_parser("webhook", help="send a finished job's webhook again")
    actions = webhook.add_subparsers(dest="action", required=True)
    redeliver = actions.add_parser(
        "redeliver",
        parents=[common],
        help="re-arm the job's webhook delivery (same webhook-id and body, fresh attempts)",
    )
    redeliver.add_argument("job")


async def run(conn: asyncpg.Connection, args: argparse.Namespace) -> str:
    event_id = await request_redelivery(conn, args.job, "operator")
    return f"webhook redelivery of job {args.job} requested (event {event_id})"
