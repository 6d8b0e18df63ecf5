"""Configuration of the outbox relay, read from ``VIDEOIMPORT_*`` variables."""

from __future__ import annotations

import msgspec
from videoimport_eventlog.settings import from_env


class RelaySettings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    kafka_bootstrap: str
    topic_prefix: str = ""
    topic_partitions: int = 4
    topic_replication: int = 1
    batch_size: int = 500
    poll_interval: float = 1.0
    """Longest wait for new events when a NOTIFY got lost."""
    standby_interval: float = 2.0
    """How often a standby instance tries to become the leader."""
    retry_delay: float = 2.0
    """Pause after a failed batch (Kafka or Postgres unreachable) before retrying."""
    client_id: str = "videoimport-relay"
    metrics_port: int = 0
    log_json: bool | None = None
    log_level: str = "INFO"


def load() -> RelaySettings:
    return from_env(RelaySettings)
