"""What the stored file says reaches the status: the contract's example results,
through the projector's row and the API's rendering, add the probed fields and
``posterUrl``; a result recorded before files were probed keeps the contract's shape."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from videoimport_api.domain import status
from videoimport_api.domain.media_links import MediaLinks, parse_key
from videoimport_events import MediaInfo, VideoImported, VideoImportSkipped, decode_envelope
from videoimport_projector import domain as projector

EXAMPLES = Path(__file__).parents[2] / "libs" / "events" / "examples"
BASE = "https://media.example.com/media"
T0 = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
API_FIELDS = frozenset(status.VideoRow.__struct_fields__)


def example(name: str) -> VideoImported | VideoImportSkipped:
    event = decode_envelope((EXAMPLES / name).read_bytes()).data
    assert isinstance(event, VideoImported | VideoImportSkipped)
    return event


def read_back(row: projector.VideoRow, link_expired: bool = False) -> status.VideoRow:
    """The projector's row as the API reads it back: the shared columns, the media info
    through its JSON column."""
    fields = {k: v for k, v in msgspec.structs.asdict(row).items() if k in API_FIELDS}
    if row.media_info is not None:
        stored = msgspec.json.encode(row.media_info)
        fields["media_info"] = msgspec.json.decode(stored, type=MediaInfo)
    return status.VideoRow(**fields, link_expired=link_expired)


def link(key: str) -> str:
    return status.original_url(BASE, key)


def rendered(event: VideoImported | VideoImportSkipped, link_expired: bool = False) -> Any:
    row = projector.video_row(event)
    assert row is not None
    return status.render_video(read_back(row, link_expired), link)


def test_a_probed_import_shows_what_the_file_says_and_its_poster() -> None:
    event = example("VideoImported/created-probed-with-poster.json")
    video = rendered(event)["video"]
    assert video == {
        "mediaId": event.media_id,
        "originalUrl": link(event.storage_key),
        "mimeType": "video/webm",
        "duration": 12.48,
        "width": 1920,
        "height": 1080,
        "frameRate": 29.97,
        "videoCodec": "vp9",
        "audioCodec": "opus",
        "bitRate": 2412000,
        "container": "webm",
        "size": event.size,
        "sha256": event.sha256,
        "posterUrl": link(event.storage_key.removesuffix(".webm") + ".poster.jpg"),
    }
    # The contract's three fields first, in its order.
    assert list(video)[:3] == ["mediaId", "originalUrl", "mimeType"]


def test_a_probed_skip_shows_them_too_and_a_silent_file_has_a_null_audio_codec() -> None:
    document = rendered(example("VideoImportSkipped/already-exists-probed-silent.json"))
    assert document["state"] == "skipped" and document["code"] == "already_exists"
    video = document["video"]
    assert (video["container"], video["width"], video["height"]) == ("mov", 640, 360)
    assert video["audioCodec"] is None and video["frameRate"] is None
    assert video["bitRate"] is None
    assert video["posterUrl"].endswith(".poster.jpg")


@pytest.mark.parametrize(
    "name", ["VideoImported/created-after-download.json", "VideoImportSkipped/already-exists.json"]
)
def test_a_result_recorded_before_probing_keeps_the_contracts_shape(name: str) -> None:
    event = example(name)
    assert event.media_info is None
    assert rendered(event)["video"] == {
        "mediaId": event.media_id,
        "originalUrl": link(event.storage_key),
        "mimeType": event.mime_type,
    }


def test_a_probed_file_without_a_poster_has_a_null_poster_url() -> None:
    event = msgspec.structs.replace(
        example("VideoImported/created-probed-with-poster.json"), poster_key=None
    )
    video = rendered(event)["video"]
    assert video["posterUrl"] is None and video["duration"] == 12.48


def test_deleted_objects_lose_both_links_but_keep_what_the_file_said() -> None:
    event = example("VideoImported/created-probed-with-poster.json")
    video = rendered(event, link_expired=True)["video"]
    assert video["originalUrl"] is None and video["posterUrl"] is None
    assert video["linkExpired"] is True and video["width"] == 1920


def test_the_paged_status_shows_the_same_video_object() -> None:
    row = projector.video_row(example("VideoImported/created-probed-with-poster.json"))
    assert row is not None
    video = read_back(row)
    job = status.JobRow(job_id="j", state="success", video_count=1, started_at=T0, success=1)
    paged = status.render_paged_status(job, [video], {}, link, None)
    assert paged["videos"][0]["video"] == status.render_video(video, link)["video"]
    assert paged["videos"][0]["phase"] == "done"


def test_the_poster_link_is_signed_like_the_original_and_served_as_a_jpeg() -> None:
    links = MediaLinks(secret=b"k" * 32, ttl_seconds=60, base_url=BASE)
    poster_key = "demo/m4xq7c2kdaw3hz5tb6ne/5b1f0c7e-2d55-4c3b-9a51-7d0f6f0f2a11.poster.jpg"
    url = links.url(poster_key, 1000.0)
    assert url.startswith(f"{BASE}/{poster_key}?expires=1060&signature=")
    signature = url.rpartition("signature=")[2]
    assert links.problem(poster_key, "1060", signature, 1000.0) is None
    assert links.local_url(poster_key, 1000.0) == url.replace(BASE, "/media")
    key = parse_key(poster_key)
    assert key is not None and key.content_type == "image/jpeg"
    assert key.content_disposition.endswith('.poster.jpg"')
    video_key = parse_key(poster_key.removesuffix(".poster.jpg") + ".mp4")
    assert video_key is not None and video_key.content_type is None
    # Only the poster's own suffix is a second dot.
    assert parse_key(poster_key.removesuffix(".jpg") + ".png") is None
    assert parse_key(poster_key.replace(".poster", ".thumb")) is None
