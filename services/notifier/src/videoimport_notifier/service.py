"""The notifier process: a Kafka consumer that records deliveries and a scheduler
that sends them, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from videoimport_eventlog.consumer import KeyedConcurrentConsumer

from videoimport_notifier import bootstrap, handlers
from videoimport_notifier.domain import RetryPolicy
from videoimport_notifier.settings import NotifierSettings

log = structlog.get_logger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Notifier:
    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self._due = asyncio.Event()
        self.prepared = asyncio.Event()
        """Set once tables and topic exist and the consumer is started."""

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        while not stop.is_set():
            try:
                await bootstrap.prepare(settings)
                break
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError):
                # e.g. the migration lost a deadlock against a live append.
                log.exception("notifier cannot prepare the database or topic; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), settings.retry_delay)
        if stop.is_set():
            return
        key = bootstrap.signing_key(settings)
        policy = bootstrap.retry_policy(settings)
        pool = await bootstrap.pool(settings)
        sender = bootstrap.sender(settings)
        consumer = bootstrap.consumer(settings)
        await sender.start()

        async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
            if record.value is None:
                return
            if await handlers.record_delivery(pool, record.value, utcnow()):
                self._due.set()

        keyed = KeyedConcurrentConsumer(consumer, handle, max_in_flight=settings.max_in_flight)
        consumer.subscribe([bootstrap.jobs_topic(settings)], listener=keyed.listener())
        try:
            await consumer.start()
            self.prepared.set()
            consuming = asyncio.create_task(keyed.run())
            schedulers = [
                asyncio.create_task(self._schedule(pool, sender, key, policy, stop))
                for _ in range(settings.webhook_concurrency)
            ]
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait([stopped, consuming], return_when=asyncio.FIRST_COMPLETED)
            # In-flight messages and requests finish; nothing new starts.
            stop.set()
            keyed.stop()
            await asyncio.gather(stopped, consuming, *schedulers)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
            await sender.close()
            await pool.close()
        log.info("notifier stopped")

    async def _schedule(
        self,
        pool: asyncpg.Pool,
        sender: handlers.Sender,
        key: bytes | None,
        policy: RetryPolicy,
        stop: asyncio.Event,
    ) -> None:
        while not stop.is_set():
            try:
                worked = await handlers.attempt_due(
                    pool, sender, key, policy, utcnow, random.random
                )
            except Exception:
                # The database is away, or one delivery cannot be recorded: the
                # row stays pending and is tried again; the scheduler lives on.
                log.exception("webhook attempt could not be recorded")
                worked = False
            if not worked:
                await self._idle(stop)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Until a new delivery is recorded, a retry may be due, or we are stopped."""
        waits = [asyncio.ensure_future(self._due.wait()), asyncio.ensure_future(stop.wait())]
        _, pending = await asyncio.wait(
            waits,
            timeout=self.settings.scheduler_poll_interval,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._due.clear()
