"""The dry run's answer: the shared decision, then what the source's probe said (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from videoimport_api.domain import dry_run
from videoimport_api.domain.dry_run import NotProbed, ProbeFailed, SourceAnswer
from videoimport_api.domain.validation import ImportCommand, VideoSpec
from videoimport_projects import MetadataField, ProjectConfig
from videoimport_projects.media_decision import MediaRecord, media_id_for

CONFIG = ProjectConfig(metadata=[MetadataField(handle="title", type="text", required=True)])
MAX_BYTES = 1000
MP4_HEAD = (Path(__file__).parents[1] / "fixtures" / "sample.mp4").read_bytes()[:4096]
VIDEO = SourceAnswer(content_type="video/mp4", size=500, head=MP4_HEAD)


def command(*videos: dict[str, Any]) -> ImportCommand:
    specs = [
        VideoSpec(
            url=v.get("url", f"https://videos.example/{i}.mp4"),
            external_id=v.get("id", f"ext-{i}"),
            file_name=v.get("fileName", f"Video {i}"),
            metadata=v.get("metadata", {"title": f"Title {i}"}),
        )
        for i, v in enumerate(videos)
    ]
    return ImportCommand(system_name="archive", videos=tuple(specs))


def registered(external_id: str, **changes: Any) -> MediaRecord:
    values: dict[str, Any] = {
        "project": "news",
        "system_name": "archive",
        "external_id": external_id,
        "media_id": media_id_for("news", "archive", external_id),
        "url": "https://videos.example/0.mp4",
        "file_name": "Video 0",
        "metadata": {"title": "Title 0"},
        "mime_type": "video/mp4",
        "storage_key": "news/x/y.mp4",
        "size": 10,
        "sha256": "0" * 64,
        **changes,
    }
    return MediaRecord(**values)


def answer(
    cmd: ImportCommand,
    probes: dict[str, Any],
    rows: dict[str, MediaRecord] | None = None,
    config: ProjectConfig | None = CONFIG,
) -> dict[str, Any]:
    videos = dry_run.requested_videos("news", cmd)
    decided = dry_run.decisions(videos, config, rows or {})
    return dry_run.dry_run_answer(videos, decided, probes, MAX_BYTES)


def test_each_decision_becomes_an_action_and_the_summary_counts_them() -> None:
    cmd = command(
        {},  # registered unchanged: skip
        {"fileName": "Renamed"},  # same url, new name: update without download
        {"url": "https://videos.example/moved.mp4"},  # new url: update with download
        {},  # not registered: create
        {"metadata": {}},  # title missing: fail before any download
    )
    rows = {
        "ext-0": registered("ext-0"),
        "ext-1": registered("ext-1", url="https://videos.example/1.mp4", file_name="Old"),
        "ext-2": registered("ext-2", url="https://videos.example/2.mp4"),
    }
    probes = {"https://videos.example/moved.mp4": VIDEO, "https://videos.example/3.mp4": VIDEO}
    body = answer(cmd, probes, rows)
    assert body["dryRun"] is True
    assert [(v["action"], v["download"], v["code"]) for v in body["videos"]] == [
        ("skip", False, None),
        ("update", False, None),
        ("update", True, None),
        ("create", True, None),
        ("fail", False, "invalid_metadata"),
    ]
    assert body["videos"][0] == {
        "index": 0,
        "systemName": "archive",
        "externalId": "ext-0",
        "action": "skip",
        "download": False,
        "code": None,
        "reason": None,
    }
    assert "title" in body["videos"][4]["reason"]
    assert body["summary"] == {"create": 1, "update": 2, "skip": 1, "fail": 1}


def test_an_unknown_project_fails_every_video() -> None:
    body = answer(command({}, {}), {}, config=None)
    assert {(v["action"], v["code"]) for v in body["videos"]} == {("fail", "unknown_project")}


def test_only_the_distinct_urls_to_download_are_probed_in_batch_order() -> None:
    same = "https://videos.example/same.mp4"
    cmd = command({"url": same}, {}, {"url": same}, {"metadata": {}})
    videos = dry_run.requested_videos("news", cmd)
    decided = dry_run.decisions(videos, CONFIG, {})
    assert dry_run.urls_to_probe(videos, decided) == [same, "https://videos.example/1.mp4"]


@pytest.mark.parametrize(
    ("source", "code", "reason"),
    [
        (
            SourceAnswer(content_type="text/html; charset=utf-8", size=10, head=b"<html>"),
            "not_a_video",
            "not a video (text/html)",
        ),
        (
            SourceAnswer(content_type="video/mp4", size=MAX_BYTES + 1, head=MP4_HEAD),
            "too_large",
            f"too large: {MAX_BYTES + 1} bytes, the limit is {MAX_BYTES} bytes",
        ),
        (
            SourceAnswer(content_type=None, size=None, head=b"<!doctype html><p>hi"),
            "not_a_video",
            "not a video (text/html)",
        ),
        (
            SourceAnswer(content_type="video/mp4", size=None, head=b"<!doctype html>"),
            "not_a_video",
            "not a video (video/mp4 declared, content is text/html)",
        ),
        (SourceAnswer(content_type=None, size=0, head=b""), "not_a_video", "not a video (empty)"),
    ],
)
def test_the_source_is_judged_as_the_download_would(
    source: SourceAnswer, code: str, reason: str
) -> None:
    body = answer(command({}), {"https://videos.example/0.mp4": source})
    video = body["videos"][0]
    assert (video["action"], video["download"], video["code"], video["reason"]) == (
        "fail",
        True,
        code,
        reason,
    )


def test_headers_alone_pass_when_they_refuse_nothing() -> None:
    headers_only = SourceAnswer(content_type="application/octet-stream", size=5, head=None)
    assert dry_run.source_problem(headers_only, MAX_BYTES) is None
    assert dry_run.source_problem(VIDEO, MAX_BYTES) is None


def test_a_failed_probe_fails_the_video_with_its_code() -> None:
    failed = ProbeFailed(code="download_failed", reason="download failed: HTTP 404")
    body = answer(command({}), {"https://videos.example/0.mp4": failed})
    assert body["videos"][0]["code"] == "download_failed"
    assert body["videos"][0]["reason"] == "download failed: HTTP 404"
    assert body["summary"]["fail"] == 1


def test_an_unprobed_url_keeps_its_action_and_says_it_was_not_checked() -> None:
    unchecked = NotProbed(reason="not checked: out of time")
    rows = {"ext-1": registered("ext-1")}
    body = answer(
        command({}, {}),
        {u: unchecked for u in ("https://videos.example/0.mp4", "https://videos.example/1.mp4")},
        rows,
    )
    assert [(v["action"], v["code"], v["reason"]) for v in body["videos"]] == [
        ("create", None, "not checked: out of time"),
        ("update", None, "not checked: out of time"),
    ]


def test_a_download_without_a_probe_outcome_is_a_bug() -> None:
    with pytest.raises(ValueError, match="no probe outcome"):
        answer(command({}), {})
