"""The HTTP surface: import and status routes, the one error shape, the ASGI wrappers.

Media (``media.py``) and operational (``ops.py``) routes live in their own modules.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.types import ASGIApp

from videoimport_api import dryrun, handlers, ui
from videoimport_api.control import control_routes
from videoimport_api.domain import idempotency, params
from videoimport_api.domain.errors import ApiError, FieldError, status_phrase
from videoimport_api.handlers import IMPORT_SCOPES, STATUS_SCOPES, Dependencies
from videoimport_api.media import media_routes
from videoimport_api.metrics import RequestMetrics
from videoimport_api.openapi import openapi_routes
from videoimport_api.ops import operational_routes
from videoimport_api.responses import JSON, SecurityHeaders, error_response, json_response

log = structlog.get_logger("videoimport_api")

IMPORT_PATH = "/api/{api_version:str}/import/videos"


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
        grant = await handlers.authorize(deps, request.headers.get("authorization"), IMPORT_SCOPES)
        check_json_content_type(request.headers.get("content-type"))
        key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
        command = handlers.parse_body(deps, await request.body())
        if params.parse_dry_run(request.query_params.get("dryRun")):
            return json_response(await dryrun.dry_run(deps, grant, command))
        submitted = await handlers.submit_import(deps, grant, api_version, command, key)
        replay = {"idempotent-replayed": "true"} if submitted.replayed else None
        return json_response({"id": submitted.job_id}, 200, replay)

    @get(IMPORT_PATH + "/status")
    async def import_status(
        request: Request[Any, Any, Any], api_version: FromPath[str]
    ) -> Response[bytes]:
        handlers.check_version(deps, api_version)
        grant = await handlers.authorize(deps, request.headers.get("authorization"), STATUS_SCOPES)
        job_id = params.parse_job_id(request.query_params.get("id"))
        query = request.query_params.dict()
        return json_response(await handlers.job_status(deps, grant, job_id, query))

    @post(IMPORT_PATH + "/webhook/redeliver")
    async def redeliver_webhook(
        request: Request[Any, Any, Any], api_version: FromPath[str]
    ) -> Response[bytes]:
        handlers.check_version(deps, api_version)
        grant = await handlers.authorize(deps, request.headers.get("authorization"), IMPORT_SCOPES)
        job_id = params.parse_job_id(request.query_params.get("id"))
        await handlers.redeliver_webhook(deps, grant, job_id)
        return json_response({"id": job_id}, 202)

    return Litestar(
        route_handlers=[
            import_videos,
            import_status,
            redeliver_webhook,
            *media_routes(deps),
            *operational_routes(deps),
            *control_routes(deps),
            *openapi_routes(deps),
            *ui.ui_routes(deps),
        ],
        template_config=ui.template_config(),
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
    """The ASGI app to serve: the Litestar app inside the security headers and metrics."""
    return RequestMetrics(SecurityHeaders(build_litestar(deps)), deps.metrics)


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
