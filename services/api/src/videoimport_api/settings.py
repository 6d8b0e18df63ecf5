"""The API's settings: the only module that reads the environment."""

from __future__ import annotations

import msgspec
from videoimport_eventlog.settings import from_env

# A video entry with generous metadata stays well below this; it bounds memory per request.
BYTES_PER_VIDEO = 16 * 1024


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    api_versions: str = "2025-03"
    retired_api_versions: str = ""
    max_batch: int = 1000
    media_base_url: str = ""
    """Prefix of ``originalUrl``; defaults to this server's own ``/media`` route."""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    metrics_port: int = 0
    log_json: bool | None = None
    db_pool_size: int = 10

    @property
    def supported_versions(self) -> frozenset[str]:
        return _split(self.api_versions)

    @property
    def retired_versions(self) -> frozenset[str]:
        return _split(self.retired_api_versions)

    @property
    def max_body_bytes(self) -> int:
        return self.max_batch * BYTES_PER_VIDEO

    @property
    def resolved_media_base_url(self) -> str:
        base = self.media_base_url or f"http://{self.host}:{self.port}/media"
        return base.rstrip("/")


def _split(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def load() -> ApiSettings:
    return from_env(ApiSettings)
