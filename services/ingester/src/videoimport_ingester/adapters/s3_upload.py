"""Stream bytes of unknown length into one S3 object with bounded memory.

Bytes are cut into parts of ``part_size`` as they arrive; at most
``parts_in_flight`` parts upload at once, and reading waits while that many are
busy, so memory stays near ``(parts_in_flight + 1) x part_size`` whatever the
object's size. A body smaller than one part goes up as a single PutObject. Any
failure, and a cancellation (a stopping worker), aborts the multipart upload, so
no orphaned parts are left behind (the abort itself is bounded in time). A
SIGKILL runs none of that: given an ``UploadJournal`` (the uploads ledger), each
write is recorded before its first S3 call, and its upload id as soon as S3
names it, so what a killed process left can be found and removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

import msgspec
import structlog
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from videoimport_ingester.adapters.buffer_budget import BufferBudget

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

log = structlog.get_logger(__name__)

ABORT_TIMEOUT = 3.0
"""Seconds an abort may take (also while a stopping worker is being cancelled)."""
_MISSING_CODES = frozenset({"NoSuchKey", "404"})
_NO_UPLOAD_CODES = frozenset({"NoSuchUpload", "404"})
_BUSY_CODES = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"})


def is_storage_outage(exc: BaseException) -> bool:
    """S3 unreachable or overloaded (wait it out), as opposed to a refusal (count it)."""
    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or exc.response.get("Error", {}).get("Code") in _BUSY_CODES
    return False


class UploadJournal(Protocol):
    """Where writes are recorded before they start (the ingester's uploads ledger)."""

    async def writing(self, key: str) -> int:
        """Before the first S3 call that may leave something under ``key``; returns
        the entry. Raising stops the upload before anything is written."""
        ...

    async def multipart(self, entry: int, upload_id: str) -> None:
        """The entry's multipart upload exists (recorded before any part is sent)."""
        ...

    async def aborted(self, entry: int) -> None:
        """The entry's multipart upload was aborted: nothing of it is left."""
        ...


class UploadResult(msgspec.Struct, frozen=True, kw_only=True):
    size: int
    sha256: str
    parts: int
    """1 for a single PutObject."""
    upload_id: str | None = None
    """The completed multipart upload (None for a single PutObject)."""


class _PartBuffer:
    """Bytes collected into parts of a fixed size.

    Each part is built in a ``BytesIO`` that owns its buffer and is handed to
    botocore as is: given ``bytes``, botocore wraps them in a ``BytesIO`` that
    the HTTP client then copies, doubling the memory of every part in flight.
    """

    def __init__(self, part_size: int) -> None:
        self._part_size = part_size
        self._current = io.BytesIO()

    @property
    def size(self) -> int:
        return self._current.tell()

    def add(self, chunk: bytes) -> list[io.BytesIO]:
        """Take ``chunk``; returns the parts it completed."""
        full: list[io.BytesIO] = []
        view = memoryview(chunk)
        while view:
            room = self._part_size - self._current.tell()
            self._current.write(view[:room])
            view = view[room:]
            if self._current.tell() == self._part_size:
                full.append(self.take())
        return full

    def take(self) -> io.BytesIO:
        part, self._current = self._current, io.BytesIO()
        part.seek(0)
        return part


class S3Uploader:
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        part_size: int,
        parts_in_flight: int = 2,
        buffer_budget: int | None = None,
    ) -> None:
        """``buffer_budget``: the bytes of part buffers all uploads together may hold
        (``BufferBudget``); None: only each upload's own ``parts_in_flight`` bound."""
        self._client = client
        self._bucket = bucket
        self._part_size = part_size
        self._parts_in_flight = parts_in_flight
        self._budget = None if buffer_budget is None else BufferBudget(buffer_budget)

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def client(self) -> S3Client:
        return self._client

    async def upload(
        self,
        key: str,
        content_type: str,
        chunks: AsyncIterator[bytes],
        journal: UploadJournal | None = None,
        *,
        size_hint: int | None = None,
    ) -> UploadResult:
        """Store ``chunks`` at ``key``; ``size_hint`` (the announced size, if any) keeps
        a small object from reserving a whole part of the buffer budget."""
        digest = hashlib.sha256()
        buffer = _PartBuffer(self._part_size)
        multipart: _Multipart | None = None
        parts = _Reservations(self._budget, self._part_size, size_hint)
        try:
            await parts.next()
            async for chunk in chunks:
                digest.update(chunk)
                for part in buffer.add(chunk):
                    if multipart is None:
                        multipart = await self._start(key, content_type, journal)
                    await multipart.add(part, parts.hand_over())
                    await parts.next()
            if multipart is None:
                size = buffer.size
                if journal is not None:
                    await journal.writing(key)
                await self._client.put_object(
                    Bucket=self._bucket, Key=key, Body=buffer.take(), ContentType=content_type
                )
                return UploadResult(size=size, sha256=digest.hexdigest(), parts=1)
            if buffer.size:
                await multipart.add(buffer.take(), parts.hand_over())
            part_count = await multipart.complete()
        except BaseException:
            if multipart is not None:
                await multipart.abort()
            raise
        finally:
            await parts.release_current()
        return UploadResult(
            size=multipart.size,
            sha256=digest.hexdigest(),
            parts=part_count,
            upload_id=multipart.upload_id,
        )

    async def _start(
        self, key: str, content_type: str, journal: UploadJournal | None
    ) -> _Multipart:
        entry = None if journal is None else await journal.writing(key)
        created = await self._client.create_multipart_upload(
            Bucket=self._bucket, Key=key, ContentType=content_type
        )
        multipart = _Multipart(
            self._client, self._bucket, key, created["UploadId"], self._parts_in_flight
        )
        if journal is not None and entry is not None:
            try:
                # At once: between S3's answer and this write, a SIGKILL would leave
                # an upload nobody knows of (s3rver cannot list them).
                await journal.multipart(entry, multipart.upload_id)
            except BaseException:
                await multipart.abort()
                raise
            multipart.on_aborted(journal, entry)
        return multipart

    async def abort(self, key: str, upload_id: str) -> None:
        """Idempotent: an upload that is gone (aborted or completed) is no error."""
        try:
            await self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=upload_id
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _NO_UPLOAD_CODES:
                raise

    async def delete(self, key: str) -> None:
        """Idempotent: deleting a missing object is no error."""
        try:
            await self._client.delete_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _MISSING_CODES:
                raise


class _Multipart:
    def __init__(
        self, client: S3Client, bucket: str, key: str, upload_id: str, in_flight: int
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self.upload_id = upload_id
        self._slots = asyncio.Semaphore(in_flight)
        self._tasks: list[asyncio.Task[CompletedPartTypeDef]] = []
        self._journal: tuple[UploadJournal, int] | None = None
        self.size = 0

    def on_aborted(self, journal: UploadJournal, entry: int) -> None:
        """Tell ``journal`` when an abort succeeded (its entry then needs no cleanup)."""
        self._journal = (journal, entry)

    async def add(self, data: io.BytesIO, reserved: Reserved) -> None:
        """Upload ``data`` as the next part; ``reserved`` (its share of the buffer
        budget) is given back once it is sent."""
        try:
            # Waiting here stops the caller from reading more: that is the memory bound.
            await self._slots.acquire()
        except BaseException:
            await reserved.release()
            raise
        try:
            self._raise_failures()
        except BaseException:
            self._slots.release()
            await reserved.release()
            raise
        number = len(self._tasks) + 1
        with data.getbuffer() as view:
            self.size += view.nbytes
        self._tasks.append(asyncio.create_task(self._send(number, data, reserved)))

    async def _send(
        self, number: int, data: io.BytesIO, reserved: Reserved
    ) -> CompletedPartTypeDef:
        try:
            sent = await self._client.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=data,
            )
        finally:
            self._slots.release()
            data.close()  # the part's bytes go now, not when the upload ends
            await reserved.release()
        return {"PartNumber": number, "ETag": sent["ETag"]}

    def _raise_failures(self) -> None:
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                task.result()

    async def complete(self) -> int:
        parts = list(await asyncio.gather(*self._tasks))
        await self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": parts},
        )
        return len(parts)

    async def abort(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Best effort: S3 may be what failed. The journal's entry then stays,
        # and the uploads ledger aborts the upload later.
        try:
            async with asyncio.timeout(ABORT_TIMEOUT):
                await self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self.upload_id
                )
        except Exception:
            log.warning("aborting a multipart upload failed", key=self._key, exc_info=True)
            return
        if self._journal is not None:
            journal, entry = self._journal
            try:
                async with asyncio.timeout(ABORT_TIMEOUT):
                    await journal.aborted(entry)
            except Exception:
                # The entry stays: aborting again later answers NoSuchUpload.
                log.warning("could not record an aborted upload", key=self._key, exc_info=True)


class Reserved:
    """One part's share of the buffer budget, given back once."""

    def __init__(self, budget: BufferBudget | None, size: int) -> None:
        self._budget = budget
        self._size = size

    async def release(self) -> None:
        budget, self._budget = self._budget, None
        if budget is not None and self._size:
            await budget.release(self._size)


class _Reservations:
    """The reservation of the part being filled, and the next one's."""

    def __init__(self, budget: BufferBudget | None, part_size: int, size_hint: int | None):
        self._budget = budget
        self._part_size = part_size
        self._left = size_hint
        self._current = Reserved(None, 0)

    async def next(self) -> None:
        """Reserve the next part before its first byte is buffered."""
        if self._budget is None:
            return
        size = self._part_size if self._left is None else min(self._part_size, self._left + 1)
        self._current = Reserved(self._budget, await self._budget.reserve(size))
        if self._left is not None:
            self._left = max(0, self._left - self._part_size)

    def hand_over(self) -> Reserved:
        """The filled part's reservation goes with it to its upload."""
        current, self._current = self._current, Reserved(None, 0)
        return current

    async def release_current(self) -> None:
        await self._current.release()
