"""The HTTP surface: routes, the one error shape, metrics. Built from ready dependencies."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import structlog
from litestar import Litestar, Request, Response, get, head, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Stream
from litestar.types import ASGIApp

from videoimport_api import handlers
from videoimport_api.adapters.s3 import MediaObject, MediaStore, RangeNotSatisfiable
from videoimport_api.domain import idempotency
from videoimport_api.domain.errors import ApiError, FieldError, status_phrase
from videoimport_api.handlers import Dependencies
from videoimport_api.metrics import RequestMetrics

log = structlog.get_logger("videoimport_api")

JSON = "application/json"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
IMPORT_PATH = "/api/{api_version:str}/import/videos"


def json_response(
    document: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(document), status_code=status, media_type=JSON, headers=headers
    )


def error_response(err: ApiError) -> Response[bytes]:
    return json_response(err.body(), err.status, err.headers)


def check_json_content_type(content_type: str | None) -> None:
    """415 for a body declared as anything but JSON; an undeclared body is read as JSON."""
    if not content_type:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == JSON or re.fullmatch(r"application/[\w.+-]+\+json", media_type):
        return
    raise ApiError(
        415,
        "the request body must be JSON",
        [FieldError("Content-Type", f"must be {JSON}, not {media_type}")],
    )


def build_litestar(deps: Dependencies) -> Litestar:
    @post(IMPORT_PATH)
    async def import_videos(
        request: Request[Any, Any, Any], api_version: FromPath[str]
    ) -> Response[bytes]:
        handlers.check_version(deps, api_version)
        grant = await handlers.authorize(deps, request.headers.get("authorization"))
        check_json_content_type(request.headers.get("content-type"))
        key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
        command = handlers.parse_body(deps, await request.body())
        submitted = await handlers.submit_import(deps, grant, api_version, command, key)
        replay = {"idempotent-replayed": "true"} if submitted.replayed else None
        return json_response({"id": submitted.job_id}, 200, replay)

    @get(IMPORT_PATH + "/status")
    async def import_status(
        request: Request[Any, Any, Any], api_version: FromPath[str]
    ) -> Response[bytes]:
        handlers.check_version(deps, api_version)
        grant = await handlers.authorize(deps, request.headers.get("authorization"))
        job_id = handlers.parse_job_id(request.query_params.get("id"))
        return json_response(await handlers.job_status(deps, grant, job_id))

    def media_store() -> MediaStore:
        if deps.media is None:
            raise ApiError(404, "media storage is not configured")
        return deps.media

    def no_media(key: str) -> ApiError:
        return ApiError(404, "no such media object", [FieldError("key", f"{key!r} not found")])

    @get("/media/{key:path}")
    async def media(request: Request[Any, Any, Any], key: FromPath[str]) -> Stream:
        store, object_key = media_store(), key.lstrip("/")
        byte_range = request.headers.get("range")
        if byte_range is not None and not byte_range.strip().lower().startswith("bytes="):
            byte_range = None  # RFC 9110: ignore a range unit we do not know
        try:
            found = await store.get(object_key, byte_range)
        except RangeNotSatisfiable as exc:
            raise ApiError(416, "range not satisfiable", [FieldError("Range", str(exc))]) from exc
        if found is None or found.chunks is None:
            raise no_media(object_key)
        return _stream(found, found.chunks)

    @head("/media/{key:path}")
    async def media_head(key: FromPath[str]) -> Response[None]:
        store, object_key = media_store(), key.lstrip("/")
        found = await store.head(object_key)
        if found is None:
            raise no_media(object_key)
        return Response(content=None, status_code=200, headers=found.headers)

    @get("/health")
    async def health() -> Response[bytes]:
        try:
            await handlers.healthy(deps)
        except Exception as exc:
            log.warning("health check failed", error=str(exc))
            raise ApiError(503, "database unavailable", [FieldError("database", str(exc))]) from exc
        return json_response({"status": "ok"})

    @get("/metrics")
    async def metrics() -> Response[bytes]:
        return Response(content=deps.metrics.render(), media_type=PROMETHEUS_TEXT)

    return Litestar(
        route_handlers=[import_videos, import_status, media, media_head, health, metrics],
        exception_handlers={
            ApiError: _on_api_error,
            HTTPException: _http_error_handler(deps.max_body_bytes),
            Exception: _on_unexpected,
        },
        request_max_body_size=deps.max_body_bytes,
        openapi_config=None,
        logging_config=None,
    )


def create_app(deps: Dependencies) -> ASGIApp:
    """The ASGI app to serve: the Litestar app inside the request metrics."""
    return RequestMetrics(build_litestar(deps), deps.metrics)


def _stream(found: MediaObject, chunks: AsyncIterator[bytes]) -> Stream:
    headers = dict(found.headers)
    media_type = headers.pop("content-type")
    return Stream(content=chunks, status_code=found.status, headers=headers, media_type=media_type)


def _on_api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    return error_response(exc)


def _http_error_handler(max_body_bytes: int) -> Any:
    def on_http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
        status = exc.status_code
        if status == 413:
            details = [FieldError("body", f"must be at most {max_body_bytes} bytes")]
            err = ApiError(413, "request body too large", details)
        else:
            detail = exc.detail if exc.detail and exc.detail != status_phrase(status) else None
            details = [FieldError("request", detail)] if detail else []
            err = ApiError(status, status_phrase(status), details)
        err.headers.update(exc.headers or {})
        return error_response(err)

    return on_http_error


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return error_response(ApiError(500, "internal error; the request was not completed"))
