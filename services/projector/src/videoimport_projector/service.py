"""The projector process: follow the log into the status read model until stopped.

consumes the event log (every job and video event) → emits JobCompleted (and the
status read model).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

import asyncpg
import structlog
from videoimport_eventlog import health
from videoimport_eventlog.faults import is_outage
from videoimport_eventlog.isolation import PoisonGuard
from videoimport_eventlog.loop import first_of, pause
from videoimport_eventlog.subscription import LogHead, LogWakeup

from videoimport_projector import bootstrap, handlers
from videoimport_projector import rebuild as rebuilding
from videoimport_projector.adapters import metrics
from videoimport_projector.settings import ProjectorSettings

log = structlog.get_logger(__name__)
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Projector:
    def __init__(self, settings: ProjectorSettings) -> None:
        self.settings = settings
        self.prepared = asyncio.Event()
        """Set once the tables exist and the projector follows the log."""
        self.guard = PoisonGuard(settings.retry_policy(), settings.batch_size)
        self._position: int | None = None
        """Where the last batch ended (only sizes the next batch: each batch reads
        the position it starts from under its row lock)."""

    async def _migrate(self) -> None:
        conn = await bootstrap.connect(self.settings)
        try:
            await bootstrap.migrate(conn)
        finally:
            await conn.close()

    async def rebuild(self, check: bool = False) -> rebuilding.Outcome:
        """Replay the whole log into shadow tables, then swap them in (see ``rebuild``);
        ``check``: compare them with the live tables instead, changing nothing."""
        conn = await bootstrap.connect(self.settings)
        try:
            await bootstrap.migrate(conn)
            return await rebuilding.rebuild(conn, self.settings.batch_size, check=check)
        finally:
            await conn.close()

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        probes = bootstrap.health_probes(settings)
        async with health.serving(settings.host, settings.health_port, probes):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._migrate()
                self.prepared.set()
                break
            except _DB_ERRORS:
                # e.g. the migration lost a deadlock against a live append.
                log.exception("projector cannot prepare the database; retrying")
                await pause(stop, self.settings.retry_delay)
        while not stop.is_set():
            try:
                await self._follow(stop)
            except Exception as exc:
                if not is_outage(exc) and not isinstance(exc, asyncpg.PostgresError):
                    raise
                log.exception("projector lost its database connection")
                await pause(stop, self.settings.retry_delay)
        log.info("projector stopped")

    async def _follow(self, stop: asyncio.Event) -> None:
        conn = await bootstrap.connect(self.settings)
        wakeup = LogWakeup(self.settings.poll_interval, self.settings.burst_wait)
        head = LogHead(self.settings.lag_interval)
        last_retry_check = 0.0
        self._position = None
        try:
            await wakeup.start(self.settings.database_url)
            while not stop.is_set():
                if time.monotonic() - last_retry_check > self.settings.dead_letter_check_interval:
                    last_retry_check = time.monotonic()
                    await handlers.retry_dead_letters(conn)
                progress = await self._step(conn, stop)
                if progress is None:
                    continue
                metrics.APPLIED.inc(progress.events)
                metrics.COMPLETED.inc(progress.completed)
                metrics.POSITION.set(progress.position)
                lag = await head.read(conn, wakeup.head) - progress.position
                metrics.LAG.set(max(0, lag))
                if progress.events < self.guard.batch_size:
                    await first_of(
                        wakeup.wait(after=progress.position, enough=self.guard.batch_size),
                        stop.wait(),
                    )
        finally:
            await wakeup.close()
            with contextlib.suppress(Exception):
                await conn.close()

    async def _step(
        self, conn: asyncpg.Connection, stop: asyncio.Event
    ) -> handlers.Progress | None:
        """One batch; a batch that keeps failing narrows to the event that fails, which
        is parked as a dead letter. None after a failure (the caller loops)."""
        # The last batch's end, or read again after a failure (a parked event moves it).
        position = self._position
        if position is None:
            position = await handlers.tracked_position(conn)
        try:
            progress = await handlers.project_batch(conn, self.guard.batch(position))
        except Exception as exc:
            self._position = None
            if is_outage(exc):
                raise
            verdict = self.guard.failed(position)
            log.warning(
                "projecting failed", position=position, verdict=verdict, error=str(exc)[:500]
            )
            if verdict == "park":
                await handlers.park_next(conn, exc, self.settings.attempts)
            else:
                await pause(stop, self.guard.retry_delay(random.random()))
            return None
        self.guard.succeeded()
        self._position = progress.position
        return progress
