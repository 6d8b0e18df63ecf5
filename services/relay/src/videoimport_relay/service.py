"""The relay process: wait to lead, then follow the log onto Kafka until stopped.

consumes the event log (every event) → emits every event to its Kafka topic, and
publishes again the requests nobody finished (reconciliation).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from videoimport_eventlog import health
from videoimport_eventlog.faults import is_outage
from videoimport_eventlog.isolation import PoisonGuard
from videoimport_eventlog.loop import first_of, pause
from videoimport_eventlog.subscription import LogHead, LogWakeup

from videoimport_relay import bootstrap, handlers
from videoimport_relay.adapters import leader, metrics
from videoimport_relay.domain import lag
from videoimport_relay.settings import RelaySettings

log = structlog.get_logger(__name__)
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
_TRANSIENT = (*_DB_ERRORS, KafkaError)


class Relay:
    """Publishes the event log to Kafka; one leader at a time, the rest stand by."""

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self.is_leader = False
        self.prepared = asyncio.Event()
        """Set once tables and topics exist (then the instance leads or stands by)."""
        self.guard = PoisonGuard(settings.retry_policy(), settings.batch_size)
        self._last_housekeeping = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        probes = bootstrap.health_probes(settings)
        async with health.serving(settings.host, settings.health_port, probes):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await bootstrap.prepare(self.settings)
                self.prepared.set()
                break
            except _TRANSIENT:
                # e.g. the migration lost a deadlock against a live append.
                log.exception("relay cannot prepare the database or topics; retrying")
                await pause(stop, self.settings.retry_delay)
        while not stop.is_set():
            try:
                conn = await leader.wait_for_leadership(
                    self.settings.database_url, stop, self.settings.standby_interval
                )
            except _DB_ERRORS:
                log.exception("relay cannot reach the database")
                await pause(stop, self.settings.retry_delay)
                continue
            if conn is None:
                break
            self.is_leader = True
            metrics.LEADER.set(1)
            log.info("relay leads")
            try:
                await self._lead(conn, stop)
            except _DB_ERRORS:
                # The leader connection is gone (and with it the lock): step
                # down and compete again once the database is back.
                log.exception("relay lost its database connection")
                await pause(stop, self.settings.retry_delay)
            finally:
                self.is_leader = False
                metrics.LEADER.set(0)
                with contextlib.suppress(Exception):
                    await conn.close()
        log.info("relay stopped")

    async def _lead(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        wakeup = LogWakeup(self.settings.poll_interval, self.settings.burst_wait)
        await wakeup.start(self.settings.database_url)
        try:
            while not stop.is_set():
                producer = bootstrap.producer(self.settings)
                try:
                    await producer.start()
                    await self._follow(conn, producer, wakeup, stop)
                except _DB_ERRORS:
                    raise
                except Exception as exc:
                    # A Kafka error: the batch was not saved and is sent again by a
                    # fresh producer (the old one may have given up on a sequence).
                    metrics.FAILED_BATCHES.inc()
                    log.warning("publishing failed; the batch is sent again", error=str(exc))
                    await self._after_failure(conn, exc, stop)
                finally:
                    with contextlib.suppress(Exception):
                        await producer.stop()
        finally:
            await wakeup.close()

    async def _after_failure(
        self, conn: asyncpg.Connection, exc: BaseException, stop: asyncio.Event
    ) -> None:
        """Wait out an outage; narrow in on, and park, an event that keeps failing."""
        if is_outage(exc):
            await pause(stop, self.settings.retry_delay)
            return
        position = await handlers.tracked_position(conn)
        if self.guard.failed(position) == "park":
            parked = await handlers.park_next(conn, exc, self.settings.attempts)
            metrics.PARKED.inc()
            log.error("event parked as a dead letter", position=parked, error=str(exc)[:500])
            return
        await pause(stop, self.guard.retry_delay(random.random()))

    async def _follow(
        self,
        conn: asyncpg.Connection,
        producer: handlers.Producer,
        wakeup: LogWakeup,
        stop: asyncio.Event,
    ) -> None:
        head = LogHead(self.settings.lag_interval)
        # Read once: while this instance leads, nobody else moves it (a parked
        # event moves it between two calls of this method).
        position = await handlers.tracked_position(conn)
        while not stop.is_set():
            await self._housekeeping(conn, producer)
            size = self.guard.batch(position)
            count, position = await handlers.relay_batch(
                conn, producer, self.settings.topic_prefix, size, position
            )
            if count:
                self.guard.succeeded()
            metrics.PUBLISHED.inc(count)
            metrics.POSITION.set(position)
            metrics.LAG.set(lag(await head.read(conn, wakeup.head), position))
            if count < size:
                await first_of(
                    wakeup.wait(after=position, enough=size),
                    stop.wait(),
                    timeout=self._until_housekeeping(),
                )

    def _until_housekeeping(self) -> float:
        return max(
            0.0, self._last_housekeeping + self.settings.reconcile_interval - time.monotonic()
        )

    async def _housekeeping(self, conn: asyncpg.Connection, producer: handlers.Producer) -> None:
        """Every ``reconcile_interval``: dead letters to retry, overdue requests to resend."""
        if self._until_housekeeping() > 0:
            return
        self._last_housekeeping = time.monotonic()
        prefix = self.settings.topic_prefix
        try:
            await handlers.retry_dead_letters(conn, producer, prefix)
            sent = await handlers.reconcile(
                conn,
                producer,
                prefix,
                after=timedelta(seconds=self.settings.reconcile_after),
                cap=timedelta(seconds=self.settings.reconcile_max_backoff),
                now=datetime.now(UTC),
            )
        except Exception as exc:
            if is_outage(exc):
                raise
            # Not the fault of the event at the relay's position: do not count it there.
            log.exception("reconciliation failed; trying again next round")
            return
        if sent:
            metrics.REPUBLISHED.inc(sent)
            log.warning("published unfinished requests again", count=sent)
