"""The words every service shares: states, failure codes, stream names, routing.

States and codes are ``Literal`` types, so mypy checks every spelling against
one definition. Stream names are built (and read back) only by the functions
here: the log stores them, so their format never changes.

Routing: every event of a stream belongs to one family, and the family's
identity fields in its data make its Kafka key. So an event of a type this
code does not know (a newer writer's) can still be published to the right
topic under the right key, without decoding it as a type (see ``route``).
"""

from __future__ import annotations

import uuid
from typing import Final, Literal, get_args

import msgspec

from videoimport_events.videos import (
    VideoImported,
    VideoImportFailed,
    VideoImportSkipped,
    video_key,
)

FailureCode = Literal[
    "invalid_metadata",
    "unknown_project",
    "invalid_url",
    "forbidden_address",
    "download_failed",
    "timeout",
    "too_many_redirects",
    "too_large",
    "not_a_video",
    "internal_error",
    "cancelled",
    "unreadable_video",
    "too_long",
]
"""Why a video failed, for machines (``VideoImportFailed.code``)."""
FAILURE_CODES: Final[frozenset[str]] = frozenset(get_args(FailureCode))

VideoState = Literal["success", "skipped", "failed"]
"""A video's result: ``VideoImported``, ``VideoImportSkipped``, ``VideoImportFailed``."""
JobState = Literal["success", "failed"]
"""A finished job's result (``JobCompleted.state``, the webhook body's ``state``)."""
JobStatus = Literal["started", "success", "failed"]
"""A job as the status shows it: ``started`` until it has its ``JobState``."""
VideoPhase = Literal["queued", "downloading", "storing", "done"]
"""Where an unfinished video is (the status's ``phase``): waiting for a worker, its
bytes arriving, being written and recorded, or with its result (``VideoState``)."""
VIDEO_PHASES: Final[frozenset[str]] = frozenset(get_args(VideoPhase))
WebhookState = Literal["pending", "delivered", "failed"]
"""A job's webhook delivery: retrying (or not yet tried), answered 2xx, given up."""
Family = Literal["jobs", "videos", "webhooks"]
"""An event family; each has its Kafka topic (``TOPICS``)."""


def video_state(event: VideoImported | VideoImportSkipped | VideoImportFailed) -> VideoState:
    """The result a terminal video event stands for."""
    if isinstance(event, VideoImported):
        return "success"
    if isinstance(event, VideoImportSkipped):
        return "skipped"
    return "failed"


# Stream names. A job id, delivery id or media id never contains "/".

_JOB: Final = "job-"
_VIDEO: Final = "video-"
_REDELIVERY: Final = "redelivery-"
_WEBHOOK: Final = "webhook-"
_MEDIA: Final = "media-"
_CANCELLATION: Final = "cancellation"


def job_stream(job_id: str) -> str:
    """``job-{job_id}``: ``ImportRequested`` (version 0), ``JobCompleted`` (version 1)."""
    return f"{_JOB}{job_id}"


def video_stream(job_id: str, index: int) -> str:
    """``job-{job_id}/video-{index}``: one requested video (0) and its result (1)."""
    return f"{_JOB}{job_id}/{_VIDEO}{index}"


def redelivery_stream(job_id: str, request_id: uuid.UUID) -> str:
    """``job-{job_id}/redelivery-{uuid}``: one ``WebhookRedeliveryRequested`` (0)."""
    return f"{_JOB}{job_id}/{_REDELIVERY}{request_id}"


def cancellation_stream(job_id: str) -> str:
    """``job-{job_id}/cancellation``: the job's one ``JobCancelled`` (version 0)."""
    return f"{_JOB}{job_id}/{_CANCELLATION}"


def webhook_stream(delivery_id: str) -> str:
    """``webhook-{delivery_id}``: one event per delivery attempt (version attempt - 1)."""
    return f"{_WEBHOOK}{delivery_id}"


def media_deletion_stream(media_id: str, storage_key: str) -> str:
    """``media-{media_id}/deleted-{uuid5 of the key}``: one ``MediaObjectDeleted`` (0).

    The same for every deletion of the same key, so the log records it once.
    """
    key_id = uuid.uuid5(uuid.NAMESPACE_URL, f"videoimport:media-object:{storage_key}")
    return f"{_MEDIA}{media_id}/deleted-{key_id}"


def job_of_stream(stream_id: str) -> str | None:
    """The job id of ``job-{id}`` or of a stream under it (``job-{id}/…``)."""
    if not stream_id.startswith(_JOB):
        return None
    job_id = stream_id[len(_JOB) :].partition("/")[0]
    return job_id or None


def parse_video_stream(stream_id: str) -> tuple[str, int] | None:
    """(job id, index) of a ``video_stream``; None for any other name."""
    job_id = job_of_stream(stream_id)
    if job_id is None:
        return None
    rest = stream_id[len(job_stream(job_id)) :]
    if not rest.startswith("/" + _VIDEO):
        return None
    digits = rest[len(_VIDEO) + 1 :]
    if not digits.isascii() or not digits.isdigit() or str(int(digits)) != digits:
        return None
    return job_id, int(digits)


def stream_family(stream_id: str) -> Family | None:
    """The family of every event of a stream, from its name alone.

    ``job-{id}/video-…`` and ``media-…`` are ``videos``; ``webhook-…`` is
    ``webhooks``; ``job-{id}`` and any other stream under it are ``jobs``.
    None: a kind of stream this code does not know.
    """
    job_id = job_of_stream(stream_id)
    if job_id is not None:
        rest = stream_id[len(job_stream(job_id)) :]
        return "videos" if rest.startswith("/" + _VIDEO) else "jobs"
    if stream_id.startswith(_MEDIA) and len(stream_id) > len(_MEDIA):
        return "videos"
    if stream_id.startswith(_WEBHOOK) and len(stream_id) > len(_WEBHOOK):
        return "webhooks"
    return None


# Routing an event from its stream name and its data, whatever its type.


class UnroutableEvent(ValueError):
    """The stream is of a kind this code does not know: no topic for it."""


class _VideoIdentity(msgspec.Struct, frozen=True):
    project: str
    system_name: str
    external_id: str


class _JobIdentity(msgspec.Struct, frozen=True):
    job_id: str


_video_identity: Final = msgspec.json.Decoder(_VideoIdentity)
_job_identity: Final = msgspec.json.Decoder(_JobIdentity)


def partition_key_from_data(family: Family, data: bytes | str) -> str:
    """The Kafka key of an event of ``family``, read from its JSON data alone.

    ``videos``: ``video_key(project, system_name, external_id)``; ``jobs`` and
    ``webhooks``: ``job_id``; the same as every known type's ``partition_key``.
    Raises ``msgspec.ValidationError`` or ``DecodeError`` when the data lacks them.
    """
    if family == "videos":
        video = _video_identity.decode(data)
        return video_key(video.project, video.system_name, video.external_id)
    return _job_identity.decode(data).job_id


def route(stream_id: str, data: bytes | str) -> tuple[Family, str]:
    """(family, key) of any event, known or not: the family from the stream name,
    the key from the data. Raises ``UnroutableEvent`` for an unknown kind of stream."""
    family = stream_family(stream_id)
    if family is None:
        raise UnroutableEvent(f"no event family for stream {stream_id!r}")
    return family, partition_key_from_data(family, data)
