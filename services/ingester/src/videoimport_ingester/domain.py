"""What to do with one requested video, and the result it leads to (pure).

``decide`` compares the request with the media registry: an unchanged video is
skipped, a new url (or a new video) is downloaded, and a change of only the
fileName or metadata updates the registry while keeping the stored bytes.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, TypeAlias

import msgspec
from videoimport_events import (
    FailureCode,
    Outcome,
    VideoImported,
    VideoImportFailed,
    VideoImportRequested,
    VideoImportSkipped,
    bounded_reason,
    media_deletion_stream,
    video_stream,
)
from videoimport_projects import ProjectConfig, metadata_errors

TerminalEvent: TypeAlias = VideoImported | VideoImportSkipped | VideoImportFailed

CONSUMER = "ingester"
"""The ingester's name in the inbox and among dead letters."""


class MediaRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the media registry: the current state of a video."""

    project: str
    system_name: str
    external_id: str
    media_id: str
    url: str
    file_name: str
    metadata: dict[str, Any]
    mime_type: str
    storage_key: str
    size: int
    sha256: str


class StoredObject(msgspec.Struct, frozen=True, kw_only=True):
    """A downloaded video as it landed in the media bucket."""

    storage_key: str
    mime_type: str
    size: int
    sha256: str
    upload_id: str | None = None
    """The multipart upload that wrote it (None: one PutObject)."""


class Fail(msgspec.Struct, frozen=True, kw_only=True):
    code: FailureCode
    reason: str


class Skip(msgspec.Struct, frozen=True, kw_only=True):
    existing: MediaRecord


class UpdateInPlace(msgspec.Struct, frozen=True, kw_only=True):
    """Same url: new fileName/metadata, the stored object is kept."""

    record: MediaRecord


class Download(msgspec.Struct, frozen=True, kw_only=True):
    media_id: str
    outcome: Outcome


Decision: TypeAlias = Fail | Skip | UpdateInPlace | Download


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


def identity(project: str, system_name: str, external_id: str) -> str:
    """A video's identity as one unambiguous string (a JSON array, no separators).

    Any separator could also occur inside the parts: ``("a", "b/c")`` and
    ``("a/b", "c")`` would meet. JSON escapes what would be ambiguous.
    """
    return msgspec.json.encode([project, system_name, external_id]).decode()


def media_id_for(project: str, system_name: str, external_id: str) -> str:
    """Deterministic, so a retried or repeated import names the same media.

    Only a new video gets this id: a registered one keeps the id its row holds
    (which an earlier release may have derived differently).
    """
    digest = hashlib.sha256(identity(project, system_name, external_id).encode()).digest()
    return base64.b32encode(digest).decode().lower()[:20]


def canonical(value: Any) -> bytes:
    """Typed JSON with sorted keys: ``1``, ``1.0`` and ``true`` differ, key order does not."""
    return msgspec.json.encode(value, order="sorted")


def same_record(a: MediaRecord | None, b: MediaRecord | None) -> bool:
    """Equal as stored, comparing metadata as typed JSON (Python's ``1 == True`` is not)."""
    if a is None or b is None:
        return a is b
    return canonical(a) == canonical(b)


def storage_key(project: str, media_id: str, request_event_id: str, extension: str) -> str:
    """Deterministic per request, so a retried download overwrites its own object."""
    return f"{project}/{media_id}/{request_event_id}{extension}"


stream_id = video_stream
"""The stream of one requested video and its result (``job-{job}/video-{index}``)."""

deleted_stream_id = media_deletion_stream
"""The stream of one object's ``MediaObjectDeleted`` (version 0): the same for a
repeated deletion of the same key, so the log records it once."""


def decide(
    request: VideoImportRequested,
    config: ProjectConfig | None,
    existing: MediaRecord | None,
) -> Decision:
    if config is None:
        return Fail(code="unknown_project", reason=f"unknown project {request.project!r}")
    errors = metadata_errors(config, request.metadata)
    if errors:
        return Fail(code="invalid_metadata", reason=bounded_reason("; ".join(errors)))
    if existing is None:
        media_id = media_id_for(request.project, request.system_name, request.external_id)
        return Download(media_id=media_id, outcome="created")
    if existing.url != request.url:
        return Download(media_id=existing.media_id, outcome="updated")
    if existing.file_name == request.file_name and canonical(existing.metadata) == canonical(
        request.metadata
    ):
        return Skip(existing=existing)
    updated = msgspec.structs.replace(
        existing, file_name=request.file_name, metadata=request.metadata
    )
    return UpdateInPlace(record=updated)


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
    )
    return _imported(request, record, decision.outcome, downloaded=True)


def kept_write(resolution: Resolution, stored: StoredObject | None) -> StoredObject | None:
    """The object of this request that the commit registers: its ledger entries go
    with the commit, and only the other writes need cleaning up."""
    if stored is None or resolution.record is None:
        return None
    return stored if resolution.record.storage_key == stored.storage_key else None


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
