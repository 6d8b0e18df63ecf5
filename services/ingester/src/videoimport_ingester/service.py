"""The ingester process, until stopped:

consumes videoimport.videos (VideoImportRequested) → emits VideoImported / VideoImportSkipped / VideoImportFailed

- a keyed Kafka consumer (``Intake``) only queues each request as a row of
  ``ingest_tasks``, so offsets commit at once and a rebalance or a stop never
  waits for a download; a message that cannot be queued is parked as a dead
  letter (an undecodable one at once, others after ``ingester_attempts``);
- ``ingester_concurrency`` workers claim queued requests fairly (at most
  ``ingester_project_limit`` per project and ``ingester_job_limit`` per job
  running, across instances; ``adapters/tasks.py``), and delete the row once the
  terminal event is in the log. While ``Ingester.handle`` runs, its watch
  (``adapters/in_flight.py``) renews the lease, writes the phase and bytes to the
  row, and abandons a download whose video got its result elsewhere (a
  cancelled job); a request claimed with its result already there is not
  downloaded at all. A failure is retried per the ``RetryPolicy``: an outage
  (database, broker or S3 away) without counting, anything else counted; once
  the attempts are used up the video ends ``failed`` / ``internal_error``;
- a loop queues again the dead letters an operator marked for retry;
- the sweeper (``sweeper.py``) deletes media objects a re-import superseded once
  ``superseded_grace`` has passed, and records each as ``MediaObjectDeleted``.
  As the uploads ledger's janitor it also aborts/deletes what a killed worker
  left in S3 and nothing settled within ``unsettled_upload_grace``.

SIGTERM: nothing new is claimed; what runs gets ``shutdown_grace`` seconds, then
it is cancelled (multipart uploads aborted) and its rows are released, so
another instance takes them at once.
"""  # noqa: E501

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import uuid

import structlog
from videoimport_eventlog import health
from videoimport_eventlog.consumer import KeyedConcurrentConsumer
from videoimport_eventlog.faults import describe, is_outage
from videoimport_eventlog.kafka import ensure_topics
from videoimport_eventlog.loop import first_of, pause
from videoimport_eventlog.retry import RetryPolicy

from videoimport_ingester import bootstrap
from videoimport_ingester.adapters import metrics, tasks
from videoimport_ingester.adapters.in_flight import Abandoned, InFlight, close_decided
from videoimport_ingester.adapters.s3_upload import is_storage_outage
from videoimport_ingester.adapters.unsettled_uploads import UnsettledUploads
from videoimport_ingester.handlers import Ingester
from videoimport_ingester.intake import Intake
from videoimport_ingester.scheduling import Limits
from videoimport_ingester.settings import Settings
from videoimport_ingester.sweeper import Sweeper

log = structlog.get_logger(__name__)

RELEASE_TIMEOUT = 3.0
"""Seconds a stopping instance spends handing its rows back (else their leases run out)."""
LETTERS_INTERVAL = 5.0
"""How often dead letters an operator asked to retry are queued again."""


def internal_reason(event_id: str) -> str:
    """What a video that failed on our side says: no internals, a reference for the logs."""
    return f"internal error (ref {event_id})"


def _outage(exc: BaseException) -> bool:
    return is_outage(exc) or is_storage_outage(exc)


class Workers:
    """``ingester_concurrency`` workers taking requests from the queue."""

    def __init__(self, ingester: Ingester, settings: Settings, policy: RetryPolicy) -> None:
        self._ingester = ingester
        self._pool = ingester.pool
        self._uploads = UnsettledUploads(ingester.pool, ingester.uploader)
        self._settings = settings
        self._policy = policy
        self._limits = Limits(
            project=settings.ingester_project_limit, job=settings.ingester_job_limit
        )
        self._lease = settings.ingester_lease_seconds
        self.owner = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self._wakes = [asyncio.Event() for _ in range(settings.ingester_concurrency)]
        self._holding: set[str] = set()
        """Rows this instance has claimed and not yet finished or put back."""
        self._outages = 0

    def wake(self) -> None:
        """Something was queued: idle workers look at once."""
        for event in self._wakes:
            event.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop``; then at most ``shutdown_grace`` for what runs."""
        workers = [asyncio.create_task(self._work(wake, stop)) for wake in self._wakes]
        letters = asyncio.create_task(self._requeue_letters(stop))
        await stop.wait()
        log.info("stopping: finishing videos in flight", in_flight=len(self._holding))
        _, unfinished = await asyncio.wait(workers, timeout=self._settings.shutdown_grace)
        if unfinished:
            log.warning(
                "cancelling videos still in flight after the grace period",
                in_flight=len(self._holding),
            )
            for worker in unfinished:
                worker.cancel()
        await asyncio.gather(*workers, letters, return_exceptions=True)
        await self._release_held()

    async def _release_held(self) -> None:
        held = sorted(self._holding)
        if not held:
            return
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT), self._pool.acquire() as conn:
                released = await tasks.release(conn, self.owner, held)
            log.info("released unfinished videos to other instances", count=released)
        except Exception:
            log.warning("could not release videos; their leases run out", exc_info=True)

    async def _work(self, wake: asyncio.Event, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wake.clear()  # before looking: a wake-up while we look is not lost
            try:
                async with self._pool.acquire() as conn:
                    task = await tasks.claim(conn, self.owner, self._limits, self._lease)
            except Exception as exc:
                await pause(stop, self._outage_delay(exc, "claiming failed"))
                continue
            if task is None:
                await first_of(
                    wake.wait(), stop.wait(), timeout=self._settings.ingester_poll_interval
                )
                continue
            self._holding.add(task.event_id)
            check_every = self._settings.ingester_cancel_check_interval
            flight = InFlight(self._pool, task, self.owner, self._lease, check_every)
            watch = asyncio.create_task(flight.watch())
            metrics.TASKS_RUNNING.inc()
            try:
                await self._run(task, flight)
            finally:
                metrics.TASKS_RUNNING.dec()
                watch.cancel()
            self._holding.discard(task.event_id)
            self.wake()  # a slot of this project and job is free again

    async def _run(self, task: tasks.Task, flight: InFlight) -> None:
        try:
            if await close_decided(self._pool, self._uploads, task, when="queued"):
                return  # its result is there already: not downloaded at all
            if task.attempts >= self._policy.attempts:  # giving up failed last time
                await self._give_up(task)
                return
            try:
                await flight.run(self._ingester.handle(task.envelope, flight.report))
            except Abandoned:
                await close_decided(self._pool, self._uploads, task, when="downloading")
                return
            except Exception as exc:
                await self._failed(task, exc)
                return
            self._outages = 0
            async with self._pool.acquire() as conn:
                await tasks.finish(conn, task.event_id)
        except Exception as exc:
            # Not even the failure could be recorded: the lease runs out and
            # the request is claimed again.
            await asyncio.sleep(self._outage_delay(exc, "could not record a result"))

    async def _failed(self, task: tasks.Task, exc: Exception) -> None:
        error = describe(exc)
        if _outage(exc):
            metrics.TASK_FAILURES.labels(kind="outage").inc()
            delay = self._outage_delay(exc, "request failed on an outage; retrying")
            async with self._pool.acquire() as conn:
                await tasks.retry_later(
                    conn, task.event_id, self.owner, delay=delay, error=error, counted=False
                )
            return
        metrics.TASK_FAILURES.labels(kind="counted").inc()
        attempt = task.attempts + 1
        log.error("request failed", event_id=task.event_id, attempt=attempt, exc_info=exc)
        if self._policy.exhausted(attempt):
            await self._give_up(task, error)
            return
        async with self._pool.acquire() as conn:
            await tasks.retry_later(
                conn,
                task.event_id,
                self.owner,
                delay=self._policy.delay(attempt, random.random()),
                error=error,
                counted=True,
            )

    async def _give_up(self, task: tasks.Task, error: str | None = None) -> None:
        """The video ends ``failed`` / ``internal_error``; the details stay in the log."""
        try:
            await self._ingester.fail(
                task.envelope, "internal_error", internal_reason(task.event_id)
            )
        except Exception as exc:
            # Counted, so the next claim comes straight back here.
            async with self._pool.acquire() as conn:
                await tasks.retry_later(
                    conn,
                    task.event_id,
                    self.owner,
                    delay=self._outage_delay(exc, "could not record the failure"),
                    error=describe(exc),
                    counted=True,
                )
            return
        metrics.TASK_FAILURES.labels(kind="given_up").inc()
        log.error("request failed for good", event_id=task.event_id, last_error=error)
        async with self._pool.acquire() as conn:
            await tasks.finish(conn, task.event_id)

    def _outage_delay(self, exc: BaseException, message: str) -> float:
        """Backoff growing with consecutive outages, logged with the error."""
        self._outages += 1
        delay = self._policy.delay(min(self._outages, 32), random.random())
        log.warning(message, retry_in=round(delay, 2), error=describe(exc))
        return delay

    async def _requeue_letters(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with self._pool.acquire() as conn:
                    if await tasks.requeue_dead_letters(conn):
                        self.wake()
            except Exception as exc:
                log.warning("could not queue dead letters again", error=describe(exc))
            await pause(stop, LETTERS_INTERVAL)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Consume and work until ``stop`` is set; exits within about ``shutdown_grace``."""
    topic = bootstrap.videos_topic(settings)
    await ensure_topics(settings.kafka_bootstrap, settings.kafka_partitions, topics=[topic])
    policy = bootstrap.retry_policy(settings)
    async with (
        bootstrap.build_ingester(settings) as ingester,
        health.serving(
            settings.host, settings.health_port, bootstrap.health_probes(settings, ingester)
        ),
    ):
        workers = Workers(ingester, settings, policy)
        intake = Intake(ingester.pool, workers.wake)
        consumer = bootstrap.consumer(settings)
        keyed = KeyedConcurrentConsumer(
            consumer,
            intake.on_record,
            max_in_flight=settings.ingester_concurrency,
            policy=policy,
            on_give_up=intake.on_give_up,
            drain_timeout=settings.shutdown_grace,
        )
        consumer.subscribe([topic], listener=keyed.listener())
        await consumer.start()
        log.info(
            "ingester started", topic=topic, group=bootstrap.group_id(settings), owner=workers.owner
        )
        sweeper = Sweeper(
            ingester.pool,
            ingester.uploader,
            settings.superseded_sweep_interval,
            policy,
            unsettled_grace=settings.unsettled_upload_grace,
        )
        consuming = asyncio.create_task(keyed.run())
        working = asyncio.create_task(workers.run(stop))
        sweeping = asyncio.create_task(sweeper.run(stop))
        loops = (consuming, working, sweeping)
        try:
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({*loops, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stop.set()  # whatever ended first, the rest stops too
            keyed.stop()
            await asyncio.gather(*loops, return_exceptions=True)
        finally:
            for task in loops:
                task.cancel()
            with contextlib.suppress(Exception):
                await consumer.stop()
        for task in loops:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure  # the consumer (or the workers) failed on their own
        log.info("ingester stopped")
