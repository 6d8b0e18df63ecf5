"""The API's settings: the only module that reads the environment."""

from __future__ import annotations

import msgspec
from videoimport_eventlog.settings import from_env

from videoimport_api.domain.media_links import parse_secret

# A video entry with generous metadata stays well below this; it bounds memory per request.
BYTES_PER_VIDEO = 16 * 1024
GIB = 1024 * 1024 * 1024
MAX_MEDIA_LINK_TTL = 365 * 24 * 3600


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    api_versions: str = "2025-03"
    retired_api_versions: str = ""
    max_batch: int = 1000
    media_base_url: str = ""
    """Prefix of ``originalUrl``; defaults to this server's own ``/media`` route."""
    media_signing_key: str = ""
    """HMAC key of media links (hex or base64, >= 32 bytes); empty: a random one per start."""
    media_link_ttl: int = 24 * 3600
    """Seconds a media link in a status stays valid."""
    allow_private_urls: bool = False
    """Accept IP literals of non-public addresses in ``url`` and ``webhook``."""
    loopback_only_urls: bool = False
    """Tests and fuzzing: ``url`` and ``webhook`` must name loopback (127.0.0.0/8, ::1,
    localhost), and the dry run's probe connects to nothing else; wins over
    ``allow_private_urls``."""
    max_video_bytes: int = 5 * GIB
    """The ingester's limit (the same variable): a dry run calls a bigger video too large."""
    dry_run_probe_timeout: float = 5.0
    """Seconds one URL's probe (HEAD, ranged GET, redirects) may take in a dry run."""
    dry_run_deadline: float = 20.0
    """Seconds a dry run may spend probing; URLs not probed by then are reported unchecked."""
    dry_run_request_probes: int = 8
    """URLs one dry run probes at once."""
    dry_run_process_probes: int = 32
    """URLs all dry runs of this process probe at once (one client cannot take them all)."""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    metrics_port: int = 0
    """Prometheus on a listener of its own (on ``host``); 0: none."""
    public_metrics: bool = False
    """Also serve ``/metrics`` on the API port."""
    log_json: bool | None = None
    db_pool_size: int = 10

    def __post_init__(self) -> None:
        # Raised as a configuration error by ``from_env``: the API does not start.
        if not 0 < self.media_link_ttl <= MAX_MEDIA_LINK_TTL:
            raise ValueError(
                f"media_link_ttl must be a positive number of seconds, at most {MAX_MEDIA_LINK_TTL}"
            )
        for name in ("dry_run_probe_timeout", "dry_run_deadline", "max_video_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not 0 < self.dry_run_request_probes <= self.dry_run_process_probes:
            raise ValueError(
                "dry_run_request_probes must be positive and at most dry_run_process_probes"
            )
        if self.media_signing_key:
            try:
                parse_secret(self.media_signing_key)
            except ValueError as exc:
                raise ValueError(f"media_signing_key {exc}") from None

    @property
    def media_signing_secret(self) -> bytes | None:
        """The configured signing key, None when unset."""
        return parse_secret(self.media_signing_key) if self.media_signing_key else None

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
