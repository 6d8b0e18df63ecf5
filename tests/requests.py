"""What the API appends for a batch, built directly (for tests of the log's readers)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from videoimport_eventlog import store
from videoimport_events import ImportRequested, VideoImportRequested


def requested_job(
    job_id: str,
    count: int,
    *,
    project: str = "acme",
    system_name: str = "archive",
    occurred_at: datetime | None = None,
    **extra: Any,
) -> list[store.NewEvent]:
    """``ImportRequested`` and one ``VideoImportRequested`` per video (external id ``ext-i``)."""
    when = occurred_at or datetime.now(UTC)
    common = {"job_id": job_id, "project": project, "system_name": system_name}
    events = [
        store.NewEvent(
            ImportRequested(**common, api_version="2025-03", video_count=count, **extra),
            stream_id=f"job-{job_id}",
            stream_version=0,
            correlation_id=job_id,
            project=project,
            occurred_at=when,
        )
    ]
    events += [
        store.NewEvent(
            VideoImportRequested(
                **common,
                index=i,
                external_id=f"ext-{i}",
                url=f"https://videos.example.com/{i}.mp4",
                file_name=f"file {i}",
                metadata={"title": f"t{i}"},
            ),
            stream_id=f"job-{job_id}/video-{i}",
            stream_version=0,
            correlation_id=job_id,
            project=project,
            occurred_at=when,
        )
        for i in range(count)
    ]
    return events
