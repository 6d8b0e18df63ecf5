"""Prometheus metrics of the relay (served by ``runtime.serve_metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PUBLISHED = Counter("videoimport_relay_published_total", "Events acknowledged by Kafka")
FAILED_BATCHES = Counter("videoimport_relay_failed_batches_total", "Batches sent again")
POSITION = Gauge("videoimport_relay_position", "Last log position acknowledged by Kafka")
LAG = Gauge("videoimport_relay_lag", "Last log position minus the relay's position")
LEADER = Gauge("videoimport_relay_leader", "1 while this instance holds the leader lock")
PARKED = Counter("videoimport_relay_parked_total", "Events parked as dead letters")
REPUBLISHED = Counter(
    "videoimport_relay_republished_total", "Unfinished requests published again (reconciliation)"
)
