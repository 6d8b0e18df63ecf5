"""Builds the API's clients from its settings and serves it until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import asyncpg
import structlog
import uvicorn
from aiobotocore.session import get_session
from prometheus_client import start_http_server
from videoimport_eventlog import schema

from videoimport_api.adapters.s3 import MediaStore
from videoimport_api.app import create_app
from videoimport_api.handlers import Dependencies
from videoimport_api.metrics import ApiMetrics
from videoimport_api.settings import ApiSettings

log = structlog.get_logger("videoimport_api")


async def migrate(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await schema.migrate(conn)


@contextlib.asynccontextmanager
async def dependencies(settings: ApiSettings) -> AsyncIterator[Dependencies]:
    """Connected, migrated dependencies; closed again on exit."""
    async with contextlib.AsyncExitStack() as stack:
        pool = await asyncpg.create_pool(
            settings.database_url, min_size=1, max_size=settings.db_pool_size
        )
        stack.push_async_callback(pool.close)
        await migrate(pool)
        media = None
        if settings.s3_bucket:
            client = await stack.enter_async_context(
                get_session().create_client(
                    "s3",
                    endpoint_url=settings.s3_endpoint or None,
                    aws_access_key_id=settings.s3_access_key or None,
                    aws_secret_access_key=settings.s3_secret_key or None,
                    region_name=settings.s3_region,
                )
            )
            media = MediaStore(client, settings.s3_bucket)
        else:
            log.warning("no S3 bucket configured: /media answers 404")
        yield Dependencies(
            pool=pool,
            media=media,
            media_base_url=settings.resolved_media_base_url,
            supported_versions=settings.supported_versions,
            retired_versions=settings.retired_versions,
            max_batch=settings.max_batch,
            max_body_bytes=settings.max_body_bytes,
            metrics=ApiMetrics(),
        )


class SignalFreeServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The process runner owns SIGTERM/SIGINT and asks us to stop via ``should_exit``.
        yield


async def serve(settings: ApiSettings, stop: asyncio.Event) -> None:
    async with dependencies(settings) as deps:
        if settings.metrics_port:
            start_http_server(settings.metrics_port, registry=deps.metrics.registry)
        config = uvicorn.Config(
            create_app(deps),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        server = SignalFreeServer(config)
        serving = asyncio.create_task(server.serve())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        # uvicorn lets in-flight requests finish before serve() returns.
        server.should_exit = True
        stopping.cancel()
        await serving
        log.info("api stopped")
