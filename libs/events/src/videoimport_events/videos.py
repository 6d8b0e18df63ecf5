"""The ``videos`` family: one requested video and its single terminal result.

Every requested video gets exactly one of ``VideoImported``,
``VideoImportSkipped`` or ``VideoImportFailed``. ``MediaObjectDeleted`` says a
stored object is gone (no job: it is the ingester's housekeeping). All events of
one video (project, system name, external id) share a partition key, so
subscribers see them in order.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

from videoimport_events.base import Event


def video_key(project: str, system_name: str, external_id: str) -> str:
    """The partition key of a video: its identity within a project."""
    return f"{project}/{system_name}/{external_id}"


class _VideoEvent(Event, frozen=True, kw_only=True):
    family: ClassVar[str] = "videos"

    job_id: str
    project: str
    index: int
    """Position of the video in the request's ``videos`` array."""
    system_name: str
    external_id: str

    def partition_key(self) -> str:
        return video_key(self.project, self.system_name, self.external_id)


class VideoImportRequested(_VideoEvent, frozen=True, kw_only=True):
    """A video of an accepted batch awaits download and registration."""

    url: str
    file_name: str
    metadata: dict[str, Any]


class MediaInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the stored file itself says (read by ffprobe from the stored object)."""

    container: str
    """The container format: ``mp4``, ``mov``, ``webm``, ``matroska``, ``avi``, … (the
    stored ``mime_type`` follows from it)."""
    duration: float
    """Seconds."""
    width: int
    height: int
    frame_rate: float | None
    """Frames per second of the video stream (None when the file does not say)."""
    video_codec: str
    """ffprobe's codec name of the first video stream (``h264``, ``vp9``, ``av1``, …)."""
    audio_codec: str | None
    """The first audio stream's codec name; None when the file has no audio."""
    bit_rate: int | None
    """Overall bits per second (None when the file does not say)."""


class StoredMedia(_VideoEvent, frozen=True, kw_only=True):
    """Fields shared by results that point at a stored media object."""

    media_id: str
    mime_type: str
    storage_key: str
    """Object key in the media bucket; ``originalUrl`` is derived from it."""
    size: int
    sha256: str
    media_info: MediaInfo | None = None
    """Absent on results recorded before files were probed."""
    poster_key: str | None = None
    """Object key of the poster JPEG beside the video; ``posterUrl`` is derived from
    it. None: recorded before posters were made."""


Outcome = Literal["created", "updated"]


class VideoImported(StoredMedia, frozen=True, kw_only=True):
    """The video is stored and registered (created, or an existing one updated).

    ``downloaded`` is false when only fileName or metadata changed and the stored
    bytes were kept.
    """

    outcome: Outcome
    downloaded: bool
    url: str
    file_name: str
    metadata: dict[str, Any]


class VideoImportSkipped(StoredMedia, frozen=True, kw_only=True):
    """Same url, fileName and metadata as the registered video: nothing to do."""

    reason: str = "already exists"
    code: str = "already_exists"


class VideoImportFailed(_VideoEvent, frozen=True, kw_only=True):
    """The video could not be imported; ``reason`` is for humans, ``code`` for machines."""

    reason: str
    code: str


DeletionReason = Literal["superseded"]


class MediaObjectDeleted(Event, frozen=True, kw_only=True):
    """A stored media object was deleted from the bucket.

    ``superseded``: a re-import with a new url replaced it, and the grace period
    since has passed. Results that pointed at ``storage_key`` (older jobs) no
    longer have a link. Belongs to no job: its stream is
    ``media-{media_id}/deleted-{uuid5 of the key}``.
    """

    family: ClassVar[str] = "videos"

    project: str
    system_name: str
    external_id: str
    media_id: str
    storage_key: str
    reason: DeletionReason = "superseded"

    def partition_key(self) -> str:
        return video_key(self.project, self.system_name, self.external_id)
