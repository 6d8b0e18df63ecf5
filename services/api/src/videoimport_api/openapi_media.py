"""The ``video`` object of a success or skipped result, for the OpenAPI document.

The contract's three fields, then what this service adds: ``linkExpired`` once the
object was deleted, and the probed file's fields, all of them present or none (a
result recorded before files were probed has none).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

PROBED = "Present, with the other probed fields, only when the file was probed."


class MediaVideo(msgspec.Struct, kw_only=True, rename="camel"):
    media_id: str
    original_url: Annotated[
        str | None,
        Meta(
            description="A signed link, valid for the deployment's link lifetime; null once "
            "a later re-import superseded and deleted the object."
        ),
    ]
    mime_type: str
    link_expired: Literal[True] | UnsetType = UNSET
    duration: Annotated[float, Meta(ge=0, description=f"Seconds. {PROBED}")] | UnsetType = UNSET
    width: Annotated[int, Meta(ge=0, description=f"Pixels. {PROBED}")] | UnsetType = UNSET
    height: Annotated[int, Meta(ge=0, description=f"Pixels. {PROBED}")] | UnsetType = UNSET
    frame_rate: (
        Annotated[
            float | None,
            Meta(description=f"Frames per second; null when the file does not say. {PROBED}"),
        ]
        | UnsetType
    ) = UNSET
    video_codec: (
        Annotated[str, Meta(description=f"`h264`, `vp9`, `av1`, `hevc`, … {PROBED}")] | UnsetType
    ) = UNSET
    audio_codec: (
        Annotated[
            str | None,
            Meta(description=f"`aac`, `opus`, …; null when the file has no audio. {PROBED}"),
        ]
        | UnsetType
    ) = UNSET
    bit_rate: (
        Annotated[
            int | None,
            Meta(description=f"Bits per second; null when the file does not say. {PROBED}"),
        ]
        | UnsetType
    ) = UNSET
    container: (
        Annotated[str, Meta(description=f"`mp4`, `mov`, `webm`, `matroska`, … {PROBED}")]
        | UnsetType
    ) = UNSET
    size: Annotated[int, Meta(ge=0, description=f"Bytes stored. {PROBED}")] | UnsetType = UNSET
    sha256: (
        Annotated[
            str,
            Meta(pattern="^[0-9a-f]{64}$", description=f"Of the stored bytes, hex. {PROBED}"),
        ]
        | UnsetType
    ) = UNSET
    poster_url: (
        Annotated[
            str | None,
            Meta(
                description="A signed link to a JPEG frame of the video, like `originalUrl`; "
                f"null when no poster was made or the objects were deleted. {PROBED}"
            ),
        ]
        | UnsetType
    ) = UNSET
