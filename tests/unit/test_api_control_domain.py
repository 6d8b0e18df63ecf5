"""Retry and cancel decisions, and the paged status rendering (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from videoimport_api.domain import control, idempotency
from videoimport_api.domain.control import LoggedJob, OpenVideo
from videoimport_api.domain.status import JobRow, VideoProgress, VideoRow, render_paged_status
from videoimport_events import (
    ImportRequested,
    JobCancelled,
    VideoImportFailed,
    VideoImportRequested,
    cancellation_stream,
    video_stream,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REQUESTED = ImportRequested(
    job_id="job1",
    project="acme",
    system_name="archive",
    api_version="2025-03",
    video_count=3,
    webhook="https://hooks.example.com/in",
    context={"batch": 7},
)


def job(completed: bool = False, cancelled: bool = False) -> LoggedJob:
    return LoggedJob(requested=REQUESTED, completed=completed, cancelled=cancelled)


def request(index: int) -> VideoImportRequested:
    return VideoImportRequested(
        job_id="job1",
        project="acme",
        index=index,
        system_name="archive",
        external_id=f"ext-{index}",
        url=f"https://videos.example.com/{index}.mp4",
        file_name=f"file {index}",
        metadata={"title": f"t{index}", "nested": {"a": [index]}},
    )


OPEN = [
    OpenVideo(index=0, system_name="archive", external_id="ext-0"),
    OpenVideo(index=2, system_name="archive", external_id="ext-2"),
]


def test_cancel_fails_every_open_video_at_its_result_version_caused_by_the_cancellation() -> None:
    events = control.cancel_events(job(), OPEN, "api", NOW)
    first, *failures = events
    assert first.event == JobCancelled(
        job_id="job1", project="acme", requested_by="api", cancelled=2
    )
    assert (first.stream_id, first.stream_version) == (cancellation_stream("job1"), 0)
    assert first.correlation_id == "job1" and first.causation_id is None
    assert [(f.stream_id, f.stream_version) for f in failures] == [
        (video_stream("job1", 0), 1),
        (video_stream("job1", 2), 1),
    ]
    for failure, video in zip(failures, OPEN, strict=True):
        assert failure.event == VideoImportFailed(
            job_id="job1",
            project="acme",
            index=video.index,
            system_name="archive",
            external_id=video.external_id,
            reason="cancelled by the client",
            code="cancelled",
        )
        assert failure.causation_id == str(first.event_id)
        assert failure.correlation_id == "job1" and failure.project == "acme"
        assert failure.occurred_at == NOW


def test_cancel_is_refused_for_a_cancelled_finished_or_fully_resulted_job() -> None:
    assert control.cancel_refusal(job(), OPEN) is None
    refusals = {
        "cancelled": control.cancel_refusal(job(cancelled=True), []),
        "completed": control.cancel_refusal(job(completed=True), []),
        "no open video": control.cancel_refusal(job(), []),
    }
    for what, refusal in refusals.items():
        assert refusal is not None, what
        assert refusal.status == 409, what
        assert [d.field for d in refusal.details] == ["id"]
    assert refusals["cancelled"] is not None and "cancelled" in refusals["cancelled"].error
    assert refusals["completed"] is not None and "finished" in refusals["completed"].error


def test_retry_needs_a_finished_job_with_failures() -> None:
    assert control.retry_refusal(job(completed=True), [request(1)]) is None
    not_finished = control.retry_refusal(job(), [request(1)])
    nothing_failed = control.retry_refusal(job(completed=True), [])
    assert not_finished is not None and not_finished.status == 409
    assert "not finished" in not_finished.error
    assert nothing_failed is not None and nothing_failed.status == 409
    assert "no failed videos" in nothing_failed.error


def test_the_retry_command_repeats_the_original_requests_in_order() -> None:
    command = control.retry_command(REQUESTED, [request(2), request(0)])
    assert command.system_name == "archive"
    assert command.webhook == REQUESTED.webhook and command.context == {"batch": 7}
    assert [v.external_id for v in command.videos] == ["ext-0", "ext-2"]
    first = command.videos[0]
    assert (first.url, first.file_name, first.metadata) == (
        "https://videos.example.com/0.mp4",
        "file 0",
        {"title": "t0", "nested": {"a": [0]}},
    )


def test_a_retry_fingerprint_differs_from_the_import_of_the_same_videos() -> None:
    command = control.retry_command(REQUESTED, [request(1)])
    as_retry = control.retry_fingerprint("2025-03", command, "job1")
    assert as_retry != idempotency.fingerprint("2025-03", command)
    assert as_retry == control.retry_fingerprint("2025-03", command, "job1")
    assert as_retry != control.retry_fingerprint("2025-03", command, "job2")


def link(key: str) -> str:
    return f"https://media.example.com/{key}"


def video(index: int, **fields: object) -> VideoRow:
    return VideoRow(idx=index, system_name="archive", external_id=f"ext-{index}", **fields)  # type: ignore[arg-type]


def test_a_running_job_page_shows_each_video_phase() -> None:
    running = JobRow(job_id="job1", state="started", video_count=4, started_at=NOW, success=1)
    videos = [
        video(
            0, state="success", media_id="m0", mime_type="video/mp4", storage_key="acme/m0/e.mp4"
        ),
        video(1),
        video(2),
        video(3),
    ]
    progress = {
        2: VideoProgress(phase="downloading", bytes_done=1024, bytes_total=4096),
        3: VideoProgress(phase="storing", bytes_done=10, bytes_total=None),
    }
    document = render_paged_status(running, videos, progress, link, "next")
    assert document == {
        "finished": False,
        "state": "started",
        "id": "job1",
        "startedAt": "2026-03-01 12:00:00",
        "progress": {"total": 4, "success": 1, "skipped": 0, "failed": 0},
        "videos": [
            {
                "state": "success",
                "systemName": "archive",
                "externalId": "ext-0",
                "video": {
                    "mediaId": "m0",
                    "originalUrl": "https://media.example.com/acme/m0/e.mp4",
                    "mimeType": "video/mp4",
                },
                "phase": "done",
            },
            {
                "state": "started",
                "phase": "queued",
                "bytesTotal": None,
                "systemName": "archive",
                "externalId": "ext-1",
            },
            {
                "state": "started",
                "phase": "downloading",
                "bytesDownloaded": 1024,
                "bytesTotal": 4096,
                "systemName": "archive",
                "externalId": "ext-2",
            },
            {
                "state": "started",
                "phase": "storing",
                "bytesDownloaded": 10,
                "bytesTotal": None,
                "systemName": "archive",
                "externalId": "ext-3",
            },
        ],
        "nextCursor": "next",
    }


def test_a_finished_job_page_keeps_the_finished_shape() -> None:
    finished = JobRow(
        job_id="job1", state="failed", video_count=1, started_at=NOW, finished_at=NOW, failed=1
    )
    failed = video(0, state="failed", reason="cancelled by the client", code="cancelled")
    document = render_paged_status(finished, [failed], {}, link, None)
    assert document["overview"] == {"total": 1, "success": 0, "skipped": 0, "failed": 1}
    assert document["finishedAt"] == "2026-03-01 12:00:00"
    assert document["videos"] == [
        {
            "state": "failed",
            "reason": "cancelled by the client",
            "code": "cancelled",
            "systemName": "archive",
            "externalId": "ext-0",
            "phase": "done",
        }
    ]
    assert document["nextCursor"] is None
    assert list(document)[-1] == "nextCursor"
