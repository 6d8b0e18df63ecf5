"""What the operator pages show, decided without I/O: rows in, template context out.

Everything here is rendered by autoescaping templates; nothing is marked safe.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import msgspec
from videoimport_events import VideoPhase

from videoimport_api.domain.listing import ListedJob
from videoimport_api.domain.status import timestamp

PROGRESS_WIDTH: Final = 100
"""The progress bar's SVG viewBox width; segments are drawn in these units."""


class VideoLine(msgspec.Struct, frozen=True, kw_only=True):
    idx: int
    system_name: str
    external_id: str
    state: str | None = None
    code: str | None = None
    reason: str | None = None
    media_id: str | None = None
    phase: str | None = None
    """``ingest_tasks.phase`` of a video without a result; None while queued."""
    bytes_done: int | None = None
    bytes_total: int | None = None
    duration: float | None = None
    """Seconds, from the probed ``media_info``; None when the file was not probed."""
    width: int | None = None
    height: int | None = None
    poster_key: str | None = None
    link_expired: bool = False


class WebhookAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """A ``WebhookDelivered`` or ``WebhookDeliveryFailed`` event, as the page lists it."""

    position: int
    occurred_at: datetime
    delivered: bool
    attempt: int
    status_code: int | None = None
    error: str | None = None


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    occurred_at: datetime
    event_type: str
    stream_id: str


class JobPage(msgspec.Struct, frozen=True, kw_only=True):
    """One job as read in one snapshot: its summary, videos, webhook and events."""

    job: ListedJob
    videos: list[VideoLine]
    webhook_attempts: list[WebhookAttempt]
    timeline: list[TimelineEntry]
    timeline_truncated: bool


class Segment(msgspec.Struct, frozen=True):
    kind: str
    x: float
    width: float
    count: int


# --------------------------------------------------------------------------- cursor


# --------------------------------------------------------------------------- rendering


def progress_segments(total: int, success: int, skipped: int, failed: int) -> list[Segment]:
    """The stacked bar success | skipped | failed | pending, in viewBox units.

    Drawn as SVG rectangles (geometry attributes, not inline styles), so the strict
    Content-Security-Policy needs no ``'unsafe-inline'``."""
    done = success + skipped + failed
    scale = max(total, done, 1)
    segments: list[Segment] = []
    x = 0.0
    for kind, count in (
        ("success", success),
        ("skipped", skipped),
        ("failed", failed),
        ("pending", max(total - done, 0)),
    ):
        width = round(PROGRESS_WIDTH * count / scale, 3)
        if count > 0:
            segments.append(Segment(kind, round(x, 3), width, count))
        x += width
    return segments


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def video_phase(video: VideoLine) -> VideoPhase:
    if video.state is not None:
        return "done"
    if video.phase == "downloading":
        return "downloading"
    if video.phase == "storing":
        return "storing"
    return "queued"


def phase_text(video: VideoLine) -> str:
    """``done``, ``queued``, or e.g. ``downloading 1.5 MiB of 3.0 MiB``."""
    phase = video_phase(video)
    if phase in ("done", "queued"):
        return phase
    done = human_bytes(video.bytes_done or 0)
    if video.bytes_total is None:
        return f"{phase} {done}"
    return f"{phase} {done} of {human_bytes(video.bytes_total)}"


def human_duration(seconds: float | None) -> str:
    """``4.2 s`` under a minute, else ``1:05`` or ``1:02:05``; empty when not probed."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def dimensions(video: VideoLine) -> str:
    if video.width is None or video.height is None:
        return ""
    return f"{video.width}x{video.height}"


def when(value: datetime | None) -> str:
    return "" if value is None else timestamp(value)


def job_card(job: ListedJob) -> dict[str, Any]:
    return {
        "id": job.job_id,
        "state": job.state,
        "finished": job.state != "started",
        "system_name": job.system_name,
        "started_at": when(job.started_at),
        "finished_at": when(job.finished_at),
        "total": job.video_count,
        "success": job.success,
        "skipped": job.skipped,
        "failed": job.failed,
        "segments": progress_segments(job.video_count, job.success, job.skipped, job.failed),
    }


def jobs_context(
    project: str, rows: list[ListedJob], next_cursor: str | None, first_page: bool
) -> dict[str, Any]:
    """A page of the job list; ``next_cursor`` is the API listing's (``domain.listing``)."""
    return {
        "project": project,
        "jobs": [job_card(row) for row in rows],
        "next_cursor": next_cursor,
        "first_page": first_page,
    }


def job_context(
    project: str, page: JobPage, timeline_cap: int, poster_link: Callable[[str], str]
) -> dict[str, Any]:
    """``poster_link`` signs a poster's key into a link this server serves (same origin,
    so the page's ``img-src 'self'`` allows it)."""
    videos = [
        {
            "index": v.idx,
            "system_name": v.system_name,
            "external_id": v.external_id,
            "state": v.state or "started",
            "phase": phase_text(v),
            "code": v.code or "",
            "reason": v.reason or "",
            "media_id": v.media_id or "",
            "duration": human_duration(v.duration),
            "dimensions": dimensions(v),
            "poster": (
                None if v.poster_key is None or v.link_expired else poster_link(v.poster_key)
            ),
        }
        for v in page.videos
    ]
    attempts = [
        {
            "attempt": a.attempt,
            "result": "delivered" if a.delivered else "failed",
            "status": "" if a.status_code is None else str(a.status_code),
            "error": a.error or "",
            "time": when(a.occurred_at),
        }
        for a in page.webhook_attempts
    ]
    timeline = [
        {
            "position": e.position,
            "time": when(e.occurred_at),
            "type": e.event_type,
            "stream": e.stream_id,
        }
        for e in page.timeline
    ]
    return {
        "project": project,
        "job": job_card(page.job),
        "videos": videos,
        "attempts": attempts,
        "timeline": timeline,
        "timeline_truncated": page.timeline_truncated,
        "timeline_cap": timeline_cap,
    }
