"""Job control routes, additive to the Livingdocs contract: list, retry, cancel.

(To be built.)
"""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler

from videoimport_api.handlers import Dependencies


def control_routes(deps: Dependencies) -> list[HTTPRouteHandler]:
    return []
