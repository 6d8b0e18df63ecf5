"""The operator pages' pure parts: the progress bar, phases, page contexts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from videoimport_api.domain.listing import ListedJob
from videoimport_api.ui import pages
from videoimport_api.ui.pages import JobPage, TimelineEntry, VideoLine, WebhookAttempt

T0 = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def job(job_id: str = "p2k7w9x4c3md", started_at: datetime = T0, **counts: int) -> ListedJob:
    return ListedJob(
        job_id=job_id, system_name="archive", state="started", video_count=4, started_at=started_at,
        **counts,
    )  # fmt: skip


def test_the_progress_bar_stacks_results_then_pending() -> None:
    segments = pages.progress_segments(4, success=1, skipped=0, failed=1)
    assert [(s.kind, s.x, s.width, s.count) for s in segments] == [
        ("success", 0.0, 25.0, 1),
        ("failed", 25.0, 25.0, 1),
        ("pending", 50.0, 50.0, 2),
    ]
    assert pages.progress_segments(0, 0, 0, 0) == []
    # More results than videos (an inconsistent row) still fits the bar.
    assert sum(s.width for s in pages.progress_segments(1, 2, 0, 0)) == pages.PROGRESS_WIDTH


@pytest.mark.parametrize(
    ("video", "text"),
    [
        (VideoLine(idx=0, system_name="s", external_id="e", state="failed"), "done"),
        (VideoLine(idx=0, system_name="s", external_id="e"), "queued"),
        (
            VideoLine(idx=0, system_name="s", external_id="e", phase="downloading",
                      bytes_done=1536, bytes_total=3 * 1024 * 1024),
            "downloading 1.5 KiB of 3.0 MiB",
        ),
        (
            VideoLine(idx=0, system_name="s", external_id="e", phase="storing", bytes_done=10),
            "storing 10 B",
        ),
        (VideoLine(idx=0, system_name="s", external_id="e", phase="bogus"), "queued"),
    ],
)  # fmt: skip
def test_a_video_shows_where_it_is(video: VideoLine, text: str) -> None:
    assert pages.phase_text(video) == text


def test_a_job_page_context_renders_times_and_attempts() -> None:
    page = JobPage(
        job=job(success=1, failed=1),
        videos=[VideoLine(idx=0, system_name="s", external_id="a", state="failed", code="timeout")],
        webhook_attempts=[
            WebhookAttempt(position=7, occurred_at=T0, delivered=False, attempt=1, error="503")
        ],
        timeline=[TimelineEntry(position=1, occurred_at=T0, event_type="ImportRequested",
                                stream_id="job-p2k7w9x4c3md")],
        timeline_truncated=False,
    )  # fmt: skip
    context = pages.job_context("newsroom", page, 2000, lambda key: f"/media/{key}")
    assert context["job"]["started_at"] == "2026-11-28 09:30:00"
    assert context["job"]["finished"] is False and context["job"]["finished_at"] == ""
    assert context["videos"][0] == {
        "index": 0, "system_name": "s", "external_id": "a", "state": "failed", "phase": "done",
        "code": "timeout", "reason": "", "media_id": "", "duration": "", "dimensions": "",
        "poster": None,
    }  # fmt: skip
    assert context["attempts"] == [
        {"attempt": 1, "result": "failed", "status": "", "error": "503",
         "time": "2026-11-28 09:30:00"}
    ]  # fmt: skip
    assert context["timeline"][0]["type"] == "ImportRequested"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, ""), (0.0, "0.0 s"), (4.25, "4.2 s"), (59.94, "59.9 s"), (65.4, "1:05"),
     (3725.0, "1:02:05")],
)  # fmt: skip
def test_a_duration_reads_as_seconds_or_a_clock(seconds: float | None, text: str) -> None:
    assert pages.human_duration(seconds) == text


def test_a_poster_is_linked_unless_there_is_none_or_the_objects_were_deleted() -> None:
    def line(**fields: object) -> VideoLine:
        return VideoLine(idx=0, system_name="s", external_id="e", state="success", **fields)  # type: ignore[arg-type]

    page = JobPage(
        job=job(success=3),
        videos=[line(poster_key="k.poster.jpg", width=1920, height=1080), line(),
                line(poster_key="k.poster.jpg", link_expired=True)],
        webhook_attempts=[], timeline=[], timeline_truncated=False,
    )  # fmt: skip
    videos = pages.job_context("p", page, 2000, lambda key: f"/media/{key}")["videos"]
    assert [v["poster"] for v in videos] == ["/media/k.poster.jpg", None, None]
    assert [v["dimensions"] for v in videos] == ["1920x1080", "", ""]
