"""Retry and cancel, decided on what the log says about a job (pure).

The log, not the read model, is the truth here: the projector may lag behind a
result, a cancellation or a ``JobCompleted`` by a moment.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Final

import msgspec
from videoimport_eventlog.store import NewEvent
from videoimport_events import (
    ImportRequested,
    JobCancelled,
    RequestedBy,
    VideoImportFailed,
    VideoImportRequested,
    cancellation_stream,
    video_stream,
)

from videoimport_api.domain import idempotency
from videoimport_api.domain.errors import ApiError, FieldError
from videoimport_api.domain.validation import ImportCommand, VideoSpec

CANCELLED_REASON: Final = "cancelled by the client"
CANCELLED_CODE: Final = "cancelled"


class LoggedJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job as its streams in the log stand."""

    requested: ImportRequested
    completed: bool
    """Its ``JobCompleted`` is recorded: every video has its result."""
    cancelled: bool
    """Its ``JobCancelled`` is recorded."""


class OpenVideo(msgspec.Struct, frozen=True, kw_only=True):
    """A requested video with no result in the log yet."""

    index: int
    system_name: str
    external_id: str


def _conflict(reason: str) -> ApiError:
    return ApiError(409, reason, [FieldError("id", reason)])


def not_found(job_id: str) -> ApiError:
    return ApiError(404, f"no import job {job_id}", [FieldError("id", "no such import job")])


def cancel_refusal(job: LoggedJob, open_videos: list[OpenVideo]) -> ApiError | None:
    """Why the job cannot be cancelled (409), None when it can."""
    job_id = job.requested.job_id
    if job.cancelled:
        return _conflict(f"import job {job_id} was already cancelled")
    if job.completed or not open_videos:
        return _conflict(f"import job {job_id} has already finished")
    return None


def cancel_events(
    job: LoggedJob, open_videos: list[OpenVideo], requested_by: RequestedBy, now: datetime
) -> list[NewEvent]:
    """``JobCancelled`` and, caused by it, a ``cancelled`` failure for every open video.

    The failures go at version 1 of each video's stream, where its result belongs: a
    result recorded meanwhile makes the append conflict instead of adding a second one.
    """
    requested = job.requested
    job_id, project = requested.job_id, requested.project
    cancelled = NewEvent(
        event=JobCancelled(
            job_id=job_id, project=project, requested_by=requested_by, cancelled=len(open_videos)
        ),
        stream_id=cancellation_stream(job_id),
        stream_version=0,
        correlation_id=job_id,
        project=project,
        occurred_at=now,
    )
    failures = [
        NewEvent(
            event=VideoImportFailed(
                job_id=job_id,
                project=project,
                index=video.index,
                system_name=video.system_name,
                external_id=video.external_id,
                reason=CANCELLED_REASON,
                code=CANCELLED_CODE,
            ),
            stream_id=video_stream(job_id, video.index),
            stream_version=1,
            correlation_id=job_id,
            project=project,
            causation_id=str(cancelled.event_id),
            occurred_at=now,
        )
        for video in open_videos
    ]
    return [cancelled, *failures]


def retry_refusal(job: LoggedJob, failed: list[VideoImportRequested]) -> ApiError | None:
    """Why the job's failed videos cannot be imported again (409), None when they can."""
    job_id = job.requested.job_id
    if not job.completed:
        return _conflict(f"import job {job_id} has not finished yet")
    if not failed:
        return _conflict(f"import job {job_id} has no failed videos")
    return None


def retry_command(requested: ImportRequested, failed: list[VideoImportRequested]) -> ImportCommand:
    """The import of the failed videos, each as originally requested, in their order."""
    return ImportCommand(
        system_name=requested.system_name,
        videos=tuple(
            VideoSpec(
                url=video.url,
                external_id=video.external_id,
                file_name=video.file_name,
                metadata=video.metadata,
            )
            for video in sorted(failed, key=lambda v: v.index)
        ),
        webhook=requested.webhook,
        context=requested.context,
    )


def retry_fingerprint(api_version: str, command: ImportCommand, retry_of: str) -> str:
    """The idempotency fingerprint of a retry: never the same as an import's, even one
    of exactly the same videos, so one ``Idempotency-Key`` cannot stand for both."""
    imported = idempotency.fingerprint(api_version, command)
    return hashlib.sha256(f"retry-of\n{retry_of}\n{imported}".encode()).hexdigest()
