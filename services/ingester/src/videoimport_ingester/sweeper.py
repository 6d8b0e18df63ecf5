"""Deletes media objects a re-import superseded, once their grace period is over;
and, as the uploads ledger's janitor, what killed workers left behind.

Every ``superseded_sweep_interval`` seconds the sweeper takes the due rows of
``superseded_objects`` and, per row: deletes the S3 object (idempotent: a
missing object is fine), then in one transaction appends ``MediaObjectDeleted``
at version 0 of ``media-{media_id}/deleted-{uuid5 of the key}`` and deletes the
row. A crash between the two steps leaves the row: the next sweep deletes again
(harmless) and appends. A deletion already in the log (another instance, or a
crash after the commit of the event) is a ``StreamConflict``: only the row goes.
An outage (database or S3 away) is waited out with growing backoff.

The janitor round takes ledger entries older than ``unsettled_upload_grace``
whose request is handled, or whose multipart upload's lease has run out, and
settles them as ``domain.cleanup_for`` says (abort, delete unless referenced,
then forget: a crash repeats idempotent steps). Entries a live worker still
leases are never touched. Normally the request's own commit or its next claim
settles its writes first; the janitor is the backstop.
"""

from __future__ import annotations

import asyncio
import random

import asyncpg
import structlog
from videoimport_eventlog import store
from videoimport_eventlog.faults import describe, is_outage
from videoimport_eventlog.loop import pause
from videoimport_eventlog.retry import RetryPolicy
from videoimport_events import MediaObjectDeleted

from videoimport_ingester import domain
from videoimport_ingester.adapters import metrics, superseded
from videoimport_ingester.adapters.s3_upload import S3Uploader, is_storage_outage
from videoimport_ingester.adapters.unsettled_uploads import UnsettledUploads

log = structlog.get_logger(__name__)

BATCH = 100
"""Rows one round takes; a full batch that made progress is followed by another
round at once (one that made none waits: rows failing again and again must not
turn the sweeper into a busy loop against S3 and the database)."""


def another_round_at_once(rounds: tuple[tuple[int, int], ...]) -> bool:
    """Given each round's (due, done): more is likely due and the last round got on."""
    return any(due >= BATCH and done > 0 for due, done in rounds)


def _outage(exc: BaseException) -> bool:
    return is_outage(exc) or is_storage_outage(exc)


def deletion(row: superseded.Superseded) -> store.NewEvent:
    """The event recording that ``row``'s object is gone (the same stream every time)."""
    event = MediaObjectDeleted(
        project=row.project,
        system_name=row.system_name,
        external_id=row.external_id,
        media_id=row.media_id,
        storage_key=row.storage_key,
        reason="superseded",
    )
    return store.NewEvent(
        event=event,
        stream_id=domain.deleted_stream_id(row.media_id, row.storage_key),
        stream_version=0,
        correlation_id=row.media_id,
        project=row.project,
    )


class Sweeper:
    def __init__(
        self,
        pool: asyncpg.Pool,
        uploader: S3Uploader,
        interval: float,
        policy: RetryPolicy,
        *,
        unsettled_grace: float = 3600.0,
    ) -> None:
        self._pool = pool
        self._uploader = uploader
        self._interval = interval
        self._policy = policy
        self._unsettled = UnsettledUploads(pool, uploader)
        self._unsettled_grace = unsettled_grace
        self._outages = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every ``interval`` until ``stop``; never raises."""
        while not stop.is_set():
            delay = self._interval
            try:
                rounds = (await self._sweep_round(stop), await self._janitor_round(stop))
                if another_round_at_once(rounds):
                    delay = 0.0
                self._outages = 0
            except Exception as exc:
                if _outage(exc):
                    self._outages += 1
                    delay = self._policy.delay(min(self._outages, 32), random.random())
                    log.warning(
                        "sweeping failed on an outage; retrying",
                        retry_in=round(delay, 2),
                        error=describe(exc),
                    )
                else:
                    log.error("sweeping failed", exc_info=exc)
            await pause(stop, delay)

    async def sweep(self, stop: asyncio.Event | None = None) -> int:
        """One round: the due rows, each deleted and recorded; returns how many were due.

        An outage ends the round (raised); any other failure of one row is logged
        and the row is tried again next round.
        """
        due, _ = await self._sweep_round(stop)
        return due

    async def _sweep_round(self, stop: asyncio.Event | None) -> tuple[int, int]:
        """(rows due, rows deleted)."""
        async with self._pool.acquire() as conn:
            rows = await superseded.due(conn, BATCH)
        deleted = 0
        for row in rows:
            if stop is not None and stop.is_set():
                break
            try:
                await self._delete(row)
                deleted += 1
            except Exception as exc:
                if _outage(exc):
                    raise
                log.error(
                    "could not delete a superseded object; retrying next round",
                    storage_key=row.storage_key,
                    exc_info=exc,
                )
        return len(rows), deleted

    async def clean_uploads(self, stop: asyncio.Event | None = None) -> int:
        """One janitor round over the uploads ledger; returns how many entries were due.

        An outage ends the round (raised); other failures leave the entry for the next.
        """
        due, _ = await self._janitor_round(stop)
        return due

    async def _janitor_round(self, stop: asyncio.Event | None) -> tuple[int, int]:
        """(entries due, entries that needed and got a cleanup)."""
        due = await self._unsettled.due(self._unsettled_grace, BATCH)
        done = await self._unsettled.settle_all(due, by="janitor", stop=stop)
        return len(due), done

    async def _delete(self, row: superseded.Superseded) -> None:
        await self._uploader.delete(row.storage_key)
        new = deletion(row)
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await store.append(conn, [new])
                    await superseded.forget(conn, row.storage_key)
            except store.StreamConflict:
                log.info("deletion already recorded", storage_key=row.storage_key)
                await superseded.forget(conn, row.storage_key)
                return
        metrics.SUPERSEDED_DELETED.inc()
        log.info(
            "superseded media object deleted",
            storage_key=row.storage_key,
            media_id=row.media_id,
            project=row.project,
        )
