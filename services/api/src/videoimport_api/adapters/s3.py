"""Reading stored media objects from S3, streamed (never held in memory whole)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

CHUNK_SIZE = 64 * 1024
_MISSING = {"NoSuchKey", "NotFound", "404", "NoSuchBucket"}


class RangeNotSatisfiable(Exception):
    pass


@dataclass(frozen=True)
class MediaObject:
    status: int
    headers: dict[str, str]
    chunks: AsyncIterator[bytes] | None
    """None for a HEAD request."""


def _headers(response: Any) -> dict[str, str]:
    headers = {
        "content-type": response.get("ContentType") or "application/octet-stream",
        "content-length": str(response["ContentLength"]),
        "accept-ranges": "bytes",
    }
    if response.get("ETag"):
        headers["etag"] = response["ETag"]
    if response.get("LastModified"):
        headers["last-modified"] = response["LastModified"].strftime("%a, %d %b %Y %H:%M:%S GMT")
    if response.get("ContentRange"):
        headers["content-range"] = response["ContentRange"]
    return headers


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class MediaStore:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    async def head(self, key: str) -> MediaObject | None:
        try:
            response = await self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                return None
            raise
        return MediaObject(status=200, headers=_headers(response), chunks=None)

    async def get(self, key: str, byte_range: str | None = None) -> MediaObject | None:
        """The object (or the asked-for range of it); None when there is no such object."""
        try:
            if byte_range:
                response = await self._client.get_object(
                    Bucket=self._bucket, Key=key, Range=byte_range
                )
            else:
                response = await self._client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            code = _error_code(exc)
            if code in _MISSING:
                return None
            if code == "InvalidRange":
                raise RangeNotSatisfiable(byte_range) from exc
            raise
        body = response["Body"]

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in body.iter_chunks(CHUNK_SIZE):
                    yield chunk
            finally:
                body.close()

        partial = bool(byte_range) and bool(response.get("ContentRange"))
        return MediaObject(
            status=206 if partial else 200, headers=_headers(response), chunks=chunks()
        )
