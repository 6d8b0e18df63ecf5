"""Configuration of the projector, read from ``VIDEOIMPORT_*`` variables."""

from __future__ import annotations

import msgspec
from videoimport_eventlog.settings import from_env


class ProjectorSettings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    batch_size: int = 500
    poll_interval: float = 1.0
    """Longest wait for new events when a NOTIFY got lost."""
    retry_delay: float = 2.0
    """Pause after a failed batch (database unreachable) before retrying."""
    metrics_port: int = 0
    log_json: bool | None = None
    log_level: str = "INFO"


def load() -> ProjectorSettings:
    return from_env(ProjectorSettings)
