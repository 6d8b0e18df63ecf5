"""Configuration of the notifier, read from ``VIDEOIMPORT_*`` variables."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from videoimport_eventlog.settings import from_env

RETIRED = {
    "VIDEOIMPORT_WEBHOOK_SECRET": (
        "every project has its own webhook secret now"
        " (videoimport webhook-secret show --project NAME); the variable is ignored"
    ),
}
"""Variables earlier releases read, with what replaced them."""


class NotifierSettings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    kafka_bootstrap: str
    topic_prefix: str = ""
    topic_partitions: int = 4
    topic_replication: int = 1
    client_id: str = "videoimport-notifier"
    max_in_flight: int = 8
    """JobCompleted messages handled at once (different jobs)."""
    consumer_attempts: int = 5
    """Tries of one JobCompleted (database outages not counted) before it is parked."""
    consumer_retry_base: float = 0.5
    consumer_retry_factor: float = 2.0
    consumer_retry_max_delay: float = 30.0
    consumer_retry_jitter: float = 0.2
    drain_timeout: float = 5.0
    """On a rebalance or stop, how long handlers of JobCompleted may still run."""
    allow_private_urls: bool = False
    webhook_timeout: float = 10.0
    webhook_concurrency: int = 8
    """Deliveries attempted at once."""
    webhook_project_limit: int = 2
    """Deliveries of one project attempted at once (per instance): a project whose
    receivers hang holds at most this many of the ``webhook_concurrency`` slots."""
    webhook_retry_base: float = 10.0
    """Seconds before the first retry; later retries wait ``factor`` times longer."""
    webhook_retry_factor: float = 3.0
    webhook_retry_max_delay: float = 43_200.0
    webhook_retry_jitter: float = 0.2
    webhook_max_attempts: int = 14
    """With the defaults above the last attempt is about three days after the first."""
    scheduler_poll_interval: float = 1.0
    """Longest wait before looking for due retries again."""
    dead_letter_poll_interval: float = 5.0
    """How often dead letters an operator marked for retry are looked for."""
    retry_delay: float = 2.0
    """Pause after the database or Kafka was unreachable (start-up, scheduler)."""
    shutdown_grace: float = 3.0
    """On SIGTERM, beyond ``webhook_timeout``, before what still runs is cancelled."""
    metrics_port: int = 0
    host: str = "127.0.0.1"
    """Address the health listener binds (``0.0.0.0`` to be probed from outside the
    host or pod, as Kubernetes does)."""
    health_port: int = 0
    """``/health/live`` and ``/health/ready`` on a listener of their own; 0: none."""
    log_json: bool | None = None
    log_level: str = "INFO"


def load() -> NotifierSettings:
    return from_env(NotifierSettings)


def retired_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The retired variables that are set, with what to do instead (never their values)."""
    return {name: why for name, why in RETIRED.items() if environ.get(name)}
