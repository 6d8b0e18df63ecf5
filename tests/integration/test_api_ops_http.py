"""Liveness, readiness and metrics: what a probe and a scraper see, and what nobody sees."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from structlog.testing import capture_logs
from videoimport_api.handlers import Dependencies
from videoimport_devstack import StackInfo

from tests.conftest import drop_database

from .api_harness import IMPORT_URL, auth, batch, project_with_token, running_api
from .test_api_import_http import assert_request_counts

pytestmark = pytest.mark.integration

READY_PATHS = ("/health/ready", "/health")


def readiness_body(path: str, status: str, **checks: str) -> dict[str, Any]:
    """``/health/ready`` names its checks; ``/health`` keeps the body earlier releases had."""
    return {"status": status, "checks": checks} if path == "/health/ready" else {"status": status}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_live_and_ready_say_ok(pg_dsn: str) -> None:
    async with running_api(pg_dsn) as api:
        expected = {"/health/live": {"status": "ok"}}
        expected |= {path: readiness_body(path, "ok", postgres="up") for path in READY_PATHS}
        for path, body in expected.items():
            response = await api.http.get(path)
            assert (response.status_code, response.json()) == (200, body), path
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["cache-control"] == "no-store"


async def test_s3_is_reported_but_only_the_database_decides(
    pg_dsn: str, stack: StackInfo, s3_bucket: str
) -> None:
    s3 = {
        "s3_endpoint": stack.s3_endpoint,
        "s3_access_key": stack.s3_access_key,
        "s3_secret_key": stack.s3_secret_key,
        "s3_region": stack.s3_region,
    }
    async with running_api(pg_dsn, s3_bucket=s3_bucket, **s3) as api:
        response = await api.http.get("/health/ready")
        assert (response.status_code, response.json()) == (
            200,
            {"status": "ok", "checks": {"postgres": "up", "s3": "up"}},
        )
    # HeadBucket of a bucket S3 does not have: down, yet imports and statuses work.
    async with running_api(pg_dsn, s3_bucket=f"missing-{s3_bucket}", **s3) as api:
        for path in READY_PATHS:
            response = await api.http.get(path)
            assert response.status_code == 200, path
            assert response.json() == readiness_body(path, "ok", postgres="up", s3="down"), path


async def test_a_stopped_database_is_unavailable_without_saying_why(
    pg_dsn: str, stack: StackInfo
) -> None:
    database = pg_dsn.rpartition("/")[2]
    async with running_api(pg_dsn) as api:
        admin = await asyncpg.connect(stack.postgres_dsn)
        try:
            # Every connection of the API is terminated and none can be made again.
            await drop_database(admin, database)
        finally:
            await admin.close()
        with capture_logs() as logs:
            for path in READY_PATHS:
                response = await api.http.get(path)
                assert response.status_code == 503, path
                assert response.json() == readiness_body(path, "unavailable", postgres="down")
                assert database not in response.text
        # The reason is in the log, for the operator: once, when the check went down.
        reasons = [entry["error"] for entry in logs if entry.get("event") == "readiness check down"]
        assert len(reasons) == 1
        assert reasons[0]
        # The process itself is alive: an orchestrator must not restart it for this.
        live = await api.http.get("/health/live")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})


class StuckPool:
    """A pool whose every connection hangs, as when PostgreSQL stops answering."""

    @contextlib.asynccontextmanager
    async def acquire(self, **_: Any) -> AsyncIterator[None]:
        await asyncio.sleep(3600)
        yield


async def test_readiness_is_bounded_when_the_database_hangs(pg_dsn: str) -> None:
    def stuck(deps: Dependencies) -> Dependencies:
        return dataclasses.replace(deps, pool=StuckPool(), health_timeout=0.5)  # type: ignore[arg-type]

    async with running_api(pg_dsn, wrap=stuck) as api:
        began = time.monotonic()
        response = await api.http.get("/health/ready")
        assert (response.status_code, response.json()) == (
            503,
            {"status": "unavailable", "checks": {"postgres": "down"}},
        )
        assert time.monotonic() - began < 5


async def test_metrics_have_their_own_listener_when_a_port_is_set(pg_dsn: str) -> None:
    port = free_port()
    async with running_api(pg_dsn, metrics_port=port) as api:
        token = await project_with_token(pg_dsn, "acme")
        await api.http.get("/health")
        await api.http.post(IMPORT_URL, json=batch(2), headers=auth(token))
        await api.http.post(IMPORT_URL, json={}, headers=auth(token))
        assert (await api.http.get("/metrics")).status_code == 404  # not on the API port
        async with httpx.AsyncClient(timeout=10) as http:
            scraped = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200
        assert_request_counts(scraped.text)
    # Stopping the API closes the listener too.
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=5) as http:
            await http.get(f"http://127.0.0.1:{port}/metrics")
