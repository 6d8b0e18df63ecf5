"""Prometheus metrics of the API, in a registry of its own (one per app instance)."""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

UNMATCHED_ROUTE = "unmatched"


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "videoimport_api_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "videoimport_api_request_duration_seconds",
            "Time to answer an HTTP request (to the end of the response body)",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.jobs_accepted = Counter(
            "videoimport_api_jobs_accepted_total",
            "Import jobs recorded in the event log",
            registry=self.registry,
        )
        self.videos_accepted = Counter(
            "videoimport_api_videos_accepted_total",
            "Videos of recorded import jobs",
            registry=self.registry,
        )
        self.idempotent_replays = Counter(
            "videoimport_api_idempotent_replays_total",
            "POSTs answered with the job of an earlier request with the same Idempotency-Key",
            registry=self.registry,
        )
        self.jobs_retried = Counter(
            "videoimport_api_jobs_retried_total",
            "Jobs started by POST …/retry (also counted as accepted jobs)",
            registry=self.registry,
        )
        self.jobs_cancelled = Counter(
            "videoimport_api_jobs_cancelled_total",
            "Jobs cancelled by POST …/cancel",
            registry=self.registry,
        )
        self.videos_cancelled = Counter(
            "videoimport_api_videos_cancelled_total",
            "Videos that failed with code cancelled because their job was cancelled",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI wrapper outside the router, so unrouted requests (404, 405) are counted too."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        recorded = False

        def record() -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            # The router writes the matched template into the (shared) scope.
            route = scope.get("path_template") or UNMATCHED_ROUTE
            labels = (route, str(scope.get("method", "")), str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Before the last byte leaves: a client that saw the response sees it counted.
                record()
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            record()
