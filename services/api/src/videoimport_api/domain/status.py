"""The status document of a job, in the exact shapes of the public contract.

Rows come from the projector's read model (or, before it caught up, from the
job's ``ImportRequested`` event); this module only renders them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

import msgspec
from videoimport_events import JobStatus, MediaInfo, VideoPhase, VideoState, WebhookState

STARTED: Final[JobStatus] = "started"

Link = Callable[[str], str]
"""Turns a storage key into the URL a client may fetch it from (signed, expiring)."""


class JobRow(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    state: JobStatus
    video_count: int
    started_at: datetime
    finished_at: datetime | None = None
    success: int = 0
    skipped: int = 0
    failed: int = 0
    webhook: WebhookRow | None = None


class WebhookRow(msgspec.Struct, frozen=True, kw_only=True):
    """The job's webhook delivery as the projector folded it from the attempt events."""

    state: WebhookState
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


class VideoRow(msgspec.Struct, frozen=True, kw_only=True):
    idx: int
    system_name: str
    external_id: str
    state: VideoState | None = None
    reason: str | None = None
    code: str | None = None
    media_id: str | None = None
    mime_type: str | None = None
    storage_key: str | None = None
    link_expired: bool = False
    """The object was deleted (superseded by a re-import): no link any more."""
    size: int | None = None
    sha256: str | None = None
    media_info: MediaInfo | None = None
    """What the stored file says; None for results recorded before files were probed."""
    poster_key: str | None = None


class VideoProgress(msgspec.Struct, frozen=True, kw_only=True):
    """Where a video without a result is, as the ingester's work queue says."""

    phase: str | None = None
    """NULL (queued), ``downloading`` or ``storing``; anything else reads as queued."""
    bytes_done: int | None = None
    bytes_total: int | None = None


def timestamp(value: datetime) -> str:
    """The contract's ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def original_url(media_base_url: str, storage_key: str) -> str:
    return f"{media_base_url.rstrip('/')}/{quote(storage_key, safe='/')}"


def _counts(job: JobRow) -> dict[str, int]:
    return {
        "total": job.video_count,
        "success": job.success,
        "skipped": job.skipped,
        "failed": job.failed,
    }


def render_started(job: JobRow) -> dict[str, Any]:
    return {
        "finished": False,
        "state": STARTED,
        "id": job.job_id,
        "startedAt": timestamp(job.started_at),
        "progress": _counts(job),
    }


def render_probed(video: VideoRow, info: MediaInfo, link: Link) -> dict[str, Any]:
    """The fields a probed file adds to its ``video`` object. All of them or none: a
    result recorded before files were probed keeps the contract's three fields only.
    ``posterUrl`` is null without a poster, or once the objects were deleted."""
    poster = None if video.link_expired else video.poster_key
    return {
        "duration": info.duration,
        "width": info.width,
        "height": info.height,
        "frameRate": info.frame_rate,
        "videoCodec": info.video_codec,
        "audioCodec": info.audio_codec,
        "bitRate": info.bit_rate,
        "container": info.container,
        "size": video.size,
        "sha256": video.sha256,
        "posterUrl": None if poster is None else link(poster),
    }


def render_video(video: VideoRow, link: Link) -> dict[str, Any]:
    identity = {"systemName": video.system_name, "externalId": video.external_id}
    if video.state in ("success", "skipped"):
        rendered: dict[str, Any] = {"state": video.state}
        if video.state == "skipped":
            rendered["reason"] = video.reason or "already exists"
            rendered["code"] = video.code or "already_exists"
        rendered.update(identity)
        key = None if video.link_expired else video.storage_key
        rendered["video"] = {
            "mediaId": video.media_id,
            "originalUrl": None if key is None else link(key),
            "mimeType": video.mime_type,
        }
        if video.link_expired:
            rendered["video"]["linkExpired"] = True
        if video.media_info is not None:
            rendered["video"].update(render_probed(video, video.media_info, link))
        return rendered
    if video.state is None:
        # Only reachable if the read model were inconsistent; say so rather than guess.
        return {"state": STARTED, **identity}
    return {
        "state": "failed",
        "reason": video.reason or "import failed",
        "code": video.code or "failed",
        **identity,
    }


def _optional_timestamp(value: datetime | None) -> str | None:
    return None if value is None else timestamp(value)


def render_webhook(webhook: WebhookRow) -> dict[str, Any]:
    return {
        "state": webhook.state,
        "attempts": webhook.attempts,
        "lastStatus": webhook.last_status,
        "lastError": webhook.last_error,
        "nextAttemptAt": _optional_timestamp(webhook.next_attempt_at),
        "deliveredAt": _optional_timestamp(webhook.delivered_at),
    }


def render_status(job: JobRow, videos: list[VideoRow], link: Link) -> dict[str, Any]:
    if job.state == STARTED:
        return render_started(job)
    document: dict[str, Any] = {
        "finished": True,
        "state": job.state,
        "id": job.job_id,
        "startedAt": timestamp(job.started_at),
    }
    if job.finished_at is not None:
        document["finishedAt"] = timestamp(job.finished_at)
    document["overview"] = _counts(job)
    ordered = sorted(videos, key=lambda v: v.idx)
    document["videos"] = [render_video(v, link) for v in ordered]
    if job.webhook is not None:
        document["webhook"] = render_webhook(job.webhook)
    return document


def running_phase(progress: VideoProgress | None) -> VideoPhase:
    """The phase of a video without a result; no queue row yet (or any more) is queued."""
    phase = None if progress is None else progress.phase
    if phase == "downloading":
        return "downloading"
    if phase == "storing":
        return "storing"
    return "queued"


def render_paged_video(
    video: VideoRow, progress: VideoProgress | None, link: Link
) -> dict[str, Any]:
    if video.state is not None:
        return {**render_video(video, link), "phase": "done"}
    phase = running_phase(progress)
    rendered: dict[str, Any] = {"state": STARTED, "phase": phase}
    if phase != "queued" and progress is not None:
        rendered["bytesDownloaded"] = progress.bytes_done or 0
    rendered["bytesTotal"] = None if progress is None else progress.bytes_total
    rendered["systemName"] = video.system_name
    rendered["externalId"] = video.external_id
    return rendered


def render_paged_status(
    job: JobRow,
    videos: list[VideoRow],
    progress: dict[int, VideoProgress],
    link: Link,
    next_cursor: str | None,
) -> dict[str, Any]:
    """The status with one page of videos (any job, running or not) and ``nextCursor``."""
    document = render_status(job, [], link)
    document["videos"] = [render_paged_video(v, progress.get(v.idx), link) for v in videos]
    document["nextCursor"] = next_cursor
    return document
