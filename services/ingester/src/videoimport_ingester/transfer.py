"""Copy one video from its URL into the media bucket, with retries.

Checks the declared type and the first bytes before anything is stored, caps
the size while streaming, fails a source slower than the minimum rate, and
retries transient source failures with backoff; a body cut off by a reset or a
read timeout continues with a range request where the source allows it
(``resume``), in the same multipart upload. Source problems end as
``FetchError``; S3 errors propagate untouched, because they are ours to retry
(the worker runs the whole request again).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import structlog
from videoimport_projects import sniff

from videoimport_ingester import resume
from videoimport_ingester.adapters import metrics
from videoimport_ingester.adapters.http_fetch import Body, FetchError, SafeFetcher
from videoimport_ingester.adapters.s3_upload import S3Uploader, UploadJournal
from videoimport_ingester.domain import StoredObject
from videoimport_ingester.scheduling import ProgressReport, RateWindow

log = structlog.get_logger(__name__)

KeyFor = Callable[[str], str]
"""Maps the file extension (``.mp4``) to the object key."""


class _Tries:
    """One download's budget of tries, spent by fresh attempts and resumes alike."""

    def __init__(self, attempts: int, backoff: float) -> None:
        self.used = 1
        self._attempts = attempts
        self._delay = backoff

    def next_wait(self, failure: FetchError) -> float | None:
        """Seconds to wait before trying again after ``failure``; None: it is final."""
        if not failure.transient or self.used >= self._attempts:
            return None
        self.used += 1
        wait = max(self._delay, min(failure.retry_after or 0.0, 60.0))
        self._delay *= 2
        return wait * random.uniform(1.0, 1.25)


class Transfer:
    def __init__(
        self,
        fetcher: SafeFetcher,
        uploader: S3Uploader,
        *,
        max_bytes: int,
        attempts: int,
        backoff: float,
        total_timeout: float,
        min_rate: float = 0.0,
        rate_window: float = 30.0,
    ) -> None:
        self._fetcher = fetcher
        self._uploader = uploader
        self._max_bytes = max_bytes
        self._attempts = attempts
        self._backoff = backoff
        self._total_timeout = total_timeout
        self._min_rate = min_rate
        self._rate_window = rate_window

    async def copy(
        self,
        url: str,
        key_for: KeyFor,
        journal: UploadJournal | None = None,
        progress: ProgressReport | None = None,
        *,
        max_bytes: int | None = None,
    ) -> StoredObject:
        """Store the video behind ``url``; raises ``FetchError`` when it cannot.

        ``journal`` records every write before it starts (the uploads ledger);
        ``progress`` is told when each attempt's response arrives and its bytes.
        ``max_bytes`` lowers this call's size cap below the deployment's (never raises it).
        """
        limit = self._max_bytes if max_bytes is None else min(max_bytes, self._max_bytes)
        tries = _Tries(self._attempts, self._backoff)
        while True:
            try:
                stored = await self._attempt(url, key_for, journal, progress, limit, tries)
            except FetchError as exc:
                metrics.DOWNLOAD_ATTEMPTS.labels(result=exc.code).inc()
                wait = tries.next_wait(exc)
                if wait is None:
                    raise
                log.info("download failed, retrying", attempt=tries.used - 1, error=exc.reason)
                await asyncio.sleep(wait)
            else:
                metrics.DOWNLOAD_ATTEMPTS.labels(result="ok").inc()
                return stored

    async def _attempt(
        self,
        url: str,
        key_for: KeyFor,
        journal: UploadJournal | None,
        progress: ProgressReport | None,
        limit: int,
        tries: _Tries,
    ) -> StoredObject:
        deadline = asyncio.timeout(self._total_timeout)
        slow = asyncio.timeout(None)
        meter = RateWindow(self._min_rate, self._rate_window)
        metrics.DOWNLOADS_IN_FLIGHT.inc()
        try:
            async with deadline, self._fetcher.open(url) as body, slow:
                if progress is not None:
                    progress.downloading(body.content_length)
                chunks = self._resumable(url, body, tries, meter, slow)
                async with contextlib.aclosing(chunks):  # a resumed response is released now
                    return await self._store(body, key_for, chunks, journal, progress, limit)
        except TimeoutError as exc:
            if slow.expired():
                # Not retried: a crawling origin must give its slot to other videos.
                raise FetchError("timeout", meter.describe()) from exc
            if not deadline.expired():
                raise
            raise FetchError(
                "timeout", f"timeout: download took longer than {self._total_timeout:g} s"
            ) from exc
        finally:
            metrics.DOWNLOADS_IN_FLIGHT.dec()

    async def _resumable(
        self, url: str, first: Body, tries: _Tries, meter: RateWindow, slow: asyncio.Timeout
    ) -> AsyncGenerator[bytes, None]:
        """``first``'s bytes and, when its connection breaks, the rest by range requests.

        Continues at the exact byte received: what came before is already in the
        upload (its parts, or the part being filled), so the uploader and its
        sha256 see one unbroken stream and keep their multipart upload.
        """
        token = resume.resume_token(first.headers, first.content_length)
        if token is None:
            async for chunk in _metered(first.chunks(), meter, slow):
                yield chunk
            return
        offset = 0
        source: AbstractAsyncContextManager[Body] = contextlib.nullcontext(first)
        while True:
            try:
                async with source as body:
                    if body is not first and not resume.continues(
                        token, offset, body.status, body.headers
                    ):
                        break
                    if body is not first:
                        metrics.DOWNLOAD_RESUMES.labels(outcome="resumed").inc()
                    async for chunk in _metered(body.chunks(), meter, slow):
                        offset += len(chunk)
                        yield chunk
                return
            except FetchError as exc:
                if not (exc.transient and resume.can_resume(token, offset)):
                    raise
                wait = tries.next_wait(exc)
                if wait is None:
                    raise
                metrics.DOWNLOAD_ATTEMPTS.labels(result=exc.code).inc()
                log.info("download interrupted, resuming", offset=offset, error=exc.reason)
            await asyncio.sleep(wait)
            source = self._fetcher.open(url, resume.range_headers(token, offset))
        # The bytes so far belong to another version: a fresh attempt, a fresh upload.
        metrics.DOWNLOAD_RESUMES.labels(outcome="restarted").inc()
        raise FetchError(
            "download_failed",
            "download failed: the source changed or ignored the range asked for",
            transient=True,
        )

    async def _store(
        self,
        body: Body,
        key_for: KeyFor,
        chunks: AsyncIterator[bytes],
        journal: UploadJournal | None,
        progress: ProgressReport | None,
        limit: int,
    ) -> StoredObject:
        declared = sniff.base_type(body.content_type)
        if not sniff.acceptable_declared_type(declared):
            raise FetchError("not_a_video", f"not a video ({declared})")
        if body.content_length is not None and body.content_length > limit:
            raise _too_large(f"{body.content_length} bytes", limit)
        head = await _read_head(chunks, sniff.SNIFF_BYTES)
        container = sniff.sniff(head)
        if container is None:
            raise FetchError("not_a_video", _not_a_video(declared, head))
        mime_type = sniff.recorded_type(container, declared)
        key = key_for(sniff.extension_for(mime_type, container))
        capped = _capped(head, chunks, progress, limit)
        result = await self._uploader.upload(
            key, mime_type, capped, journal, size_hint=body.content_length
        )
        return StoredObject(
            storage_key=key,
            mime_type=mime_type,
            size=result.size,
            sha256=result.sha256,
            upload_id=result.upload_id,
        )


async def _capped(
    head: bytes, rest: AsyncIterator[bytes], progress: ProgressReport | None, limit: int
) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in _prepended(head, rest):
        size += len(chunk)
        if size > limit:  # the head too: a small cap can be below one network chunk
            raise _too_large(f"more than {limit} bytes", limit)
        metrics.DOWNLOADED_BYTES.inc(len(chunk))
        if progress is not None:
            progress.received(size)  # cheap: the worker's watch decides what to write
        yield chunk


async def _prepended(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield head
    async for chunk in rest:
        yield chunk


def _too_large(size: str, limit: int) -> FetchError:
    return FetchError("too_large", f"too large: {size}, the limit is {limit} bytes")


async def _metered(
    chunks: AsyncIterator[bytes], meter: RateWindow, slow: asyncio.Timeout
) -> AsyncIterator[bytes]:
    """``chunks``, with ``slow`` expiring when the source falls below the minimum rate.

    Armed only while waiting for the source: while the consumer (the S3 upload)
    holds a chunk, the deadline is off, so S3's pace is not blamed on the source.
    """
    loop = asyncio.get_running_loop()
    while True:
        remaining = meter.remaining()
        started = loop.time()
        slow.reschedule(None if remaining is None else started + remaining)
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            slow.reschedule(None)
            return
        slow.reschedule(None)
        meter.add(len(chunk), loop.time() - started)
        if meter.failed:  # the window ran out just as this chunk came in
            raise FetchError("timeout", meter.describe())
        yield chunk


async def _read_head(chunks: AsyncIterator[bytes], wanted: int) -> bytes:
    """At least ``wanted`` bytes (or the whole body, when shorter)."""
    head = b""
    while len(head) < wanted:
        try:
            head += await anext(chunks)
        except StopAsyncIteration:
            break
    return head


def _not_a_video(declared: str | None, head: bytes) -> str:
    content = sniff.describe_non_video(head)
    if declared is None or declared in sniff.GENERIC_BINARY:
        return f"not a video ({content})"
    return f"not a video ({declared} declared, content is {content})"
