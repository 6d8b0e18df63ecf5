"""Operational endpoints: liveness, readiness, and (only if asked for) ``/metrics``.

``/health/ready`` answers ``{"status": "ok", "checks": {"postgres": "up", "s3": "up"}}``
or ``503 {"status": "unavailable", "checks": {…}}``, the same body as every worker's
(``videoimport_eventlog.health``); why a check is down goes to the log, never to
whoever asked.
"""

from __future__ import annotations

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from videoimport_eventlog.health import Readiness

from videoimport_api import handlers
from videoimport_api.handlers import Dependencies
from videoimport_api.responses import json_response

READINESS_REQUIRED = ("postgres",)
"""Only the database decides: an import (and a status) works without S3, which only
``/media`` needs, so an S3 outage is reported in ``checks`` but keeps the API in the
load balancer."""
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
NO_STORE = {"cache-control": "no-store"}


def operational_routes(deps: Dependencies) -> list[HTTPRouteHandler]:
    # One per app: it remembers each check's state, so a change is logged once.
    readiness = Readiness(
        handlers.readiness_probes(deps),
        required=READINESS_REQUIRED,
        timeout=deps.health_timeout,
    )

    @get("/health/live")
    async def live() -> Response[bytes]:
        return json_response({"status": "ok"}, headers=NO_STORE)

    @get("/health/ready")
    async def ready() -> Response[bytes]:
        verdict = await readiness.check()
        return json_response(verdict.body(), verdict.status_code, NO_STORE)

    # ``/health`` is what earlier releases (and the local stack) probe: the same
    # verdict, in the body those releases answered (no ``checks``).
    @get("/health")
    async def legacy_ready() -> Response[bytes]:
        verdict = await readiness.check()
        status = verdict.body()["status"]
        return json_response({"status": status}, verdict.status_code, NO_STORE)

    @get("/metrics")
    async def metrics() -> Response[bytes]:
        return Response(content=deps.metrics.render(), media_type=PROMETHEUS_TEXT)

    routes = [live, ready, legacy_ready]
    if deps.public_metrics:
        routes.append(metrics)
    return routes
