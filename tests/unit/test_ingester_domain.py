"""The pure create/update/skip/fail decision and the events it resolves to."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from videoimport_events import (
    MAX_REASON_BYTES,
    VideoImported,
    VideoImportFailed,
    VideoImportRequested,
)
from videoimport_events import VideoImportSkipped as Skipped
from videoimport_ingester import domain
from videoimport_projects import MetadataField, ProjectConfig, media_decision

CONFIG = ProjectConfig(
    metadata=[
        MetadataField(handle="title", type="text", required=True, maxLength=50),
        MetadataField(handle="credit", type="text"),
    ]
)


def request(**changes: Any) -> VideoImportRequested:
    values: dict[str, Any] = {
        "job_id": "abcdefgh2345",
        "project": "news",
        "index": 2,
        "system_name": "archive",
        "external_id": "123abc",
        "url": "https://videos.example/a.mp4",
        "file_name": "sample",
        "metadata": {"title": "sample video", "credit": "LC"},
    }
    values.update(changes)
    return VideoImportRequested(**values)


def registered(**changes: Any) -> media_decision.MediaRecord:
    values: dict[str, Any] = {
        "project": "news",
        "system_name": "archive",
        "external_id": "123abc",
        "media_id": media_decision.media_id_for("news", "archive", "123abc"),
        "url": "https://videos.example/a.mp4",
        "file_name": "sample",
        "metadata": {"title": "sample video", "credit": "LC"},
        "mime_type": "video/mp4",
        "storage_key": "news/xyz/old.mp4",
        "size": 1234,
        "sha256": "ab" * 32,
    }
    values.update(changes)
    return media_decision.MediaRecord(**values)


ANY_METADATA = ProjectConfig(metadata=[], allow_unknown_metadata=True)

STORED = domain.StoredObject(
    storage_key="news/xyz/new.mp4", mime_type="video/mp4", size=99, sha256="cd" * 32
)


def test_media_id_is_deterministic_and_distinct() -> None:
    first = media_decision.media_id_for("news", "archive", "123abc")
    assert first == media_decision.media_id_for("news", "archive", "123abc")
    assert len(first) == 20 and first == first.lower()
    assert set(first) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert first != media_decision.media_id_for("news", "archive", "123abd")
    assert first != media_decision.media_id_for("sport", "archive", "123abc")
    # The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert media_decision.media_id_for("p", "ab", "c") != media_decision.media_id_for(
        "p", "a", "bc"
    )


def test_storage_key_and_stream() -> None:
    assert domain.storage_key("news", "m1", "ev-1", ".webm") == "news/m1/ev-1.webm"
    assert domain.stream_id("abcdefgh2345", 2) == "job-abcdefgh2345/video-2"


def test_the_deletion_of_one_key_has_one_stream() -> None:
    first = domain.deleted_stream_id("m1", "news/m1/ev-1.mp4")
    assert first == domain.deleted_stream_id("m1", "news/m1/ev-1.mp4")
    assert first.startswith("media-m1/deleted-")
    assert first != domain.deleted_stream_id("m1", "news/m1/ev-2.mp4")


def test_new_video_is_downloaded_and_created() -> None:
    decision = media_decision.decide(request(), CONFIG, None)
    assert decision == media_decision.Download(
        media_id=media_decision.media_id_for("news", "archive", "123abc"), outcome="created"
    )
    resolution = domain.resolve(request(), decision, STORED)
    event = resolution.event
    assert isinstance(event, VideoImported)
    assert (event.outcome, event.downloaded) == ("created", True)
    assert event.storage_key == STORED.storage_key and event.sha256 == STORED.sha256
    assert resolution.record is not None
    assert resolution.record.url == request().url
    assert resolution.record.media_id == event.media_id


def test_new_url_downloads_again_and_keeps_the_media_id() -> None:
    existing = registered(media_id="keptmediaid000000000")
    decision = media_decision.decide(request(url="https://videos.example/b.mp4"), CONFIG, existing)
    assert decision == media_decision.Download(media_id="keptmediaid000000000", outcome="updated")
    event = domain.resolve(request(url="https://videos.example/b.mp4"), decision, STORED).event
    assert isinstance(event, VideoImported)
    assert (event.media_id, event.outcome, event.downloaded) == (
        "keptmediaid000000000",
        "updated",
        True,
    )


def test_unchanged_video_is_skipped_with_the_existing_media() -> None:
    existing = registered()
    decision = media_decision.decide(request(), CONFIG, existing)
    assert decision == media_decision.Skip(existing=existing)
    resolution = domain.resolve(request(), decision)
    event = resolution.event
    assert isinstance(event, Skipped)
    assert event.reason == "already exists"
    assert (event.media_id, event.storage_key, event.mime_type) == (
        existing.media_id,
        existing.storage_key,
        existing.mime_type,
    )
    assert resolution.record is None


@pytest.mark.parametrize(
    "change",
    [{"file_name": "renamed"}, {"metadata": {"title": "new title", "credit": "LC"}}],
)
def test_same_url_with_new_file_name_or_metadata_updates_without_download(
    change: dict[str, Any],
) -> None:
    existing = registered()
    decision = media_decision.decide(request(**change), CONFIG, existing)
    assert isinstance(decision, media_decision.UpdateInPlace)
    resolution = domain.resolve(request(**change), decision)
    event = resolution.event
    assert isinstance(event, VideoImported)
    assert (event.outcome, event.downloaded) == ("updated", False)
    assert event.storage_key == existing.storage_key  # the stored bytes are kept
    assert resolution.record == msgspec.structs.replace(existing, **change)


def test_metadata_misfit_fails_with_every_reason() -> None:
    bad = request(metadata={"credit": 5, "extra": "x"})
    decision = media_decision.decide(bad, CONFIG, registered())
    assert decision == media_decision.Fail(
        code="invalid_metadata",
        reason="metadata.title: required; metadata.credit: must be a string;"
        " metadata.extra: not in the project's metadata config",
    )
    event = domain.resolve(bad, decision).event
    assert isinstance(event, VideoImportFailed)
    assert event.code == "invalid_metadata"
    assert event.reason.startswith("metadata.title: required")


def test_unknown_project_fails() -> None:
    decision = media_decision.decide(request(), None, None)
    assert isinstance(decision, media_decision.Fail)
    assert decision.code == "unknown_project"


def test_a_download_resolves_only_with_the_stored_object() -> None:
    decision = media_decision.decide(request(), CONFIG, None)
    with pytest.raises(ValueError, match="stored object"):
        domain.resolve(request(), decision)


def test_failed_carries_the_video_identity() -> None:
    event = domain.failed(request(), "too_large", "too large").event
    assert isinstance(event, VideoImportFailed)
    assert (event.job_id, event.index, event.external_id) == ("abcdefgh2345", 2, "123abc")


def test_media_id_needs_no_separator_to_tell_identities_apart() -> None:
    # With a \x1f separator these two met; the JSON encoding escapes it.
    assert media_decision.media_id_for("a", "b\x1fc", "x") != media_decision.media_id_for(
        "a\x1fb", "c", "x"
    )
    assert media_decision.media_id_for("p", "a", "b\x1fc") != media_decision.media_id_for(
        "p", "a\x1fb", "c"
    )
    assert media_decision.media_id_for("a", "b/c", "d") != media_decision.media_id_for(
        "a/b", "c", "d"
    )
    assert media_decision.identity("a", "b\x1fc", "x") == '["a","b\\u001fc","x"]'


def test_a_registered_video_keeps_its_stored_media_id() -> None:
    # Rows of an earlier release hold ids derived another way: the row decides.
    existing = registered(media_id="oldstyleid0000000000", url="https://videos.example/old.mp4")
    decision = media_decision.decide(request(), CONFIG, existing)
    assert decision == media_decision.Download(media_id="oldstyleid0000000000", outcome="updated")


def test_metadata_is_compared_as_typed_json() -> None:
    # Python says {"n": 1} == {"n": True}; as stored they differ: an update.
    existing = registered(metadata={"n": 1})
    changed = media_decision.decide(request(metadata={"n": True}), ANY_METADATA, existing)
    assert isinstance(changed, media_decision.UpdateInPlace)
    assert changed.record.metadata == {"n": True}
    for before, after in (({"n": 1}, {"n": 1.0}), ({"n": 0}, {"n": False}), ({"n": 1}, {"n": "1"})):
        decision = media_decision.decide(
            request(metadata=after), ANY_METADATA, registered(metadata=before)
        )
        assert isinstance(decision, media_decision.UpdateInPlace), (before, after)
    # Key order is no change at all, nested too.
    existing = registered(metadata={"a": 1, "b": 2, "c": {"x": [1, True], "y": None}})
    same = media_decision.decide(
        request(metadata={"c": {"y": None, "x": [1, True]}, "b": 2, "a": 1}), ANY_METADATA, existing
    )
    assert same == media_decision.Skip(existing=existing)


def test_metadata_key_order_alone_is_a_skip() -> None:
    existing = registered(metadata={"title": "t", "credit": "c"})
    decision = media_decision.decide(
        request(metadata={"credit": "c", "title": "t"}), CONFIG, existing
    )
    assert decision == media_decision.Skip(existing=existing)


def test_same_record_compares_typed_json() -> None:
    assert media_decision.same_record(None, None)
    assert not media_decision.same_record(registered(), None)
    assert media_decision.same_record(
        registered(metadata={"a": 1, "b": 2}), registered(metadata={"b": 2, "a": 1})
    )
    assert not media_decision.same_record(
        registered(metadata={"a": 1}), registered(metadata={"a": True})
    )


def test_failure_reasons_are_bounded() -> None:
    config = ProjectConfig(
        metadata=[
            MetadataField(handle=f"a_rather_long_field_handle_{i:04d}", type="text", required=True)
            for i in range(300)
        ]
    )
    decision = media_decision.decide(request(metadata={}), config, None)
    assert isinstance(decision, media_decision.Fail)
    assert decision.code == "invalid_metadata"
    assert len(decision.reason.encode()) <= MAX_REASON_BYTES
    assert decision.reason.endswith("…")
    event = domain.failed(request(), "download_failed", "x" * 10_000).event
    assert isinstance(event, VideoImportFailed)
    assert len(event.reason.encode()) <= MAX_REASON_BYTES
