"""``GET|HEAD /media/{key}``: a stored object behind a signed, unexpired link.

The key must have the shape of a stored object's key, a video or its poster (else
404, and the bucket is never asked), and the query must carry a valid signature for
it (else 403). A ``Range`` is passed to S3 (206, or 416 when unsatisfiable). A poster
is always served as ``image/jpeg``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, get, head
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Stream

from videoimport_api.adapters.s3 import MediaObject, MediaStore, RangeNotSatisfiable
from videoimport_api.domain.errors import ApiError, FieldError
from videoimport_api.domain.media_links import LOCAL_BASE, MediaKey, parse_key
from videoimport_api.handlers import Dependencies

MEDIA_PATH = LOCAL_BASE + "/{key:path}"


def no_media() -> ApiError:
    return ApiError(404, "no such media object", [FieldError("key", "not found")])


def media_routes(deps: Dependencies) -> list[HTTPRouteHandler]:
    def checked(request: Request[Any, Any, Any], path: str) -> tuple[MediaStore, MediaKey]:
        key = parse_key(path.removeprefix("/"))  # the path parameter keeps its leading '/'
        if key is None:
            raise no_media()
        params = request.query_params
        problem = deps.media_links.problem(
            key.key, params.get("expires"), params.get("signature"), time.time()
        )
        if problem is not None:
            raise ApiError(
                403, "the media link is invalid or has expired", [FieldError("signature", problem)]
            )
        if deps.media is None:
            raise ApiError(404, "media storage is not configured")
        return deps.media, key

    @get(MEDIA_PATH)
    async def media(request: Request[Any, Any, Any], key: FromPath[str]) -> Stream:
        store, media_key = checked(request, key)
        byte_range = request.headers.get("range")
        if byte_range is not None and not byte_range.strip().lower().startswith("bytes="):
            byte_range = None  # RFC 9110: ignore a range unit we do not know
        try:
            found = await store.get(media_key.key, byte_range)
        except RangeNotSatisfiable as exc:
            raise ApiError(416, "range not satisfiable", [FieldError("Range", str(exc))]) from exc
        if found is None or found.chunks is None:
            raise no_media()
        return _stream(found, found.chunks, media_key)

    @head(MEDIA_PATH)
    async def media_head(request: Request[Any, Any, Any], key: FromPath[str]) -> Response[None]:
        store, media_key = checked(request, key)
        found = await store.head(media_key.key)
        if found is None:
            raise no_media()
        headers = {
            **_typed(found.headers, media_key),
            "content-disposition": media_key.content_disposition,
        }
        return Response(content=None, status_code=200, headers=headers)

    return [media, media_head]


def _typed(headers: dict[str, str], key: MediaKey) -> dict[str, str]:
    """A poster is a JPEG whatever the bucket says, so ``nosniff`` never blocks it."""
    if key.content_type is None:
        return dict(headers)
    return {**headers, "content-type": key.content_type}


def _stream(found: MediaObject, chunks: AsyncIterator[bytes], key: MediaKey) -> Stream:
    headers = _typed(found.headers, key)
    media_type = headers.pop("content-type")
    headers["content-disposition"] = key.content_disposition
    return Stream(content=chunks, status_code=found.status, headers=headers, media_type=media_type)
