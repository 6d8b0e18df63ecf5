"""Prometheus metrics of the notifier (served by ``runtime.serve_metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

DELIVERIES = Counter("videoimport_notifier_deliveries_total", "Webhook deliveries recorded")
ATTEMPTS = Counter(
    "videoimport_notifier_attempts_total", "Webhook attempts by outcome", ["outcome"]
)
