"""The ingester's workers: claim queued requests fairly and run each to its one result.

Claims, wake-ups, retries per the ``RetryPolicy`` (outages uncounted), giving up as
``internal_error``, the watch beside each running video (``adapters/in_flight.py``),
and the hand-back of unfinished rows on stop; ``service.run`` wires them up.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import uuid

import structlog
from videoimport_eventlog.faults import describe, is_outage
from videoimport_eventlog.loop import first_of, pause
from videoimport_eventlog.retry import RetryPolicy

from videoimport_ingester.adapters import metrics, tasks
from videoimport_ingester.adapters.in_flight import Abandoned, InFlight, close_decided
from videoimport_ingester.adapters.s3_upload import is_storage_outage
from videoimport_ingester.adapters.unsettled_uploads import UnsettledUploads
from videoimport_ingester.handlers import Ingester
from videoimport_ingester.scheduling import Limits
from videoimport_ingester.settings import Settings

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
        self._idle: list[asyncio.Event] = []
        """The wake-ups of workers waiting for work (their last claim found nothing)."""
        self._claiming: set[asyncio.Event] = set()
        """The wake-ups of workers claiming right now."""
        self._backing_off: list[asyncio.Event] = []
        """The wake-ups of workers waiting out a failed claim (an outage)."""
        self._holding: set[str] = set()
        """Rows this instance has claimed and not yet finished or put back."""
        self._outages = 0

    def wake(self, count: int = 1) -> None:
        """``count`` rows were queued: as many idle workers look at once.

        Waking all of them would have each claim (under the claim lock) for one
        row. With none idle, a worker claiming right now looks again after its
        claim, which may have missed the row; busy workers claim when they finish.
        A worker backing off after a failed claim is woken too: a row was just
        queued, so the database answers again, and the backoff (up to a minute after
        a long outage) must not leave work waiting.
        """
        for _ in range(count):
            if self._idle:
                self._idle.pop().set()
            elif self._backing_off:
                self._backing_off.pop().set()
            elif self._claiming:
                next(iter(self._claiming)).set()
                return
            else:
                return

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
            self._claiming.add(wake)
            try:
                async with self._pool.acquire() as conn:
                    task = await tasks.claim(conn, self.owner, self._limits, self._lease)
            except Exception as exc:
                self._claiming.discard(wake)
                await self._back_off(wake, stop, self._outage_delay(exc, "claiming failed"))
                continue
            finally:
                self._claiming.discard(wake)
            if task is None:
                self._idle.append(wake)
                try:
                    await first_of(
                        wake.wait(), stop.wait(), timeout=self._settings.ingester_poll_interval
                    )
                finally:
                    if wake in self._idle:
                        self._idle.remove(wake)
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
            # The slot this video held is free again: this worker claims next, so
            # nobody else needs waking (another wake-up would race it for the slot).
            self._holding.discard(task.event_id)

    async def _back_off(self, wake: asyncio.Event, stop: asyncio.Event, delay: float) -> None:
        self._backing_off.append(wake)
        try:
            await first_of(wake.wait(), stop.wait(), timeout=delay)
        finally:
            if wake in self._backing_off:
                self._backing_off.remove(wake)

    async def _run(self, task: tasks.Task, flight: InFlight) -> None:
        try:
            if await close_decided(self._pool, self._uploads, task, when="queued"):
                return  # its result is there already: not downloaded at all
            if task.attempts >= self._policy.attempts:  # giving up failed last time
                await self._give_up(task)
                return
            try:
                result = await flight.run(self._ingester.handle(task.envelope, flight.report))
            except Abandoned:
                await close_decided(self._pool, self._uploads, task, when="downloading")
                return
            except Exception as exc:
                await self._failed(task, exc)
                return
            self._outages = 0
            if result is None:  # nothing appended: the row is still there
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
            result = await self._ingester.fail(
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
        if result is None:  # handled before: the row is still there
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
                    queued = await tasks.requeue_dead_letters(conn)
                self.wake(queued)
            except Exception as exc:
                log.warning("could not queue dead letters again", error=describe(exc))
            await pause(stop, LETTERS_INTERVAL)
