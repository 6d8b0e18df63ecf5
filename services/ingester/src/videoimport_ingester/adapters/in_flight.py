"""One video a worker is running, watched from beside it.

``InFlight.watch`` runs next to the request's handling and, on one connection at a
time: renews the lease every third of it; writes the progress the download
reports (``scheduling.ProgressReport``: nothing in its first half second, then a
new phase at once, byte counts at most once a second) to the queue row; and,
while the video downloads, looks every
``check_every`` seconds whether its result was recorded elsewhere (the API's
cancel appends ``VideoImportFailed``/``cancelled`` at version 1 of the video's
stream). When it was, the handling is cancelled (the multipart upload is aborted,
as on shutdown) and ``InFlight.run`` raises ``Abandoned``. Once the result is
being stored the handling is left alone: its commit's conflict handling covers
a late cancel. A failing write or look is logged and tried again next time; it
never fails the download.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from typing import Any, Literal, TypeVar

import asyncpg
import structlog
from videoimport_eventlog import tracking
from videoimport_eventlog.faults import describe
from videoimport_events import Envelope, VideoImportRequested, video_stream

from videoimport_ingester.adapters import metrics, tasks
from videoimport_ingester.adapters.unsettled_uploads import UnsettledUploads
from videoimport_ingester.domain import CONSUMER
from videoimport_ingester.scheduling import (
    FIRST_PROGRESS_AFTER,
    Every,
    ProgressReport,
    ProgressSnapshot,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")
Noticed = Literal["queued", "downloading"]
"""When a worker saw that its video has its result: at its claim, or while downloading."""


class Abandoned(Exception):
    """The video got its result elsewhere while downloading: the download was cancelled."""


def result_stream(envelope: Envelope) -> str | None:
    """The stream whose version 1 is the requested video's one result (None: not a
    request; handling it fails on its own)."""
    request = envelope.data
    if not isinstance(request, VideoImportRequested):
        return None
    return video_stream(request.job_id, request.index)


async def result_recorded(conn: asyncpg.Connection, stream_id: str) -> bool:
    """Whether the video has its result (one lookup in the events' unique index)."""
    found = await conn.fetchval(
        "SELECT 1 FROM events WHERE stream_id = $1 AND stream_version = 1", stream_id
    )
    return found is not None


async def close_decided(
    pool: asyncpg.Pool, uploads: UnsettledUploads, task: tasks.Task, *, when: Noticed
) -> bool:
    """When the request's video has its result: forget the request (no download, or
    none any more) and settle its writes; False (nothing done) when it has none.

    ``when="downloading"`` (``Abandoned``) knows the result is there. The request
    is marked handled first: nothing can register its keys any more, so the
    ledger settles all of them. A result this ingester recorded itself (a crash
    before its row was deleted) only settles, and is not counted as abandoned.
    """
    if when == "queued" and task.decided is False:
        return False  # looked up with the claim
    stream = result_stream(task.envelope)
    async with pool.acquire() as conn:
        unknown = when == "queued" and task.decided is None
        if unknown and (stream is None or not await result_recorded(conn, stream)):
            return False
        elsewhere = await tracking.claim_message(conn, CONSUMER, task.event_id)
    await uploads.settle_request(task.event_id)
    async with pool.acquire() as conn:
        await tasks.finish(conn, task.event_id)
    if elsewhere:
        metrics.ABANDONED.labels(when=when).inc()
        log.info("video got its result elsewhere; abandoned", event_id=task.event_id, when=when)
    else:
        log.info("already handled", event_id=task.event_id)
    return True


class InFlight:
    """The watch over one claimed request: lease, progress, a result from elsewhere."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        task: tasks.Task,
        owner: str,
        lease_seconds: float,
        check_every: float,
    ) -> None:
        self._pool = pool
        self._event_id = task.event_id
        self._stream_id = result_stream(task.envelope)
        self._owner = owner
        self._lease = lease_seconds
        self._check_every = check_every
        self._wake = asyncio.Event()
        self.report = ProgressReport(
            on_unwritten=self._wake.set,
            quiet_until=asyncio.get_running_loop().time() + FIRST_PROGRESS_AFTER,
        )
        self._handling: asyncio.Future[Any] | None = None
        self._abandoned = False

    async def run(self, handling: Awaitable[T]) -> T:
        """Await ``handling`` as a task the watch may cancel; ``Abandoned`` when it did."""
        future = asyncio.ensure_future(handling)
        self._handling = future
        try:
            return await future
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._abandoned and (current is None or not current.cancelling()):
                raise Abandoned(self._event_id) from None
            raise  # the worker itself is being cancelled (a stop past its grace)
        finally:
            self._handling = None

    async def watch(self) -> None:
        """Until cancelled (or the lease is lost, or the handling was abandoned)."""
        loop = asyncio.get_running_loop()
        renewal = Every(self._lease / 3, loop.time())
        check = Every(self._check_every, loop.time())
        while True:
            self._wake.clear()
            due = self.report.due_at()
            wake_at = min(renewal.next_at, check.next_at, math.inf if due is None else due)
            delay = wake_at - loop.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except TimeoutError:
                    pass
            now = loop.time()
            if renewal.due(now) and not await self._renew():
                return
            progress = self.report.take(now)
            if progress is not None:
                await self._write(progress)
            if check.due(now) and await self._recorded_elsewhere() and self._abandon():
                return

    async def _renew(self) -> bool:
        try:
            async with self._pool.acquire() as conn:
                if await tasks.renew(conn, self._event_id, self._owner, self._lease):
                    return True
        except Exception as exc:
            log.warning("lease renewal failed", event_id=self._event_id, error=describe(exc))
            return True
        log.warning("lease lost; another instance may redo it", event_id=self._event_id)
        return False

    async def _write(self, progress: ProgressSnapshot) -> None:
        try:
            async with self._pool.acquire() as conn:
                await tasks.report_progress(conn, self._event_id, self._owner, progress)
        except Exception as exc:
            log.warning("could not record progress", event_id=self._event_id, error=describe(exc))

    async def _recorded_elsewhere(self) -> bool:
        if self.report.phase != "downloading" or self._stream_id is None:
            return False  # nothing to save yet, or too late: the result is being stored
        try:
            async with self._pool.acquire() as conn:
                recorded = await result_recorded(conn, self._stream_id)
        except Exception as exc:
            log.warning("could not look for a result", event_id=self._event_id, error=describe(exc))
            return False
        # Looked while downloading; the handling may have moved on to storing meanwhile.
        return recorded and self.report.phase == "downloading"

    def _abandon(self) -> bool:
        """Cancel the handling; False when there is none (any more) to cancel."""
        if self._handling is not None and self._handling.cancel():
            self._abandoned = True
        return self._abandoned
