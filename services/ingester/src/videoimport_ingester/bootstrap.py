"""Build the ingester's clients from its settings; nothing connects at import time."""

from __future__ import annotations

import contextlib
import functools
import shutil
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
import asyncpg
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from aiokafka import AIOKafkaConsumer
from videoimport_eventlog import health, schema
from videoimport_eventlog import settings as env_settings
from videoimport_eventlog.retry import RetryPolicy
from videoimport_eventlog.runtime import skip_pool_reset
from videoimport_events import TOPICS

from videoimport_ingester.adapters.http_fetch import SafeFetcher, make_session
from videoimport_ingester.adapters.media_probe import MediaProbe
from videoimport_ingester.adapters.s3_upload import S3Uploader
from videoimport_ingester.handlers import Ingester
from videoimport_ingester.settings import Settings
from videoimport_ingester.transfer import Transfer

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

log = structlog.get_logger(__name__)


def videos_topic(settings: Settings) -> str:
    return env_settings.topic(TOPICS["videos"], settings.topic_prefix)


def group_id(settings: Settings) -> str:
    return env_settings.topic("ingester", settings.topic_prefix)


def retry_policy(settings: Settings) -> RetryPolicy:
    """How a failing request (and a Kafka message that cannot be queued) is retried."""
    return RetryPolicy(
        attempts=settings.ingester_attempts,
        base=settings.ingester_retry_base,
        factor=settings.ingester_retry_factor,
        max_delay=settings.ingester_retry_max_delay,
    )


def consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id(settings),
        client_id="videoimport-ingester",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


async def open_pool(settings: Settings) -> asyncpg.Pool:
    # Each worker: one connection for its request, one for its lease; plus the intake
    # and the readiness probe (which must not wait behind busy workers and say "down").
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=1,
        max_size=2 * settings.ingester_concurrency + 3,
        # No session state on pooled connections (only SET LOCAL / set_config(…, true)
        # and transaction-scoped locks): see skip_pool_reset.
        reset=skip_pool_reset,
    )
    async with pool.acquire() as conn:
        await schema.migrate(conn)
    return pool


aws_session = functools.cache(get_session)
"""One per process: a session parses the S3 service model for its first client,
which costs more CPU than the rest of making one; later clients reuse it."""


@contextlib.asynccontextmanager
async def s3_client(settings: Settings) -> AsyncIterator[S3Client]:
    config = AioConfig(
        s3={"addressing_style": "path"},
        # Only what S3 itself requires: checksum trailers are not understood
        # by every S3-compatible server, and the sha256 is ours to compute.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 3, "mode": "standard"},
    )
    async with aws_session().create_client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key,
        region_name=settings.s3_region,
        config=config,
    ) as client:
        yield client


@contextlib.asynccontextmanager
async def build_ingester(settings: Settings) -> AsyncIterator[Ingester]:
    """An ``Ingester`` with its database pool, S3 client and HTTP session."""
    async with contextlib.AsyncExitStack() as stack:
        pool = await open_pool(settings)
        stack.push_async_callback(pool.close)
        s3 = await stack.enter_async_context(s3_client(settings))
        session = await stack.enter_async_context(
            make_session(allow_private=settings.allow_private_urls)
        )
        transfer, uploader = build_transfer(settings, session, s3)
        media = MediaProbe(
            uploader,
            ffprobe=media_tool(settings.ffprobe),
            ffmpeg=media_tool(settings.ffmpeg),
            timeout=settings.ingester_probe_timeout,
        )
        yield Ingester(pool, transfer, uploader, media, superseded_grace=settings.superseded_grace)


def media_tool(name: str) -> str:
    """The path of ``ffprobe``/``ffmpeg`` (a name is looked up on PATH): checked at
    start, so a missing program stops the ingester instead of failing every video."""
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"{name} not found: install ffmpeg (Debian's ffmpeg package), or set"
            " VIDEOIMPORT_FFPROBE / VIDEOIMPORT_FFMPEG"
        )
    return found


def health_probes(settings: Settings, ingester: Ingester) -> dict[str, health.Probe]:
    """A video needs all three: the pool the workers use, the broker the requests come
    from, and the bucket they go to (HeadBucket with the ingester's own S3 client)."""
    uploader = ingester.uploader

    async def bucket() -> None:
        await uploader.client.head_bucket(Bucket=uploader.bucket)

    return {
        "postgres": health.PostgresProbe(settings.database_url, ingester.pool),
        "kafka": health.KafkaProbe(settings.kafka_bootstrap, "videoimport-ingester-health"),
        "s3": bucket,
    }


def build_transfer(
    settings: Settings, session: aiohttp.ClientSession, s3: S3Client
) -> tuple[Transfer, S3Uploader]:
    """The download-and-upload path of one video, from its settings."""
    fetcher = SafeFetcher(
        session,
        allow_private=settings.allow_private_urls,
        connect_timeout=settings.download_connect_timeout,
        read_timeout=settings.download_read_timeout,
    )
    uploader = S3Uploader(
        s3,
        settings.s3_bucket,
        part_size=settings.s3_part_size,
        parts_in_flight=settings.s3_parts_in_flight,
        buffer_budget=settings.s3_buffer_budget,
    )
    transfer = Transfer(
        fetcher,
        uploader,
        max_bytes=settings.max_video_bytes,
        attempts=settings.download_attempts,
        backoff=settings.download_backoff,
        total_timeout=settings.download_total_timeout,
        min_rate=settings.download_min_rate,
        rate_window=settings.download_rate_window,
    )
    return transfer, uploader
