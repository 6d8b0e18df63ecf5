"""Builds the API's clients from its settings and serves it until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import asyncpg
import structlog
import uvicorn
from aiobotocore.session import get_session
from prometheus_client import start_http_server
from videoimport_eventlog import schema
from videoimport_eventlog.addresses import scope_of
from videoimport_eventlog.health import Probe
from videoimport_eventlog.runtime import skip_pool_reset

from videoimport_api.adapters.s3 import MediaStore
from videoimport_api.adapters.url_probe import UrlProbe
from videoimport_api.app import create_app
from videoimport_api.domain.media_links import MIN_SECRET_BYTES, MediaLinks
from videoimport_api.handlers import Dependencies
from videoimport_api.metrics import ApiMetrics
from videoimport_api.settings import ApiSettings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

log = structlog.get_logger("videoimport_api")


aws_session = functools.cache(get_session)
"""One per process: a session parses the S3 service model for its first client,
which costs more CPU than the rest of making one; later clients reuse it."""


async def migrate(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await schema.migrate(conn)


def signing_secret(settings: ApiSettings) -> bytes:
    """The configured media signing key, or (unset) a random one for this process."""
    secret = settings.media_signing_secret
    if secret is None:
        log.warning(
            "VIDEOIMPORT_MEDIA_SIGNING_KEY is not set: media links are signed with a random"
            " key and stop working when the API restarts; production must set it (the same"
            " on every instance)"
        )
        secret = secrets.token_bytes(MIN_SECRET_BYTES)
    return secret


def bucket_check(client: S3Client, bucket: str) -> Probe:
    """HeadBucket with the API's own client: S3 answers and the media bucket exists."""

    async def check() -> None:
        await client.head_bucket(Bucket=bucket)

    return check


@contextlib.asynccontextmanager
async def dependencies(settings: ApiSettings) -> AsyncIterator[Dependencies]:
    """Connected, migrated dependencies; closed again on exit."""
    async with contextlib.AsyncExitStack() as stack:
        pool = await asyncpg.create_pool(
            settings.database_url,
            min_size=1,
            max_size=settings.db_pool_size,
            reset=skip_pool_reset,  # the API keeps no session state: see skip_pool_reset
        )
        stack.push_async_callback(pool.close)
        await migrate(pool)
        media = None
        storage_check = None
        if settings.s3_bucket:
            client = await stack.enter_async_context(
                aws_session().create_client(
                    "s3",
                    endpoint_url=settings.s3_endpoint or None,
                    aws_access_key_id=settings.s3_access_key or None,
                    aws_secret_access_key=settings.s3_secret_key or None,
                    region_name=settings.s3_region,
                )
            )
            media = MediaStore(client, settings.s3_bucket)
            storage_check = bucket_check(client, settings.s3_bucket)
        else:
            log.warning("no S3 bucket configured: /media answers 404")
        metrics = ApiMetrics()
        if settings.metrics_port:
            server, _ = start_http_server(
                settings.metrics_port, addr=settings.host, registry=metrics.registry
            )
            stack.callback(server.server_close)
            stack.push_async_callback(asyncio.to_thread, server.shutdown)  # blocks up to 0.5 s
        url_probe = UrlProbe(
            scope=scope_of(
                allow_private=settings.allow_private_urls,
                loopback_only=settings.loopback_only_urls,
            ),
            timeout=settings.dry_run_probe_timeout,
            deadline=settings.dry_run_deadline,
            request_probes=settings.dry_run_request_probes,
            process_probes=settings.dry_run_process_probes,
            max_bytes=settings.max_video_bytes,
        )
        stack.push_async_callback(url_probe.close)
        if settings.loopback_only_urls:
            log.warning("loopback-only mode: URLs must name loopback hosts (tests only)")
        links = MediaLinks(
            secret=signing_secret(settings),
            ttl_seconds=settings.media_link_ttl,
            base_url=settings.resolved_media_base_url,
        )
        yield Dependencies(
            pool=pool,
            media=media,
            media_links=links,
            supported_versions=settings.supported_versions,
            retired_versions=settings.retired_versions,
            max_batch=settings.max_batch,
            max_body_bytes=settings.max_body_bytes,
            metrics=metrics,
            url_probe=url_probe,
            max_video_bytes=settings.max_video_bytes,
            allow_private_urls=settings.allow_private_urls,
            loopback_only_urls=settings.loopback_only_urls,
            public_metrics=settings.public_metrics,
            storage_check=storage_check,
        )


class SignalFreeServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The process runner owns SIGTERM/SIGINT and asks us to stop via ``should_exit``.
        yield


async def serve(settings: ApiSettings, stop: asyncio.Event) -> None:
    async with dependencies(settings) as deps:
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
