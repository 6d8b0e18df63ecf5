"""Configuration of the projector, read from ``VIDEOIMPORT_*`` variables."""

from __future__ import annotations

import msgspec
from videoimport_eventlog.retry import RetryPolicy
from videoimport_eventlog.settings import from_env


class ProjectorSettings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
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
    retry_delay: float = 2.0
    """Pause after losing the database before connecting again."""
    attempts: int = 5
    """Failures of one event (other than an outage) before it is parked as a dead letter."""
    retry_base: float = 0.5
    retry_max_delay: float = 30.0
    dead_letter_check_interval: float = 5.0
    """How often to look for dead letters an operator asked to retry."""
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


def load() -> ProjectorSettings:
    return from_env(ProjectorSettings)
