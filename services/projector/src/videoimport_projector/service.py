"""The projector process: follow the log into the status read model until stopped."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog
from videoimport_eventlog.subscription import LogWakeup

from videoimport_projector import bootstrap, handlers
from videoimport_projector.adapters import metrics
from videoimport_projector.settings import ProjectorSettings

log = structlog.get_logger(__name__)
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def wait_for_append(wakeup: LogWakeup, stop: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stop.wait())]
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class Projector:
    def __init__(self, settings: ProjectorSettings) -> None:
        self.settings = settings
        self.prepared = asyncio.Event()
        """Set once the tables exist and the projector follows the log."""

    async def _migrate(self) -> None:
        conn = await bootstrap.connect(self.settings)
        try:
            await bootstrap.migrate(conn)
        finally:
            await conn.close()

    async def rebuild(self) -> int:
        """Empty the read model and replay the whole log; returns the final position."""
        conn = await bootstrap.connect(self.settings)
        try:
            await bootstrap.migrate(conn)
            await handlers.reset(conn)
            position = await handlers.catch_up(conn, self.settings.batch_size)
        finally:
            await conn.close()
        log.info("read model rebuilt", position=position)
        return position

    async def run(self, stop: asyncio.Event) -> None:
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
            except _DB_ERRORS:
                log.exception("projector lost its database connection")
                await pause(stop, self.settings.retry_delay)
        log.info("projector stopped")

    async def _follow(self, stop: asyncio.Event) -> None:
        conn = await bootstrap.connect(self.settings)
        wakeup = LogWakeup(self.settings.poll_interval)
        try:
            await wakeup.start(self.settings.database_url)
            size = self.settings.batch_size
            while not stop.is_set():
                progress = await handlers.project_batch(conn, size)
                metrics.APPLIED.inc(progress.events)
                metrics.COMPLETED.inc(progress.completed)
                metrics.POSITION.set(progress.position)
                metrics.LAG.set(max(0, await handlers.log_head(conn) - progress.position))
                if progress.events < size:
                    await wait_for_append(wakeup, stop)
        finally:
            await wakeup.close()
            with contextlib.suppress(Exception):
                await conn.close()
