"""The relay process: wait to lead, then follow the log onto Kafka until stopped."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from videoimport_eventlog.subscription import LogWakeup

from videoimport_relay import bootstrap, handlers
from videoimport_relay.adapters import leader, metrics
from videoimport_relay.domain import lag
from videoimport_relay.settings import RelaySettings

log = structlog.get_logger(__name__)
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
_TRANSIENT = (*_DB_ERRORS, KafkaError)


async def _first(*aws: asyncio.Future[object] | asyncio.Task[object]) -> None:
    done, pending = await asyncio.wait(aws, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for task in done:
        task.result()


async def pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Relay:
    """Publishes the event log to Kafka; one leader at a time, the rest stand by."""

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self.is_leader = False
        self.prepared = asyncio.Event()
        """Set once tables and topics exist (then the instance leads or stands by)."""

    async def run(self, stop: asyncio.Event) -> None:
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
        wakeup = LogWakeup(self.settings.poll_interval)
        await wakeup.start(self.settings.database_url)
        try:
            while not stop.is_set():
                producer = bootstrap.producer(self.settings)
                try:
                    await producer.start()
                    await self._follow(conn, producer, wakeup, stop)
                except _DB_ERRORS:
                    raise
                except Exception:
                    # A Kafka error: the batch was not saved and is sent again by a
                    # fresh producer (the old one may have given up on a sequence).
                    metrics.FAILED_BATCHES.inc()
                    log.exception("publishing failed; the batch is sent again")
                    await pause(stop, self.settings.retry_delay)
                finally:
                    with contextlib.suppress(Exception):
                        await producer.stop()
        finally:
            await wakeup.close()

    async def _follow(
        self,
        conn: asyncpg.Connection,
        producer: handlers.Producer,
        wakeup: LogWakeup,
        stop: asyncio.Event,
    ) -> None:
        size = self.settings.batch_size
        while not stop.is_set():
            count, position = await handlers.relay_batch(
                conn, producer, self.settings.topic_prefix, size
            )
            metrics.PUBLISHED.inc(count)
            metrics.POSITION.set(position)
            metrics.LAG.set(lag(await handlers.log_head(conn), position))
            if count < size:
                await _first(
                    asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stop.wait())
                )
