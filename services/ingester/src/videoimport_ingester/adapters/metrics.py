"""Prometheus metrics of the ingester (served on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

DOWNLOADS_IN_FLIGHT = Gauge(
    "videoimport_ingester_downloads_in_flight", "Video downloads currently streaming to S3"
)
DOWNLOADED_BYTES = Counter("videoimport_ingester_downloaded_bytes", "Bytes read from video sources")
DOWNLOAD_ATTEMPTS = Counter(
    "videoimport_ingester_download_attempts", "Download attempts by result", ["result"]
)
DOWNLOAD_RESUMES = Counter(
    "videoimport_ingester_download_resumes",
    "Range requests after a broken download, by outcome: resumed (the rest came, same"
    " upload) or restarted (the source changed or ignored the range: a fresh attempt)",
    ["outcome"],
)
RESULTS = Counter(
    "videoimport_ingester_results", "Terminal video results appended, by state", ["state"]
)
TASKS_RUNNING = Gauge(
    "videoimport_ingester_tasks_running", "Queued requests this instance is working on"
)
TASK_FAILURES = Counter(
    "videoimport_ingester_task_failures",
    "Requests whose handling raised, by kind (outage, counted, given_up)",
    ["kind"],
)
ABANDONED = Counter(
    "videoimport_ingester_abandoned",
    "Requests whose video got its result elsewhere (a cancelled job), by when the worker"
    " noticed: at its claim (nothing downloaded) or while downloading (download cancelled)",
    ["when"],
)
SUPERSEDED_DELETED = Counter(
    "videoimport_ingester_superseded_deleted",
    "Superseded media objects deleted by the sweeper (MediaObjectDeleted appended)",
)
UNSETTLED_CLEANED = Counter(
    "videoimport_ingester_unsettled_uploads_cleaned",
    "Uploads-ledger entries settled (upload aborted, unreferenced object deleted), by who"
    " found them: the request's own commit or redelivery (request), the janitor (janitor)",
    ["by"],
)
