"""The ``jobs`` family: the life of one import request (a batch)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

import msgspec

from videoimport_events.base import Event
from videoimport_events.vocabulary import JobState

__all__ = [
    "ImportRequested",
    "JobCancelled",
    "JobCompleted",
    "JobState",
    "Overview",
    "RequestedBy",
    "WebhookRedeliveryRequested",
]

RequestedBy = Literal["api", "operator"]


class ImportRequested(Event, frozen=True, kw_only=True):
    """A client's batch was accepted and durably recorded.

    One ``VideoImportRequested`` per video follows in the same transaction.
    """

    family: ClassVar[str] = "jobs"

    job_id: str
    project: str
    system_name: str
    api_version: str
    video_count: int
    webhook: str | None = None
    context: dict[str, Any] | None = None
    idempotency_key: str | None = None
    retry_of: str | None = None
    """The job whose failed videos this one imports again (``POST …/retry``)."""

    def partition_key(self) -> str:
        return self.job_id


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    """Counts per terminal state of the videos of one job."""

    total: int
    success: int
    skipped: int
    failed: int


class JobCompleted(Event, frozen=True, kw_only=True):
    """Every video of the job has a terminal result.

    ``state`` is ``failed`` when no video succeeded or was skipped. Carries the
    webhook target and the client's context so that a notifier needs nothing else.
    """

    family: ClassVar[str] = "jobs"

    job_id: str
    project: str
    state: JobState
    overview: Overview
    started_at: datetime
    finished_at: datetime
    webhook: str | None = None
    context: dict[str, Any] | None = None

    def partition_key(self) -> str:
        return self.job_id


class WebhookRedeliveryRequested(Event, frozen=True, kw_only=True):
    """Someone asked for a finished job's webhook to be sent once more.

    Recorded only after the job's ``JobCompleted`` (with a webhook) is in the log,
    on its own stream ``job-{job_id}/redelivery-{uuid}``. The notifier re-arms the
    job's existing delivery: same ``webhook-id`` and body, a fresh attempt budget.
    ``requested_by`` is ``api`` (the client) or ``operator`` (the CLI).
    """

    family: ClassVar[str] = "jobs"

    job_id: str
    project: str
    requested_by: RequestedBy

    def partition_key(self) -> str:
        return self.job_id


class JobCancelled(Event, frozen=True, kw_only=True):
    """Someone cancelled a running job: its unfinished videos end ``failed``/``cancelled``.

    Recorded once per job, on the stream ``job-{job_id}/cancellation``, in the same
    transaction as one ``VideoImportFailed`` (code ``cancelled``) per video that had no
    result yet; ``cancelled`` counts them. Downloads still running for those videos are
    abandoned by the ingester. The job then completes like any other (``JobCompleted``).
    """

    family: ClassVar[str] = "jobs"

    job_id: str
    project: str
    requested_by: RequestedBy
    cancelled: int

    def partition_key(self) -> str:
        return self.job_id
