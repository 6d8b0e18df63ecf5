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
    s3_buffer_budget: int = 64 * MIB
    """Bytes of upload part buffers all videos together may hold (each part reserves
    its size before it fills); what bounds the ingester's memory with large videos."""
    allow_private_urls: bool = False
    """Let video URLs reach loopback/private addresses (local stacks only)."""
    max_video_bytes: int = 5 * GIB
    ingester_concurrency: int = 8
    ingester_intake_in_flight: int = 256
    """Requests the Kafka side queues at once (grouped into one insert): enough that a
    burst on the topic is queued as fast as it arrives."""
    """Videos this instance works on at once (worker tasks claiming from the queue)."""
    ingester_project_limit: int = 6
    """Videos of one project running at once, across every instance."""
    ingester_job_limit: int = 6
    """Videos of one job running at once, across every instance."""
    ingester_lease_seconds: float = 60.0
    """A claimed video's lease; renewed every third of it while the work runs, and
    claimable by another instance once it runs out (a crashed worker)."""
    ingester_cancel_check_interval: float = 2.0
    """While a video downloads, how often its worker looks whether its result was
    recorded elsewhere (a cancelled job), to abandon the download."""
    ingester_poll_interval: float = 1.0
    """How often an idle worker looks for work queued by another instance (or due again)."""
    ingester_attempts: int = 5
    """Counted failures of one request (outages do not count) before it fails
    with ``internal_error``; also of one Kafka message before it is parked."""
    ingester_retry_base: float = 2.0
    """Seconds before the first retry of a failed request; then x ``ingester_retry_factor``."""
    ingester_retry_factor: float = 2.0
    ingester_retry_max_delay: float = 60.0
    """Cap of one retry delay (also of the wait while the database or broker is away)."""
    download_connect_timeout: float = 10.0
    """Seconds to open a connection to a source."""
    download_read_timeout: float = 60.0
    """Longest silence while reading the body."""
    download_total_timeout: float = 6 * 3600.0
    """Longest one download attempt may take; exceeding it fails the video (no retry)."""
    download_min_rate: float = 16384.0
    """Bytes/s a source must deliver on average in every ``download_rate_window``
    (counting only time spent waiting for it); a slower one fails the video with
    ``timeout``, without a retry. 0 switches the check off."""
    download_rate_window: float = 30.0
    """Seconds (of waiting for the source) over which ``download_min_rate`` is measured."""
    download_attempts: int = 3
    """Tries of one source before a transient failure (5xx, reset) fails the video."""
    download_backoff: float = 1.0
    """First retry delay in seconds; doubles with each attempt."""
    ingester_probe_timeout: float = 30.0
    """Seconds each ffprobe (media info) or ffmpeg (poster frame) run on a stored
    video may take before its process group is killed; a probe that does not finish
    fails the video with ``unreadable_video``, a poster that does not is left out."""
    ffprobe: str = "ffprobe"
    """ffprobe's path, or a name looked up on PATH."""
    ffmpeg: str = "ffmpeg"
    """ffmpeg's path, or a name looked up on PATH."""
    superseded_grace: float = 7 * 24 * 3600.0
    """Seconds a media object replaced by a re-import with a new url is kept
    (older statuses still link to it) before the sweeper deletes it; 0 or
    negative: never deleted (still recorded in ``superseded_objects``)."""
    superseded_sweep_interval: float = 60.0
    """How often the sweeper looks for superseded objects that are due."""
    unsettled_upload_grace: float = 3600.0
    """Age in seconds after which the sweeper's janitor settles an uploads-ledger
    entry that nothing else did (a request handled, or a lease run out, and a
    crash before its writes were cleaned up). Live leases are never touched."""
    shutdown_grace: float = 10.0
    """How long SIGTERM waits for in-flight videos before cancelling them (their
    uploads are aborted and their queue rows released for another instance)."""
    metrics_port: int = 0
    host: str = "127.0.0.1"
    """Address the health listener binds (``0.0.0.0`` to be probed from outside the
    host or pod, as Kubernetes does)."""
    health_port: int = 0
    """``/health/live`` and ``/health/ready`` on a listener of their own; 0: none."""
    log_json: bool | None = None
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.s3_part_size < S3_MIN_PART_SIZE:
            raise ValueError(f"s3_part_size must be at least {S3_MIN_PART_SIZE} bytes")
        if self.s3_buffer_budget < self.s3_part_size:
            raise ValueError("s3_buffer_budget must hold at least one part (s3_part_size)")
        if self.ingester_intake_in_flight < 1:
            raise ValueError("ingester_intake_in_flight must be positive")
        if self.ingester_concurrency < 1 or self.s3_parts_in_flight < 1:
            raise ValueError("ingester_concurrency and s3_parts_in_flight must be positive")
        if self.download_attempts < 1 or self.ingester_attempts < 1:
            raise ValueError("download_attempts and ingester_attempts must be at least 1")
        if self.ingester_project_limit < 1 or self.ingester_job_limit < 1:
            raise ValueError("ingester_project_limit and ingester_job_limit must be positive")
        if self.ingester_lease_seconds <= 0 or self.ingester_poll_interval <= 0:
            raise ValueError("ingester_lease_seconds and ingester_poll_interval must be positive")
        if self.ingester_cancel_check_interval <= 0:
            raise ValueError("ingester_cancel_check_interval must be positive")
        if self.download_min_rate < 0 or self.download_rate_window <= 0:
            raise ValueError("download_min_rate must be >= 0 and download_rate_window > 0")
        if self.superseded_sweep_interval <= 0:
            raise ValueError("superseded_sweep_interval must be positive")
        if self.ingester_probe_timeout <= 0:
            raise ValueError("ingester_probe_timeout must be positive")
        if self.unsettled_upload_grace < 0:
            raise ValueError("unsettled_upload_grace must be >= 0")


def load() -> Settings:
    return env_settings.from_env(Settings)
