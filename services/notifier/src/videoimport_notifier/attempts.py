"""Attempt due deliveries: POST, then record the outcome and its event together.

Whatever the receiver or the network does is a recorded attempt (the sender
never raises). An attempt whose outcome cannot be stored for a reason other
than an outage is counted like a failure and backed off, and after the
policy's attempts the delivery fails and is parked as a dead letter: no
delivery is sent again on every scheduler pass. An outage leaves the row as it
was, to be attempted again once the database is back.

Every request is signed with each secret of its project valid at the time of the
attempt (``videoimport_projects.webhook_secrets``). A project without one gets
one created (committed before anything is signed with it); a project that does
not exist cannot, and its attempt is a recorded failure without a request, so
the delivery waits on the retry schedule. Nothing is ever sent unsigned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import asyncpg
import structlog
from videoimport_eventlog import deadletters, store
from videoimport_eventlog.faults import describe, is_outage
from videoimport_eventlog.retry import RetryPolicy
from videoimport_events import webhook_stream
from videoimport_projects import UnknownProject, webhook_secrets

from videoimport_notifier import domain, signing
from videoimport_notifier.adapters import deliveries, metrics

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


class Sender(Protocol):
    async def post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> domain.AttemptResult: ...


@dataclass
class _Made:
    """An attempt that was sent (so it counts, whether or not it can be recorded)."""

    delivery: domain.Delivery
    attempt: int
    result: domain.AttemptResult


@dataclass
class Attempter:
    """Attempts due deliveries; shared by every scheduler of one process."""

    pool: asyncpg.Pool
    sender: Sender
    policy: RetryPolicy
    slots: domain.ProjectSlots
    clock: Clock
    rand: Callable[[], float]
    _choosing: asyncio.Lock = field(default_factory=asyncio.Lock)
    _held: set[str] = field(default_factory=set)

    async def attempt_due(self) -> bool:
        """Attempt the oldest due delivery of a project below its limit; False when
        none is due.

        The row stays locked while the request runs, and the attempt's outcome and
        its event commit together: a crash in between sends it again later (the
        receiver dedupes by ``webhook-id``), but never records an attempt twice.
        A transaction that fails at commit loses the row lock before the attempt
        is counted in a new one; the delivery stays held in this process until
        then, so no other scheduler of it sends it again meanwhile.
        """
        made: list[_Made] = []
        delivery: domain.Delivery | None = None
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    # One scheduler chooses at a time, so two cannot both take the
                    # last free slot of a project.
                    async with self._choosing:
                        now = self.clock()
                        delivery = await deliveries.lock_next_due(
                            conn, now, self.slots.full(), sorted(self._held)
                        )
                        if delivery is None:
                            return False
                        self.slots.take(delivery.project)
                        self._held.add(delivery.delivery_id)
                    metrics.IN_FLIGHT.inc()
                    try:
                        await self._attempt(conn, delivery, made)
                    finally:
                        metrics.IN_FLIGHT.dec()
                        self.slots.release(delivery.project)
            except Exception as exc:
                if not made or is_outage(exc):
                    raise
                # The transaction failed as a whole (at commit, say): count the
                # attempt in a new one.
                async with conn.transaction():
                    await self._unrecorded(conn, made[0], exc, self.clock())
            finally:
                if delivery is not None:
                    self._held.discard(delivery.delivery_id)
        return True

    async def _attempt(
        self, conn: asyncpg.Connection, delivery: domain.Delivery, made: list[_Made]
    ) -> None:
        attempt = delivery.attempts + 1
        keys = await self._keys(conn, delivery)
        if keys:
            timestamp = int(self.clock().timestamp())
            headers = signing.headers(keys, delivery.delivery_id, timestamp, delivery.body)
            result = await _post(self.sender, delivery.url, delivery.body, headers)
        else:
            result = domain.AttemptResult(error=domain.NO_SECRET)
        made.append(_Made(delivery, attempt, result))
        finished = self.clock()
        step = domain.next_step(
            domain.in_budget(delivery, attempt), result, finished, self.policy, self.rand()
        )
        try:
            async with conn.transaction():  # a savepoint: the row stays locked if it fails
                await deliveries.record_attempt(
                    conn, delivery.delivery_id, attempt, result, step, finished
                )
                await store.append(
                    conn, [_attempt_event(delivery, attempt, result, step, finished)]
                )
        except Exception as exc:
            if is_outage(exc):
                raise  # the row stays as it was and is attempted again after the outage
            await self._unrecorded(conn, made[-1], exc, finished)
            return
        metrics.ATTEMPTS.labels(step.state).inc()
        log.info(
            "webhook attempt",
            job_id=delivery.job_id,
            delivery_id=delivery.delivery_id,
            attempt=attempt,
            status=result.status,
            error=step.error,
            state=step.state,
        )

    async def _keys(self, conn: asyncpg.Connection, delivery: domain.Delivery) -> list[bytes]:
        """The keys of every secret of the delivery's project valid now; empty when
        the project does not exist (or holds only unusable secrets)."""
        found = await webhook_secrets.valid_secrets(conn, delivery.project)
        if not found:
            # On a connection of its own, so the secret is committed before any
            # request is signed with it, whatever becomes of this transaction.
            async with self.pool.acquire() as other:
                try:
                    created = await webhook_secrets.ensure_secret(other, delivery.project)
                except UnknownProject:
                    log.error(
                        "webhook not sent: its project does not exist",
                        project=delivery.project,
                        delivery_id=delivery.delivery_id,
                    )
                    return []
            log.info(
                "project had no webhook secret; it has one now",
                project=delivery.project,
                secret_id=created.id,
            )
            found = await webhook_secrets.valid_secrets(conn, delivery.project)
        keys: list[bytes] = []
        for secret in found:
            try:
                keys.append(signing.secret_key(secret.secret))
            except ValueError as exc:  # the message never quotes the secret
                log.error(
                    "unusable webhook secret skipped",
                    project=delivery.project,
                    secret_id=secret.id,
                    problem=str(exc),
                )
        return keys

    async def _unrecorded(
        self, conn: asyncpg.Connection, made: _Made, exc: BaseException, now: datetime
    ) -> None:
        """The attempt was sent but its outcome cannot be stored: count it, back
        off, and after the policy's attempts fail the delivery and park it."""
        delivery, attempt = made.delivery, made.attempt
        error = domain.short_error(f"attempt could not be recorded: {describe(exc)}")
        step = domain.unrecorded_step(
            domain.in_budget(delivery, attempt), error, now, self.policy, self.rand()
        )
        outcome = domain.AttemptResult(status=made.result.status)
        if not await deliveries.record_attempt(
            conn, delivery.delivery_id, attempt, outcome, step, now
        ):
            return  # someone else has moved the delivery on
        metrics.UNRECORDED.inc()
        log.error(
            "webhook attempt could not be recorded",
            job_id=delivery.job_id,
            delivery_id=delivery.delivery_id,
            attempt=attempt,
            state=step.state,
            exc_info=exc,
        )
        if step.state == "failed":
            await deadletters.park(
                conn,
                consumer=domain.CONSUMER,
                source=f"webhook:{delivery.delivery_id}",
                error=error,
                attempts=attempt,
                event_id=domain.event_uuid(delivery.cause_event_id),
            )


async def _post(
    sender: Sender, url: str, body: bytes, headers: dict[str, str]
) -> domain.AttemptResult:
    """The sender promises not to raise; should one break that promise, the
    attempt is still a recorded failure rather than a retry every second."""
    try:
        return await sender.post(url, body, headers)
    except Exception as exc:
        return domain.AttemptResult(error=domain.short_error(f"request failed: {describe(exc)}"))


def _attempt_event(
    delivery: domain.Delivery,
    attempt: int,
    result: domain.AttemptResult,
    step: domain.Step,
    finished: datetime,
) -> store.NewEvent:
    return store.NewEvent(
        event=domain.attempt_event(delivery, attempt, result, step),
        stream_id=webhook_stream(delivery.delivery_id),
        stream_version=attempt - 1,
        correlation_id=delivery.job_id,
        project=delivery.project,
        causation_id=delivery.cause_event_id,
        occurred_at=finished,
    )
