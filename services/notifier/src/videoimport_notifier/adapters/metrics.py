"""Prometheus metrics of the notifier (served by ``runtime.serve_metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

DELIVERIES = Counter("videoimport_notifier_deliveries_total", "Webhook deliveries recorded")
ATTEMPTS = Counter(
    "videoimport_notifier_attempts_total", "Webhook attempts by outcome", ["outcome"]
)
UNRECORDED = Counter(
    "videoimport_notifier_unrecorded_attempts_total",
    "Webhook attempts made whose outcome could not be stored (not an outage)",
)
IN_FLIGHT = Gauge("videoimport_notifier_attempts_in_flight", "Webhook attempts running now")
