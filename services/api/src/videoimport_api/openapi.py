"""``GET /schema`` (the OpenAPI document as JSON) and ``GET /schema/swagger`` (Swagger UI).

Both need no token: the document describes the API, it holds no data. The page
loads Swagger UI from a CDN (pinned version) and runs one inline script, allowed
by its hash in the page's Content-Security-Policy; the page may only fetch from
this origin.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from videoimport_api.handlers import Dependencies
from videoimport_api.openapi_document import build_document
from videoimport_api.responses import JSON

SCHEMA_PATH: Final = "/schema"
SWAGGER_UI: Final = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.17.14"

_INIT_SCRIPT: Final = (
    'window.ui = SwaggerUIBundle({url: "/schema", dom_id: "#swagger-ui", '
    "validatorUrl: null, deepLinking: true});"
)
_SCRIPT_HASH: Final = base64.b64encode(hashlib.sha256(_INIT_SCRIPT.encode()).digest()).decode()

SWAGGER_PAGE: Final = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Video import API</title>
<link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{SWAGGER_UI}/swagger-ui-bundle.js"></script>
<script>{_INIT_SCRIPT}</script>
</body>
</html>
"""

# Swagger UI sets style attributes, hence 'unsafe-inline' for styles (never for scripts).
SWAGGER_CSP: Final = "; ".join(
    [
        "default-src 'none'",
        f"script-src {SWAGGER_UI}/ 'sha256-{_SCRIPT_HASH}'",
        f"style-src {SWAGGER_UI}/ 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


def openapi_routes(deps: Dependencies) -> list[HTTPRouteHandler]:
    document = msgspec.json.encode(
        build_document(
            # A version listed as both answers 410 (retired wins): not one to offer.
            versions=deps.supported_versions - deps.retired_versions,
            max_batch=deps.max_batch,
            max_body_bytes=deps.max_body_bytes,
        )
    )

    @get(SCHEMA_PATH)
    async def schema() -> Response[bytes]:
        return Response(content=document, media_type=JSON)

    @get(SCHEMA_PATH + "/swagger")
    async def swagger() -> Response[str]:
        return Response(
            content=SWAGGER_PAGE,
            media_type="text/html; charset=utf-8",
            headers={"content-security-policy": SWAGGER_CSP},
        )

    return [schema, swagger]
