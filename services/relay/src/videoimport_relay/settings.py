"""Configuration of the outbox relay, read from ``VIDEOIMPORT_*`` variables."""

from __future__ import annotations

import msgspec
from videoimport_eventlog.retry import RetryPolicy
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
    burst_wait: float = 0.02
    """When appends come closer together than this, how long a wake-up waits for
    the rest of the burst before reading (unless a full batch is there): fewer,
    fuller batches for at most this much latency; a lone append is read at once.
    0: always read at once."""
    lag_interval: float = 1.0
    """How often the lag gauge reads the log's head (in between: what NOTIFY said)."""
    standby_interval: float = 2.0
    """How often a standby instance tries to become the leader."""
    retry_delay: float = 2.0
    """Pause after a failed batch (Kafka or Postgres unreachable) before retrying."""
    attempts: int = 5
    """Failures of one event (other than an outage) before it is parked as a dead letter."""
    retry_base: float = 0.5
    retry_max_delay: float = 30.0
    reconcile_after: float = 600.0
    """A requested video with no result this many seconds after it was logged is
    published again (then after 2x, 4x, … up to ``reconcile_max_backoff``)."""
    reconcile_max_backoff: float = 6 * 3600.0
    reconcile_interval: float = 30.0
    """How often to look for overdue requests and for dead letters to retry."""
    client_id: str = "videoimport-relay"
    metrics_port: int = 0
    host: str = "127.0.0.1"
    """Address the health listener binds (``0.0.0.0`` to be probed from outside the
    host or pod, as Kubernetes does)."""
    health_port: int = 0
    """``/health/live`` and ``/health/ready`` on a listener of their own; 0: none."""
    log_json: bool | None = None
    log_level: str = "INFO"

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.attempts, base=self.retry_base, max_delay=self.retry_max_delay
        )


def load() -> RelaySettings:
    return from_env(RelaySettings)
