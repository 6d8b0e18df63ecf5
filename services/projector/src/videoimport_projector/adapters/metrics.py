"""Prometheus metrics of the projector (served by ``runtime.serve_metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

APPLIED = Counter("videoimport_projector_events_total", "Log events read by the projector")
COMPLETED = Counter("videoimport_projector_jobs_completed_total", "JobCompleted events appended")
POSITION = Gauge("videoimport_projector_position", "Last log position projected")
LAG = Gauge("videoimport_projector_lag", "Last log position minus the projector's position")
