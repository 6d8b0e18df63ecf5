"""Probe a stored video with ffprobe and store its poster frame made by ffmpeg.

Both programs read the stored object through a presigned GET of our own S3 endpoint
(never the origin again), with the commands ``probe.py`` builds: no shell, the
demuxer forced, only the URL's protocols allowed. Each run has a time limit and
a cap on its output; past either, its whole process group is killed (also when
the worker is cancelled). What the file makes them fail on is the file's fault
(``Rejected``); S3 failing under them is ours (``StorageUnavailable``: the worker
retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import msgspec
import structlog
from videoimport_projects import sniff

from videoimport_ingester import probe
from videoimport_ingester.adapters.s3_upload import S3Uploader, UploadJournal
from videoimport_ingester.domain import StoredObject

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

log = structlog.get_logger(__name__)

PROBE_OUTPUT_LIMIT = 1024 * 1024
"""Bytes of ffprobe JSON; a file with so many streams that it says more is refused."""
POSTER_LIMIT = 4 * 1024 * 1024
"""Bytes of one poster JPEG (one PutObject: below the smallest S3 part size)."""
STDERR_LIMIT = 64 * 1024
_STORAGE_TROUBLE = (
    "Connection refused",
    "Connection reset",
    "Connection timed out",
    "Server returned",
    "Failed to resolve",
)


class StorageUnavailable(Exception):
    """ffprobe or ffmpeg could not read the stored object: S3's fault, not the file's."""


class Ran(msgspec.Struct, frozen=True, kw_only=True):
    returncode: int | None
    """None: killed (too slow, or too much output)."""
    stdout: bytes
    stderr: str
    why_killed: str | None = None


async def _read(stream: asyncio.StreamReader, limit: int) -> bytes:
    """Up to ``limit`` bytes; one more than that means the output was too much."""
    data = bytearray()
    while len(data) <= limit:
        chunk = await stream.read(64 * 1024)
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(64 * 1024):
        pass


async def run_bounded(command: list[str], seconds: float, limit: int) -> Ran:
    """Run ``command`` (no shell, stdin closed) for at most ``seconds`` and ``limit``
    bytes of stdout; past either, or when cancelled, its process group is killed."""
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, killed as a whole
    )
    assert process.stdout is not None and process.stderr is not None
    errors = asyncio.create_task(_read(process.stderr, STDERR_LIMIT))
    stdout, why_killed = b"", None
    try:
        async with asyncio.timeout(seconds):
            stdout = await _read(process.stdout, limit)
            if len(stdout) > limit:
                why_killed = f"more than {limit} bytes of output"
            else:
                await process.wait()
    except TimeoutError:
        why_killed = f"not finished within {seconds:g} s"
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        # The pipes close (and the exit is seen) only once what is left in them is read.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await asyncio.gather(_discard(process.stdout), errors)
                await process.wait()
        errors.cancel()
    stderr = errors.result() if errors.done() and not errors.cancelled() else b""
    return Ran(
        returncode=None if why_killed else process.returncode,
        stdout=b"" if why_killed else stdout,
        stderr=stderr.decode("utf-8", "replace"),
        why_killed=why_killed,
    )


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


class MediaProbe:
    def __init__(
        self,
        uploader: S3Uploader,
        *,
        ffprobe: str = "ffprobe",
        ffmpeg: str = "ffmpeg",
        timeout: float = 30.0,
    ) -> None:
        self._uploader = uploader
        self._ffprobe = ffprobe
        self._ffmpeg = ffmpeg
        self._timeout = timeout

    @property
    def _client(self) -> S3Client:
        return self._uploader.client

    async def examine(
        self, stored: StoredObject, journal: UploadJournal, max_duration: float | None
    ) -> StoredObject | probe.Rejected:
        """``stored`` with its media info, the mime type of its container and its poster;
        ``Rejected`` when it is no readable video or longer than ``max_duration``."""
        key = stored.storage_key
        sniffed = sniff.sniff(await self._head(key))
        if sniffed is None:
            return probe.unreadable("the stored bytes are no known video container")
        demuxer = sniff.demuxer_for(sniffed)
        url = await self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._uploader.bucket, "Key": key},
            ExpiresIn=int(4 * self._timeout) + 60,
        )
        command = probe.ffprobe_command(self._ffprobe, url, demuxer)
        ran = await run_bounded(command, self._timeout, PROBE_OUTPUT_LIMIT)
        if ran.returncode != 0:
            return probe.unreadable(self._failure("ffprobe", ran, url, key))
        result = probe.media_info(ran.stdout, sniffed)
        if isinstance(result, probe.Rejected):
            return result
        info, container = result
        rejected = probe.too_long(info, max_duration)
        if rejected is not None:
            return rejected
        poster = await self._poster(key, url, demuxer, info.duration, journal)
        return msgspec.structs.replace(
            stored, mime_type=container.mime_type, media_info=info, poster_key=poster
        )

    async def _head(self, key: str) -> bytes:
        """The object's first bytes, for the container (through the S3 client: an
        outage raises here as it does elsewhere)."""
        got = await self._client.get_object(
            Bucket=self._uploader.bucket, Key=key, Range=f"bytes=0-{sniff.SNIFF_BYTES - 1}"
        )
        async with got["Body"] as body:
            head: bytes = await body.read()
        return head

    async def _poster(
        self, key: str, url: str, demuxer: str, duration: float, journal: UploadJournal
    ) -> str | None:
        """Store the poster frame beside the video; None (logged) when ffmpeg makes none:
        that is no failure of the video."""
        command = probe.poster_command(self._ffmpeg, url, demuxer, duration)
        ran = await run_bounded(command, self._timeout, POSTER_LIMIT)
        if ran.returncode != 0 or not ran.stdout.startswith(b"\xff\xd8"):
            reason = self._failure("ffmpeg", ran, url, key) if ran.returncode != 0 else None
            log.warning("no poster frame made", storage_key=key, reason=reason or "no frame")
            return None
        poster_key = probe.poster_key(key)
        await self._uploader.upload(
            poster_key, "image/jpeg", _once(ran.stdout), journal, size_hint=len(ran.stdout)
        )
        return poster_key

    def _failure(self, program: str, ran: Ran, url: str, key: str) -> str:
        """Why a run failed, without the presigned URL (its signature is a credential);
        raises ``StorageUnavailable`` when S3 is what failed."""
        if ran.why_killed is not None:
            return f"{program}: {ran.why_killed}"
        lines = [line for line in ran.stderr.replace(url, key).splitlines() if line.strip()]
        last = lines[-1][:300] if lines else f"exit code {ran.returncode}"
        if any(marker in ran.stderr for marker in _STORAGE_TROUBLE):
            raise StorageUnavailable(f"{program} could not read {key}: {last}")
        return f"{program}: {last}"
