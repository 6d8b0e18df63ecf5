"""The one JSON and error shape of every response, and headers every response carries."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from videoimport_api.domain.errors import ApiError

JSON = "application/json"
NOSNIFF = (b"x-content-type-options", b"nosniff")


def json_response(
    document: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(document), status_code=status, media_type=JSON, headers=headers
    )


def error_response(err: ApiError) -> Response[bytes]:
    return json_response(err.body(), err.status, err.headers)


class SecurityHeaders:
    """ASGI wrapper: every HTTP response (routed or not, error or not) says ``nosniff``,
    so no browser runs a stored object or an error body as something else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == NOSNIFF[0] for name, _ in headers):
                    headers.append(NOSNIFF)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
