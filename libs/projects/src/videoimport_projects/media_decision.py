"""What an import does with one requested video, given the media registry (pure).

Shared by the ingester, which acts on the decision, and the API's dry run, which
only reports it: one implementation, so a dry run says what an import would do.

``decide`` compares the request with the registry row: metadata that does not
fit the project's config fails, an unchanged video is skipped, a new url (or a
new video) is downloaded, and a change of only the fileName or metadata updates
the registry while keeping the stored bytes.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Protocol, TypeAlias

import msgspec
from videoimport_events import FailureCode, MediaInfo, Outcome, bounded_reason

from videoimport_projects.config import ProjectConfig, metadata_errors


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
    media_info: MediaInfo | None = None
    """What ffprobe read from the stored object (None: stored before files were probed)."""
    poster_key: str | None = None
    """The poster JPEG beside the stored object (None: none could be made, or stored
    before posters were)."""


class RequestedVideo(Protocol):
    """What ``decide`` reads of a request (a ``VideoImportRequested`` has it all)."""

    @property
    def project(self) -> str: ...
    @property
    def system_name(self) -> str: ...
    @property
    def external_id(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def file_name(self) -> str: ...
    @property
    def metadata(self) -> dict[str, Any]: ...


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


def decide(
    request: RequestedVideo,
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
