"""The uploads ledger's pure decisions: which write a commit keeps, and how an
entry is settled (or left alone while someone may still write it)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from videoimport_events import VideoImportRequested
from videoimport_ingester import domain
from videoimport_projects import media_decision


def entry(**changes: Any) -> domain.UnsettledUpload:
    values: dict[str, Any] = {
        "entry_id": 7,
        "request_id": "ev-1",
        "storage_key": "news/m1/ev-1.mp4",
        "upload_id": None,
        "handled": False,
        "leased": False,
        "referenced": False,
    }
    values.update(changes)
    return domain.UnsettledUpload(**values)


REQUEST = VideoImportRequested(
    job_id="abcdefgh2345",
    project="news",
    index=0,
    system_name="archive",
    external_id="a",
    url="https://videos.example/a.mp4",
    file_name="a",
    metadata={"title": "t"},
)
STORED = domain.StoredObject(
    storage_key="news/m1/ev-1.mp4", mime_type="video/mp4", size=9, sha256="ab" * 32, upload_id="u1"
)
DOWNLOAD = media_decision.Download(media_id="m1", outcome="created")


def test_a_registered_download_and_its_poster_are_the_kept_writes() -> None:
    resolution = domain.resolve(REQUEST, DOWNLOAD, STORED)
    video = domain.KeptWrite(storage_key="news/m1/ev-1.mp4", upload_id="u1")
    assert domain.kept_writes(resolution, STORED) == [video]
    with_poster = msgspec.structs.replace(STORED, poster_key="news/m1/ev-1.poster.jpg")
    resolution = domain.resolve(REQUEST, DOWNLOAD, with_poster)
    assert domain.kept_writes(resolution, with_poster) == [
        video,
        domain.KeptWrite(storage_key="news/m1/ev-1.poster.jpg"),
    ]


def test_nothing_is_kept_when_the_result_registers_no_object_of_this_request() -> None:
    failed = domain.failed(REQUEST, "download_failed", "download failed: HTTP 404")
    assert domain.kept_writes(failed, STORED) == []
    assert domain.kept_writes(failed, None) == []
    # An update in place registers the object an earlier request stored.
    existing = domain.resolve(REQUEST, DOWNLOAD, STORED).record
    assert existing is not None
    earlier = media_decision.UpdateInPlace(
        record=msgspec.structs.replace(existing, storage_key="news/m1/old.mp4")
    )
    assert domain.kept_writes(domain.resolve(REQUEST, earlier), STORED) == []


@pytest.mark.parametrize("leased", [False, True])
def test_a_handled_request_settles_every_entry_whoever_leases_it(leased: bool) -> None:
    unreferenced = entry(handled=True, leased=leased, upload_id="u1")
    assert domain.cleanup_for(unreferenced) == domain.Cleanup(
        abort_upload="u1", delete_object=True, forget=True
    )
    # The object the registry (or superseded_objects) points at stays; an
    # upload of the same key is still aborted.
    referenced = entry(handled=True, leased=leased, upload_id="u2", referenced=True)
    assert domain.cleanup_for(referenced) == domain.Cleanup(
        abort_upload="u2", delete_object=False, forget=True
    )
    put = entry(handled=True, leased=leased)
    assert domain.cleanup_for(put) == domain.Cleanup(
        abort_upload=None, delete_object=True, forget=True
    )


def test_a_live_lease_is_never_touched() -> None:
    assert domain.cleanup_for(entry(leased=True, upload_id="u1")) is None
    assert domain.cleanup_for(entry(leased=True)) is None


def test_an_unhandled_request_whose_lease_ran_out_only_loses_its_upload() -> None:
    # A retry may still register the key: the object is the commit's to judge.
    assert domain.cleanup_for(entry(upload_id="u1")) == domain.Cleanup(
        abort_upload="u1", delete_object=False, forget=False
    )
    # Nothing to abort: left for the request's commit.
    assert domain.cleanup_for(entry()) is None
    assert domain.cleanup_for(entry(referenced=True)) is None
