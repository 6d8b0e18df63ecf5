"""The request and response bodies of the API as msgspec Structs, for the OpenAPI document.

These types only describe the wire (``openapi_components`` turns them into JSON
Schema); the handlers build their answers elsewhere. Limits are the validator's
own constants, so the document cannot drift from what ``domain/validation.py``
refuses. What JSON Schema cannot say (no lone surrogate, not only whitespace,
unique ids, byte sizes) is said in the descriptions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType
from videoimport_events import FAILURE_CODES, JobState, JobStatus, VideoPhase, WebhookState

from videoimport_api.domain.json_limits import MAX_KEY_CHARS, METADATA_MAX_BYTES, METADATA_MAX_KEYS
from videoimport_api.domain.validation import (
    CONTEXT_MAX_BYTES,
    MAX_EXTERNAL_ID,
    MAX_FILE_NAME,
    MAX_SYSTEM_NAME,
    MAX_URL,
)
from videoimport_api.openapi_media import MediaVideo

# No C0 control character and no DEL (``json_limits.identity_problem``).
IDENTITY_PATTERN = "^[^\\x00-\\x1f\\x7f]*$"
NOT_BLANK = "Not empty and not only whitespace; no control character, no lone surrogate."
TIMESTAMP_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"

FAILURE_CODE_NAMES = ", ".join(f"`{code}`" for code in sorted(FAILURE_CODES))

Timestamp = Annotated[
    str, Meta(pattern=TIMESTAMP_PATTERN, description="UTC, `YYYY-MM-DD HH:MM:SS`.")
]
SystemName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_SYSTEM_NAME,
        pattern=IDENTITY_PATTERN,
        description=f"The source system; with `id` it identifies a video. {NOT_BLANK}",
    ),
]
HttpUrl = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_URL,
        extra_json_schema={"format": "uri"},
        description=(
            "An absolute http or https URL: no whitespace or control character; the host "
            "an IPv4 address, a bracketed IPv6 address or a valid (IDNA 2008) DNS name. "
            "An IP literal of a non-public address is refused (`forbidden address`) unless "
            "the deployment allows private URLs."
        ),
    ),
]
MetadataKey = Annotated[str, Meta(min_length=1, max_length=MAX_KEY_CHARS)]


class VideoRequest(msgspec.Struct, kw_only=True, rename="camel"):
    url: HttpUrl
    id: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_EXTERNAL_ID,
            pattern=IDENTITY_PATTERN,
            description=(
                "The video's id in the source system, compared exactly as sent; unique within "
                f"the request. {NOT_BLANK}"
            ),
        ),
    ]
    file_name: Annotated[
        str,
        Meta(
            min_length=1, max_length=MAX_FILE_NAME, pattern=IDENTITY_PATTERN, description=NOT_BLANK
        ),
    ]
    metadata: Annotated[
        dict[MetadataKey, Any],
        Meta(
            max_length=METADATA_MAX_KEYS,
            description=(
                f"Checked against the project's metadata fields by the importer (a misfit fails "
                f"only this video). At most {METADATA_MAX_BYTES} bytes as compact JSON, "
                f"{METADATA_MAX_KEYS} top-level keys, 100 keys in a nested object, nesting 8 "
                "objects/arrays deep; keys 1 to 255 characters without control characters; "
                "string values without control characters other than tab, LF and CR."
            ),
        ),
    ]


class ImportRequest(msgspec.Struct, kw_only=True, rename="camel"):
    system_name: SystemName
    videos: Annotated[
        list[VideoRequest],
        Meta(
            min_length=1,
            description="The videos, imported in this order. `maxItems` is this deployment's "
            "batch limit.",
        ),
    ]
    webhook: HttpUrl | None = None
    context: (
        Annotated[
            dict[str, Any],
            Meta(
                description=(
                    f"Returned as it is in the webhook. At most {CONTEXT_MAX_BYTES} bytes as "
                    "JSON, nesting 8 objects/arrays deep; no control characters in keys, none "
                    "but tab, LF and CR in string values."
                )
            ),
        ]
        | None
    ) = None


class ImportAccepted(msgspec.Struct, kw_only=True):
    id: Annotated[str, Meta(description="The job id.")]


Action = Literal["create", "update", "skip", "fail"]


class DryRunVideo(msgspec.Struct, kw_only=True, rename="camel"):
    index: int
    system_name: str
    external_id: str
    action: Action
    download: Annotated[bool, Meta(description="Whether an import would download the video.")]
    code: str | None
    reason: str | None


class DryRunSummary(msgspec.Struct, kw_only=True):
    create: int
    update: int
    skip: int
    fail: int


class DryRunResult(msgspec.Struct, kw_only=True, rename="camel"):
    dry_run: Literal[True]
    videos: list[DryRunVideo]
    summary: DryRunSummary


class Counts(msgspec.Struct, kw_only=True):
    total: int
    success: int
    skipped: int
    failed: int


Phase = Annotated[VideoPhase, Meta(description="Only in a paged status.")]


class VideoStarted(msgspec.Struct, kw_only=True, rename="camel", tag_field="state", tag="started"):
    """A video without a result yet (listed only in a paged status of a running job)."""

    system_name: str
    external_id: str
    phase: Phase | UnsetType = UNSET
    bytes_downloaded: (
        Annotated[int, Meta(ge=0, description="While downloading or storing.")] | UnsetType
    ) = UNSET
    bytes_total: Annotated[int, Meta(ge=0)] | UnsetType | None = UNSET


class VideoSuccess(msgspec.Struct, kw_only=True, rename="camel", tag_field="state", tag="success"):
    system_name: str
    external_id: str
    video: MediaVideo
    phase: Phase | UnsetType = UNSET


class VideoSkipped(msgspec.Struct, kw_only=True, rename="camel", tag_field="state", tag="skipped"):
    reason: str
    code: str
    system_name: str
    external_id: str
    video: MediaVideo
    phase: Phase | UnsetType = UNSET


class VideoFailed(msgspec.Struct, kw_only=True, rename="camel", tag_field="state", tag="failed"):
    reason: str
    code: Annotated[str, Meta(description=f"Why, for machines: {FAILURE_CODE_NAMES}.")]
    system_name: str
    external_id: str
    phase: Phase | UnsetType = UNSET


Video = VideoStarted | VideoSuccess | VideoSkipped | VideoFailed

NextCursor = Annotated[
    str | None,
    Meta(description="Pass as `cursor` for the next page; null on the last page."),
]


class Webhook(msgspec.Struct, kw_only=True, rename="camel"):
    state: WebhookState
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: Timestamp | None
    delivered_at: Timestamp | None


class StatusStarted(msgspec.Struct, kw_only=True, rename="camel"):
    """A running job. `videos` and `nextCursor` only in a paged status."""

    finished: Literal[False]
    state: Literal["started"]
    id: str
    started_at: Timestamp
    progress: Counts
    videos: list[Video] | UnsetType = UNSET
    next_cursor: NextCursor | UnsetType = UNSET


class StatusFinished(msgspec.Struct, kw_only=True, rename="camel"):
    """A finished job; `webhook` when it has one, `nextCursor` only in a paged status."""

    finished: Literal[True]
    state: JobState
    id: str
    started_at: Timestamp
    overview: Counts
    videos: list[Video]
    finished_at: Timestamp | UnsetType = UNSET
    webhook: Webhook | UnsetType = UNSET
    next_cursor: NextCursor | UnsetType = UNSET


class JobSummary(msgspec.Struct, kw_only=True, rename="camel"):
    id: str
    state: JobStatus
    finished: bool
    system_name: str
    started_at: Timestamp
    finished_at: Timestamp | None
    progress: Counts


class JobList(msgspec.Struct, kw_only=True, rename="camel"):
    jobs: list[JobSummary]
    next_cursor: NextCursor


class JobAccepted(msgspec.Struct, kw_only=True):
    id: str


class RetryStarted(msgspec.Struct, kw_only=True, rename="camel"):
    id: Annotated[str, Meta(description="The new job.")]
    retry_of: Annotated[str, Meta(description="The finished job whose failed videos it retries.")]
    videos: Annotated[int, Meta(ge=1)]


class CancelAccepted(msgspec.Struct, kw_only=True):
    id: str
    cancelled: Annotated[int, Meta(ge=0, description="Videos failed as `cancelled`.")]


class Liveness(msgspec.Struct, kw_only=True):
    status: Literal["ok"]


class Readiness(msgspec.Struct, kw_only=True):
    status: Literal["ok", "unavailable"]
    checks: Annotated[
        dict[str, Literal["up", "down"]],
        Meta(description="Per dependency (`postgres`, `s3` when media is served)."),
    ]


class LegacyReadiness(msgspec.Struct, kw_only=True):
    status: Literal["ok", "unavailable"]
