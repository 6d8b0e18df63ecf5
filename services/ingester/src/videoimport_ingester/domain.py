"""The result a decided video leads to, and the upload ledger's cleanup (pure).

Whether a video is downloaded, updated in place, skipped or failed is decided
by ``videoimport_projects.media_decision.decide``, shared with the API's dry
run; it is re-exported here for the ingester's modules.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec
from videoimport_events import (
    FailureCode,
    MediaInfo,
    Outcome,
    VideoImported,
    VideoImportFailed,
    VideoImportRequested,
    VideoImportSkipped,
    bounded_reason,
    media_deletion_stream,
    video_stream,
)
from videoimport_projects.media_decision import Decision, MediaRecord, UpdateInPlace
from videoimport_projects.media_decision import Download as Download
from videoimport_projects.media_decision import Fail as Fail
from videoimport_projects.media_decision import Skip as Skip
from videoimport_projects.media_decision import decide as decide
from videoimport_projects.media_decision import same_record as same_record

TerminalEvent: TypeAlias = VideoImported | VideoImportSkipped | VideoImportFailed

CONSUMER = "ingester"
"""The ingester's name in the inbox and among dead letters."""


class StoredObject(msgspec.Struct, frozen=True, kw_only=True):
    """A downloaded video as it landed in the media bucket."""

    storage_key: str
    mime_type: str
    size: int
    sha256: str
    upload_id: str | None = None
    """The multipart upload that wrote it (None: one PutObject)."""
    media_info: MediaInfo | None = None
    """What ffprobe read from it (None until it is probed)."""
    poster_key: str | None = None
    """Its poster JPEG, written with one PutObject (None: none was made)."""


class KeptWrite(msgspec.Struct, frozen=True, kw_only=True):
    """An object of a request that its commit registers (its ledger entries go with it)."""

    storage_key: str
    upload_id: str | None = None


class Resolution(msgspec.Struct, frozen=True, kw_only=True):
    """The terminal event to append, and the registry row to write (if any)."""

    event: TerminalEvent
    record: MediaRecord | None


class UnsettledUpload(msgspec.Struct, frozen=True, kw_only=True):
    """An entry of the uploads ledger, with what the database says about it now."""

    entry_id: int
    request_id: str
    storage_key: str
    upload_id: str | None
    handled: bool
    """The request's terminal event is committed: nothing can register its keys any more."""
    leased: bool
    """A worker holds the request's lease: the write may still be going on."""
    referenced: bool
    """The registry or ``superseded_objects`` points at the key: the object stays."""


class Cleanup(msgspec.Struct, frozen=True, kw_only=True):
    """What settling one ledger entry takes."""

    abort_upload: str | None
    delete_object: bool
    forget: bool
    """Delete the entry; else only its upload id is cleared (the object is then
    the request's own commit to judge)."""


def storage_key(project: str, media_id: str, request_event_id: str, extension: str) -> str:
    """Deterministic per request, so a retried download overwrites its own object."""
    return f"{project}/{media_id}/{request_event_id}{extension}"


stream_id = video_stream
"""The stream of one requested video and its result (``job-{job}/video-{index}``)."""

deleted_stream_id = media_deletion_stream
"""The stream of one object's ``MediaObjectDeleted`` (version 0): the same for a
repeated deletion of the same key, so the log records it once."""


def failed(request: VideoImportRequested, code: FailureCode, reason: str) -> Resolution:
    event = VideoImportFailed(
        job_id=request.job_id,
        project=request.project,
        index=request.index,
        system_name=request.system_name,
        external_id=request.external_id,
        reason=bounded_reason(reason),
        code=code,
    )
    return Resolution(event=event, record=None)


def _imported(
    request: VideoImportRequested, record: MediaRecord, outcome: Outcome, downloaded: bool
) -> Resolution:
    event = VideoImported(
        job_id=request.job_id,
        project=request.project,
        index=request.index,
        system_name=request.system_name,
        external_id=request.external_id,
        media_id=record.media_id,
        mime_type=record.mime_type,
        storage_key=record.storage_key,
        size=record.size,
        sha256=record.sha256,
        outcome=outcome,
        downloaded=downloaded,
        url=record.url,
        file_name=record.file_name,
        metadata=record.metadata,
        media_info=record.media_info,
        poster_key=record.poster_key,
    )
    return Resolution(event=event, record=record)


def resolve(
    request: VideoImportRequested, decision: Decision, stored: StoredObject | None = None
) -> Resolution:
    """The result of a decision; a ``Download`` needs the object it stored."""
    if isinstance(decision, Fail):
        return failed(request, decision.code, decision.reason)
    if isinstance(decision, Skip):
        existing = decision.existing
        skipped = VideoImportSkipped(
            job_id=request.job_id,
            project=request.project,
            index=request.index,
            system_name=request.system_name,
            external_id=request.external_id,
            media_id=existing.media_id,
            mime_type=existing.mime_type,
            storage_key=existing.storage_key,
            size=existing.size,
            sha256=existing.sha256,
            media_info=existing.media_info,
            poster_key=existing.poster_key,
        )
        return Resolution(event=skipped, record=None)
    if isinstance(decision, UpdateInPlace):
        return _imported(request, decision.record, "updated", downloaded=False)
    if stored is None:
        raise ValueError("a download decision resolves only with the stored object")
    record = MediaRecord(
        project=request.project,
        system_name=request.system_name,
        external_id=request.external_id,
        media_id=decision.media_id,
        url=request.url,
        file_name=request.file_name,
        metadata=request.metadata,
        mime_type=stored.mime_type,
        storage_key=stored.storage_key,
        size=stored.size,
        sha256=stored.sha256,
        media_info=stored.media_info,
        poster_key=stored.poster_key,
    )
    return _imported(request, record, decision.outcome, downloaded=True)


def kept_writes(resolution: Resolution, stored: StoredObject | None) -> list[KeptWrite]:
    """The objects of this request that the commit registers (the video and its
    poster): their ledger entries go with the commit, and only the other writes
    need cleaning up."""
    if stored is None or resolution.record is None:
        return []
    if resolution.record.storage_key != stored.storage_key:
        return []
    kept = [KeptWrite(storage_key=stored.storage_key, upload_id=stored.upload_id)]
    if stored.poster_key is not None:
        kept.append(KeptWrite(storage_key=stored.poster_key))
    return kept


def cleanup_for(entry: UnsettledUpload) -> Cleanup | None:
    """How to settle a ledger entry; None: leave it (someone may still write it).

    Once the request is handled its keys are final: abort the upload (a
    completed one answers NoSuchUpload, harmless) and delete the object unless
    something references it. Before that, only the request's own commit may
    judge the object (a retry can still register the same key), but an upload
    whose lease ran out has no writer left and is aborted.
    """
    if entry.handled:
        return Cleanup(
            abort_upload=entry.upload_id, delete_object=not entry.referenced, forget=True
        )
    if entry.leased or entry.upload_id is None:
        return None
    return Cleanup(abort_upload=entry.upload_id, delete_object=False, forget=False)
