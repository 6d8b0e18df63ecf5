"""Operational endpoints: liveness, readiness, and (only if asked for) ``/metrics``.

Probes answer ``{"status": "ok"}`` or ``503 {"status": "unavailable"}``; why the
database is unavailable goes to the log, never to whoever asked.
"""

from __future__ import annotations

import structlog
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from videoimport_api import handlers
from videoimport_api.handlers import Dependencies
from videoimport_api.responses import json_response

log = structlog.get_logger("videoimport_api")

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
NO_STORE = {"cache-control": "no-store"}


def operational_routes(deps: Dependencies) -> list[HTTPRouteHandler]:
    @get("/health/live")
    async def live() -> Response[bytes]:
        return json_response({"status": "ok"}, headers=NO_STORE)

    # ``/health`` is what earlier releases (and the local stack) probe.
    @get(["/health/ready", "/health"])
    async def ready() -> Response[bytes]:
        try:
            await handlers.ready(deps)
        except Exception as exc:
            log.warning("not ready: database unavailable", error=repr(exc))
            return json_response({"status": "unavailable"}, 503, NO_STORE)
        return json_response({"status": "ok"}, headers=NO_STORE)

    @get("/metrics")
    async def metrics() -> Response[bytes]:
        return Response(content=deps.metrics.render(), media_type=PROMETHEUS_TEXT)

    routes = [live, ready]
    if deps.public_metrics:
        routes.append(metrics)
    return routes
