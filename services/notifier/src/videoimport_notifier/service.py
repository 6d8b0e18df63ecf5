"""The notifier process, until stopped:

consumes videoimport.jobs (JobCompleted) → emits WebhookDelivered / WebhookDeliveryFailed

- a keyed Kafka consumer records one pending delivery per ``JobCompleted``; a
  message whose handling keeps failing (outages not counted) is parked as a
  dead letter after ``consumer_attempts`` and its partition moves on;
- ``webhook_concurrency`` schedulers POST due deliveries, at most
  ``webhook_project_limit`` of one project at once;
- a loop takes the dead letters an operator marked for retry.

The schedulers start before the consumer has joined its group: a restarted
instance sends what is due at once, while the join waits out the session of a
member killed without leaving.

SIGTERM: nothing new starts; attempts in flight finish or time out
(``webhook_timeout``), and the process is down a few seconds after that, also
while the consumer is still joining.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer
from videoimport_eventlog import health
from videoimport_eventlog.consumer import KeyedConcurrentConsumer, Record
from videoimport_eventlog.faults import is_outage
from videoimport_eventlog.kafka import leave_group
from videoimport_eventlog.loop import first_of, pause, unless_stopped

from videoimport_notifier import attempts, bootstrap, handlers
from videoimport_notifier.adapters.webhook_http import WebhookSender
from videoimport_notifier.settings import NotifierSettings

log = structlog.get_logger(__name__)
CLOSE_TIMEOUT = 5.0
"""For closing the pool at the very end."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Notifier:
    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self._due = asyncio.Event()
        self.prepared = asyncio.Event()
        """Set once tables and topic exist and the consumer is started."""
        self._database = health.PostgresProbe(settings.database_url)
        """Readiness: on a connection of its own until the pool exists, then on the pool."""

    async def run(self, stop: asyncio.Event) -> None:
        # Listening from the start: while the database or Kafka is away at start-up,
        # the notifier waits for it and readiness says which one is down.
        probes = bootstrap.health_probes(self.settings, self._database)
        async with health.serving(self.settings.host, self.settings.health_port, probes):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        if not await self._prepare(stop):
            return
        settings = self.settings
        slots = bootstrap.project_slots(settings)
        started, pool = await unless_stopped(bootstrap.pool(settings), stop)
        if not started or pool is None:
            return
        self._database.use(pool)
        sender = bootstrap.sender(settings)
        consumer = bootstrap.consumer(settings)
        attempter = attempts.Attempter(
            pool=pool,
            sender=sender,
            policy=bootstrap.retry_policy(settings),
            slots=slots,
            clock=utcnow,
            rand=random.random,
        )

        async def handle(message: Record) -> None:
            if await handlers.handle_message(pool, message, utcnow()):
                self._due.set()

        async def give_up(message: Record, exc: BaseException, tries: int) -> None:
            await handlers.give_up(pool, message, exc, tries)

        keyed = KeyedConcurrentConsumer(
            consumer,
            handle,
            max_in_flight=settings.max_in_flight,
            policy=bootstrap.consumer_policy(settings),
            on_give_up=give_up,
            drain_timeout=settings.drain_timeout,
        )
        consumer.subscribe([bootstrap.jobs_topic(settings)], listener=keyed.listener())
        await sender.start()
        # The deliveries in PostgreSQL are the work and Kafka only adds to them: the
        # schedulers start before the consumer joins its group, which after a kill
        # waits out the dead member's session.
        tasks = [asyncio.create_task(self._retry_letters(pool, stop))]
        tasks += [
            asyncio.create_task(self._schedule(attempter, stop))
            for _ in range(settings.webhook_concurrency)
        ]
        try:
            started, _ = await unless_stopped(consumer.start(), stop)
            if started:
                self.prepared.set()
                consuming = asyncio.create_task(keyed.run())
                tasks.append(consuming)
                # Until SIGTERM, or the consumer fails for good (raised from here).
                await first_of(stop.wait(), asyncio.shield(consuming))
            stop.set()
            keyed.stop()
            await self._wind_down(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await _close(consumer, sender, pool)
        log.info("notifier stopped")

    async def _prepare(self, stop: asyncio.Event) -> bool:
        """Migrate and create the topic, retrying until it works or we are stopped."""
        while not stop.is_set():
            try:
                done, _ = await unless_stopped(bootstrap.prepare(self.settings), stop)
                return done
            except Exception as exc:
                # e.g. the database or Kafka is not up yet, or the migration lost
                # a deadlock against a live append.
                log.warning("notifier cannot prepare the database or topic; retrying", exc_info=exc)
                await pause(stop, self.settings.retry_delay)
        return False

    async def _wind_down(self, tasks: Sequence[asyncio.Task[None]]) -> None:
        """Let attempts in flight finish or time out; cancel whatever outlives that."""
        settings = self.settings
        budget = max(settings.webhook_timeout, settings.drain_timeout) + settings.shutdown_grace
        done, late = await asyncio.wait(tasks, timeout=budget)
        if late:
            log.warning("cancelling work still running at shutdown", count=len(late))
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("notifier task failed", exc_info=task.exception())

    async def _schedule(self, attempter: attempts.Attempter, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                worked = await attempter.attempt_due()
            except Exception as exc:
                # The database is away (wait for it), or something no attempt can
                # fix: either way the row stays as it was and we pause.
                log.warning(
                    "webhook scheduler failed; pausing", outage=is_outage(exc), exc_info=exc
                )
                await pause(stop, self.settings.retry_delay)
                continue
            if worked:
                # A project may have dropped below its limit: idle schedulers look again.
                self._due.set()
            else:
                await self._idle(stop)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Until a new delivery is recorded, a retry may be due, or we are stopped."""
        await first_of(self._due.wait(), stop.wait(), timeout=self.settings.scheduler_poll_interval)
        self._due.clear()

    async def _retry_letters(self, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await handlers.retry_dead_letters(pool, utcnow()):
                    self._due.set()
            except Exception as exc:
                log.warning("dead letters could not be retried now", exc_info=exc)
            await pause(stop, self.settings.dead_letter_poll_interval)


async def _close(consumer: AIOKafkaConsumer, sender: WebhookSender, pool: asyncpg.Pool) -> None:
    await leave_group(consumer)
    with contextlib.suppress(Exception):
        await sender.close()
    try:
        await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
    except Exception:
        pool.terminate()
