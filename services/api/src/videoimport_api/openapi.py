"""The OpenAPI document at ``/schema`` and its interactive page.

(To be built.)
"""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler

from videoimport_api.handlers import Dependencies


def openapi_routes(deps: Dependencies) -> list[HTTPRouteHandler]:
    return []
