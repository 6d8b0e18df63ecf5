"""The uploads ledger (``unsettled_uploads``): object writes begun and not yet settled.

Owned by the ingester. A ``Journal`` (one per request) records each write before
its first S3 call and its multipart upload id as soon as S3 names it, so a
SIGKILL cannot leave an upload or an object that nobody knows of. The commit
of the terminal event deletes the entries of the objects the registry now
references, the video and its poster (``settle_in_commit``), and returns the
rest, which ``UnsettledUploads`` then settles: abort the upload, delete the
object unless referenced, forget the entry, in that order, so a crash at any
point only repeats idempotent work.
What to do with an entry is ``domain.cleanup_for``'s decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

import asyncpg
import structlog
from videoimport_eventlog.faults import is_outage

from videoimport_ingester.adapters import metrics
from videoimport_ingester.adapters.s3_upload import S3Uploader, is_storage_outage
from videoimport_ingester.domain import (
    CONSUMER,
    Cleanup,
    KeptWrite,
    UnsettledUpload,
    cleanup_for,
)

log = structlog.get_logger(__name__)

# What the database knows about an entry ``u`` (``$1``: the inbox consumer).
_FACTS = (
    "u.id AS entry_id, u.request_id, u.storage_key, u.upload_id,"
    " EXISTS (SELECT 1 FROM inbox i WHERE i.consumer = $1 AND i.message_id = u.request_id)"
    " AS handled,"
    " EXISTS (SELECT 1 FROM ingest_tasks t WHERE t.event_id = u.request_id"
    "  AND t.lease_until > now()) AS leased,"
    " (EXISTS (SELECT 1 FROM media m WHERE m.storage_key = u.storage_key)"
    # A poster's key is <project>/<media id>/<request>.poster.jpg: found by media id.
    "  OR EXISTS (SELECT 1 FROM media m WHERE m.media_id = split_part(u.storage_key, '/', -2)"
    "   AND m.poster_key = u.storage_key)"
    "  OR EXISTS (SELECT 1 FROM superseded_objects s WHERE s.storage_key = u.storage_key))"
    " AS referenced"
)


def _entries(rows: Iterable[asyncpg.Record]) -> list[UnsettledUpload]:
    return [UnsettledUpload(**dict(r)) for r in rows]


class Journal:
    """The ``UploadJournal`` of one request's writes."""

    def __init__(self, pool: asyncpg.Pool, request_id: str) -> None:
        self._pool = pool
        self._request_id = request_id

    async def writing(self, key: str) -> int:
        async with self._pool.acquire() as conn:
            entry: int = await conn.fetchval(
                "INSERT INTO unsettled_uploads (request_id, storage_key) VALUES ($1, $2)"
                " RETURNING id",
                self._request_id,
                key,
            )
        return entry

    async def multipart(self, entry: int, upload_id: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE unsettled_uploads SET upload_id = $2 WHERE id = $1", entry, upload_id
            )

    async def aborted(self, entry: int) -> None:
        async with self._pool.acquire() as conn:
            await forget(conn, entry)


async def settle_in_commit(
    conn: asyncpg.Connection, request_id: str, kept: Sequence[KeptWrite]
) -> list[UnsettledUpload]:
    """In the transaction of the request's terminal event: delete the entries the
    registered objects (``kept``: the video, its poster) account for; returns the
    others, to clean up after the commit (they stay until then, so a crash in
    between loses none).

    An entry of a kept key needs nothing when it is a PutObject (overwritten by,
    or the same as, what is kept) or the kept upload itself; another upload of
    that key (an earlier attempt's) must still be aborted.
    """
    rows = await conn.fetch(
        "WITH kept AS (DELETE FROM unsettled_uploads d"
        " USING unnest($3::text[], $4::text[]) AS k(storage_key, upload_id)"
        " WHERE d.request_id = $2 AND d.storage_key = k.storage_key"
        " AND (d.upload_id IS NULL OR d.upload_id = k.upload_id) RETURNING d.id)"
        f" SELECT {_FACTS} FROM unsettled_uploads u"
        " WHERE u.request_id = $2 AND u.id NOT IN (SELECT id FROM kept) ORDER BY u.id",
        CONSUMER,
        request_id,
        [k.storage_key for k in kept],
        [k.upload_id for k in kept],
    )
    return _entries(rows)


async def forget(conn: asyncpg.Connection, entry: int) -> None:
    await conn.execute("DELETE FROM unsettled_uploads WHERE id = $1", entry)


class UnsettledUploads:
    """Looks entries up and settles them (S3 first, then the entry)."""

    def __init__(self, pool: asyncpg.Pool, uploader: S3Uploader) -> None:
        self._pool = pool
        self._uploader = uploader

    def journal(self, request_id: str) -> Journal:
        return Journal(self._pool, request_id)

    async def of_request(self, request_id: str) -> list[UnsettledUpload]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_FACTS} FROM unsettled_uploads u WHERE u.request_id = $2 ORDER BY u.id",
                CONSUMER,
                request_id,
            )
        return _entries(rows)

    async def settle_request(self, request_id: str) -> int:
        """Settle what is left of a request's writes (``settle_all``)."""
        return await self.settle_all(await self.of_request(request_id), by="request")

    async def due(self, grace: float, limit: int) -> list[UnsettledUpload]:
        """Entries older than ``grace`` seconds that there is something to do about,
        the oldest first. (The filter narrows what ``cleanup_for`` would act on, so a
        round never fills up with entries it leaves alone.)"""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT entry_id, request_id, storage_key, upload_id, handled, leased, referenced"
                f" FROM (SELECT {_FACTS}, u.started_at FROM unsettled_uploads u"
                "  WHERE u.started_at <= now() - make_interval(secs => $2)) f"
                " WHERE f.handled OR (f.upload_id IS NOT NULL AND NOT f.leased)"
                " ORDER BY f.started_at, f.entry_id LIMIT $3",
                CONSUMER,
                grace,
                limit,
            )
        return _entries(rows)

    async def settle(self, entry: UnsettledUpload) -> Cleanup | None:
        """Carry out ``cleanup_for(entry)``; returns what was done (None: nothing)."""
        cleanup = cleanup_for(entry)
        if cleanup is None:
            return None
        if cleanup.abort_upload is not None:
            await self._uploader.abort(entry.storage_key, cleanup.abort_upload)
        if cleanup.delete_object:
            await self._uploader.delete(entry.storage_key)
        async with self._pool.acquire() as conn:
            if cleanup.forget:
                await forget(conn, entry.entry_id)
            elif cleanup.abort_upload is not None:
                await conn.execute(
                    "UPDATE unsettled_uploads SET upload_id = NULL"
                    " WHERE id = $1 AND upload_id = $2",
                    entry.entry_id,
                    cleanup.abort_upload,
                )
        return cleanup

    async def settle_all(
        self, entries: Iterable[UnsettledUpload], *, by: str, stop: asyncio.Event | None = None
    ) -> int:
        """Settle each entry; returns how many needed something done.

        An outage (database or S3 away) ends the loop, raised: the caller retries
        later. Any other failure is logged and the entry stays for a later round.
        """
        done = 0
        for entry in entries:
            if stop is not None and stop.is_set():
                break
            try:
                cleanup = await self.settle(entry)
            except Exception as exc:
                if is_outage(exc) or is_storage_outage(exc):
                    raise
                log.error(
                    "could not settle an unsettled upload; retrying later",
                    storage_key=entry.storage_key,
                    exc_info=exc,
                )
                continue
            if cleanup is not None:
                done += 1
                metrics.UNSETTLED_CLEANED.labels(by=by).inc()
                log.info(
                    "unsettled upload cleaned up",
                    by=by,
                    storage_key=entry.storage_key,
                    request_id=entry.request_id,
                    aborted=cleanup.abort_upload is not None,
                    deleted=cleanup.delete_object,
                )
        return done
