"""The ingester's configuration, read once from ``VIDEOIMPORT_*`` variables."""

from __future__ import annotations

import msgspec
from videoimport_eventlog import settings as env_settings

MIB = 1024 * 1024
GIB = 1024 * MIB
S3_MIN_PART_SIZE = 5 * MIB
"""S3 rejects smaller parts (except the last one)."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = "postgresql://127.0.0.1:5432/videoimport"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_partitions: int = 4
    topic_prefix: str = ""
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "videoimport-media"
    s3_region: str = "us-east-1"
    s3_part_size: int = 8 * MIB
    s3_parts_in_flight: int = 2
    """Parts uploading at once per video; memory is about (this + 1) x part size."""
    allow_private_urls: bool = False
    """Let video URLs reach loopback/private addresses (local stacks only)."""
    max_video_bytes: int = 5 * GIB
    ingester_concurrency: int = 8
    download_connect_timeout: float = 10.0
    download_read_timeout: float = 60.0
    """Longest silence while reading the body."""
    download_total_timeout: float = 6 * 3600.0
    download_attempts: int = 3
    download_backoff: float = 1.0
    """First retry delay in seconds; doubles with each attempt."""
    shutdown_grace: float = 120.0
    """How long SIGTERM waits for in-flight videos before abandoning them."""
    metrics_port: int = 0
    log_json: bool | None = None
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.s3_part_size < S3_MIN_PART_SIZE:
            raise ValueError(f"s3_part_size must be at least {S3_MIN_PART_SIZE} bytes")
        if self.ingester_concurrency < 1 or self.s3_parts_in_flight < 1:
            raise ValueError("ingester_concurrency and s3_parts_in_flight must be positive")
        if self.download_attempts < 1:
            raise ValueError("download_attempts must be at least 1")


def load() -> Settings:
    return env_settings.from_env(Settings)
