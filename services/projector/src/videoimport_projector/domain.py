"""The status of one import job, folded from its events (pure: no I/O).

``evolve`` applies one logged event to a job's state; ``decide_completion``
says whether the job has just finished and what ``JobCompleted`` to record.
Everything is derived from the log alone (times are the events' own
``occurred_at``), so replaying the log from zero yields the same state.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

import msgspec
from videoimport_events import (
    ImportRequested,
    JobCompleted,
    JobStatus,
    MediaInfo,
    MediaObjectDeleted,
    Overview,
    VideoImported,
    VideoImportFailed,
    VideoImportRequested,
    VideoImportSkipped,
    VideoState,
    WebhookDelivered,
    WebhookDeliveryFailed,
    video_state,
)

from videoimport_projector.webhook import WebhookStatus, fold

TRACKING_NAME = "projector"

JOB_EVENTS = (
    ImportRequested,
    JobCompleted,
    VideoImportRequested,
    VideoImported,
    VideoImportSkipped,
    VideoImportFailed,
    WebhookDelivered,
    WebhookDeliveryFailed,
)
"""The event types the status model is built from; the rest of the log is skipped."""


class Fact(Protocol):
    """A logged event with the metadata the projection needs."""

    @property
    def event(self) -> object: ...
    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def occurred_at(self) -> datetime: ...


class Logged(msgspec.Struct, frozen=True, kw_only=True):
    """A plain ``Fact`` (tests, tools); the log's own records fit the protocol too."""

    event: object
    event_id: uuid.UUID
    occurred_at: datetime


class JobState(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    project: str
    system_name: str
    video_count: int
    started_at: datetime
    webhook: str | None = None
    context: dict[str, Any] | None = None
    results: dict[int, VideoState] = msgspec.field(default_factory=dict)
    """Terminal state per video index; a second result for an index is ignored."""
    status: JobStatus = "started"
    finished_at: datetime | None = None
    cause_id: str = ""
    """The event that settled the job so far: the causation of its ``JobCompleted``."""
    cause_at: datetime | None = None
    completed: bool = False
    """A ``JobCompleted`` of this job has been read from the log."""
    webhook_status: WebhookStatus | None = None
    """The job's webhook delivery, from the notifier's attempt events (see ``webhook``)."""

    def overview(self) -> Overview:
        counts = {"success": 0, "skipped": 0, "failed": 0}
        for state in self.results.values():
            counts[state] += 1
        return Overview(total=self.video_count, **counts)


class VideoRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``status_videos``; ``state`` stays None until the video is terminal."""

    job_id: str
    idx: int
    system_name: str
    external_id: str
    state: VideoState | None = None
    reason: str | None = None
    code: str | None = None
    media_id: str | None = None
    mime_type: str | None = None
    storage_key: str | None = None
    outcome: str | None = None
    size: int | None = None
    sha256: str | None = None
    media_info: MediaInfo | None = None
    """What the stored file says; None for results recorded before files were probed."""
    poster_key: str | None = None


def _settled(state: JobState) -> JobState:
    """Mark the job finished once every video has its result."""
    if state.status != "started" or len(state.results) < state.video_count:
        return state
    overview = state.overview()
    status: JobStatus = "success" if overview.success + overview.skipped > 0 else "failed"
    return msgspec.structs.replace(state, status=status, finished_at=state.cause_at)


def evolve(state: JobState | None, fact: Fact) -> JobState | None:
    """The job's state after ``fact``; the same object when nothing changed."""
    event = fact.event
    if isinstance(event, ImportRequested):
        if state is not None:
            return state
        return _settled(
            JobState(
                job_id=event.job_id,
                project=event.project,
                system_name=event.system_name,
                video_count=event.video_count,
                started_at=fact.occurred_at,
                webhook=event.webhook,
                context=event.context,
                cause_id=str(fact.event_id),
                cause_at=fact.occurred_at,
            )
        )
    if state is None:
        # No ImportRequested before it: not a job this projection knows.
        return None
    if isinstance(event, JobCompleted):
        if (state.completed, state.status, state.finished_at) == (
            True,
            event.state,
            event.finished_at,
        ):
            return state
        return msgspec.structs.replace(
            state, completed=True, status=event.state, finished_at=event.finished_at
        )
    if isinstance(event, (WebhookDelivered, WebhookDeliveryFailed)):
        folded = fold(state.webhook_status, event, fact.occurred_at)
        if folded is state.webhook_status:
            return state
        return msgspec.structs.replace(state, webhook_status=folded)
    if not isinstance(event, (VideoImported, VideoImportSkipped, VideoImportFailed)):
        return state
    index = event.index
    if index in state.results or not 0 <= index < state.video_count:
        return state
    return _settled(
        msgspec.structs.replace(
            state,
            results={**state.results, index: video_state(event)},
            cause_id=str(fact.event_id),
            cause_at=fact.occurred_at,
        )
    )


def webhook_view(state: JobState) -> WebhookStatus | None:
    """The job's webhook as the status shows it: what its attempts say, else
    ``pending`` with no attempt for a finished job with a webhook; None without one."""
    if state.webhook_status is not None:
        return state.webhook_status
    if state.webhook is None or state.status == "started":
        return None
    return WebhookStatus(delivery_id="", state="pending", attempts=0)


def decide_completion(state: JobState) -> JobCompleted | None:
    """The ``JobCompleted`` to record, when the job is finished and none is recorded yet."""
    if state.completed or state.status == "started" or state.finished_at is None:
        return None
    return JobCompleted(
        job_id=state.job_id,
        project=state.project,
        state=state.status,
        overview=state.overview(),
        started_at=state.started_at,
        finished_at=state.finished_at,
        webhook=state.webhook,
        context=state.context,
    )


def video_row(event: object) -> VideoRow | None:
    """The ``status_videos`` row an event sets, if it is about one video."""
    if not isinstance(
        event, VideoImportRequested | VideoImported | VideoImportSkipped | VideoImportFailed
    ):
        return None
    identity = VideoRow(
        job_id=event.job_id,
        idx=event.index,
        system_name=event.system_name,
        external_id=event.external_id,
    )
    if isinstance(event, VideoImported):
        return msgspec.structs.replace(
            _stored(identity, event), state="success", outcome=event.outcome
        )
    if isinstance(event, VideoImportSkipped):
        return msgspec.structs.replace(
            _stored(identity, event), state="skipped", reason=event.reason, code=event.code
        )
    if isinstance(event, VideoImportFailed):
        return msgspec.structs.replace(
            identity, state="failed", reason=event.reason, code=event.code
        )
    return identity


def _stored(identity: VideoRow, event: VideoImported | VideoImportSkipped) -> VideoRow:
    """The row's fields about the stored object, as the result recorded them."""
    return msgspec.structs.replace(
        identity,
        media_id=event.media_id,
        mime_type=event.mime_type,
        storage_key=event.storage_key,
        size=event.size,
        sha256=event.sha256,
        media_info=event.media_info,
        poster_key=event.poster_key,
    )


def newer_row(old: VideoRow | None, new: VideoRow) -> VideoRow:
    """A terminal row is never replaced by a not-yet-terminal one."""
    if old is not None and old.state is not None and new.state is None:
        return old
    return new


def expired_key(event: object) -> str | None:
    """The storage key whose results lose their link: ``MediaObjectDeleted`` deleted
    the object (it belongs to no job; every ``status_videos`` row with the key is marked)."""
    if isinstance(event, MediaObjectDeleted):
        return event.storage_key
    return None


def job_id_of(event: object) -> str | None:
    if isinstance(event, JOB_EVENTS):
        return event.job_id
    return None


def completion_event_id(job_id: str) -> uuid.UUID:
    """The same id on every rebuild, so a recomputed JobCompleted is recognisably the same."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"videoimport:job-completed:{job_id}")
