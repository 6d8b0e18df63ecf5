"""The notifier re-arms a delivery on WebhookRedeliveryRequested (real PostgreSQL, Kafka
and receiver): same webhook-id and body, freshly signed, attempts keep counting."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from videoimport_devstack import StackInfo
from videoimport_events import Envelope, WebhookDelivered, WebhookRedeliveryRequested

from tests.polling import eventually

from . import test_notifier_webhooks
from .notifier_harness import (
    T0,
    Receiver,
    attempts,
    delivery_row,
    jobs_topic,
    log_job_completed,
    notifying,
    publish,
    secret_of,
    settings_for,
    verify,
)

pytestmark = pytest.mark.integration
# The fixtures of the webhook tests, for this module too.
conn = test_notifier_webhooks.conn
receiver = test_notifier_webhooks.receiver


def redelivery_request(job_id: str) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type="WebhookRedeliveryRequested",
        version=1,
        position=1_000_000,
        stream=f"job-{job_id}/redelivery-{uuid.uuid4()}",
        stream_version=0,
        occurred_at=T0,
        correlation_id=job_id,
        causation_id=None,
        project="acme",
        data=WebhookRedeliveryRequested(job_id=job_id, project="acme", requested_by="operator"),
    )


async def test_a_delivered_webhook_is_sent_again_once_per_request(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    settings = settings_for(stack, pg_dsn, topic_prefix)
    completed = await log_job_completed(conn, "jobredeliver", receiver.url)
    # A request for a job the notifier has no delivery for changes nothing.
    orphan = redelivery_request("jobnodeliver")
    async with notifying(settings):
        await publish(stack, jobs_topic(settings), completed, orphan)

        async def delivered(count: int) -> bool:
            row = await delivery_row(conn, "jobredeliver")
            return row is not None and row["state"] == "delivered" and row["attempts"] == count

        await eventually(lambda: delivered(1), "the first delivery")
        request = redelivery_request("jobredeliver")
        # Twice: the inbox makes the second copy of one request a no-op.
        await publish(stack, jobs_topic(settings), request, request)
        await eventually(lambda: delivered(2), "the redelivery")

        async def orphan_handled() -> bool:
            return bool(
                await conn.fetchval(
                    "SELECT true FROM inbox WHERE consumer = 'notifier' AND message_id = $1",
                    orphan.id,
                )
            )

        await eventually(orphan_handled, "the request without a delivery to be handled")

    assert len(receiver.requests) == 2
    (_, first_headers, first_body), (_, second_headers, second_body) = receiver.requests
    assert first_body == second_body
    assert first_headers["webhook-id"] == second_headers["webhook-id"]
    secret = await secret_of(conn)
    verify(secret, first_headers, first_body)
    verify(secret, second_headers, second_body)

    row = await delivery_row(conn, "jobredeliver")
    assert row is not None
    assert (row["attempts"], row["budget_from"], row["last_status"]) == (2, 1, 200)
    recorded = await attempts(conn, row["delivery_id"])
    assert [(e.stream_version, type(e.event)) for e in recorded] == [
        (0, WebhookDelivered),
        (1, WebhookDelivered),
    ]
    assert [e.event.attempt for e in recorded] == [1, 2]  # type: ignore[union-attr]
    assert await delivery_row(conn, "jobnodeliver") is None
    assert await conn.fetchval("SELECT count(*) FROM webhook_deliveries") == 1


async def test_a_failed_delivery_gets_a_fresh_budget(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    receiver.statuses = [500, 500, 500, 503, 200]  # 3 attempts is the test schedule
    settings = settings_for(stack, pg_dsn, topic_prefix)
    completed = await log_job_completed(conn, "jobrefailed1", receiver.url)
    async with notifying(settings):
        await publish(stack, jobs_topic(settings), completed)

        async def state(expected: str, count: int) -> bool:
            row = await delivery_row(conn, "jobrefailed1")
            return row is not None and (row["state"], row["attempts"]) == (expected, count)

        await eventually(lambda: state("failed", 3), "the delivery to fail for good")
        await publish(stack, jobs_topic(settings), redelivery_request("jobrefailed1"))
        # Attempt 4 fails (503) and is retried: a fresh budget, not "exhausted".
        await eventually(lambda: state("delivered", 5), "the redelivery to succeed")

    row = await delivery_row(conn, "jobrefailed1")
    assert row is not None
    events = await attempts(conn, row["delivery_id"])
    assert [e.stream_version for e in events] == [0, 1, 2, 3, 4]
    assert len({h["webhook-id"] for _, h, _ in receiver.requests}) == 1
