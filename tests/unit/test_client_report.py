"""What the client prints and how it exits, from status documents (no server)."""

from __future__ import annotations

import io

from rich.console import Console
from videoimport_projects.client.report import (
    EXIT_FAILED,
    EXIT_OK,
    Counts,
    FailedVideo,
    JobOutcome,
    counts_of,
    exit_code,
    failed_video,
    failure_table,
    jobs_table,
    outcome_of,
    progress_line,
    summary_line,
)
from videoimport_projects.client.watch import PlainBoard, board_for

RUNNING = {"finished": False, "state": "started", "id": "j1", "startedAt": "2026-11-28 09:30:00",
           "progress": {"total": 5, "success": 2, "skipped": 0, "failed": 1}}  # fmt: skip
FINISHED = {"finished": True, "state": "success", "id": "j2",
            "overview": {"total": 3, "success": 2, "skipped": 1, "failed": 0}}  # fmt: skip


def render(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=120, highlight=False, markup=False).print(renderable)
    return out.getvalue()


def test_counts_come_from_progress_while_running_and_overview_when_finished() -> None:
    assert counts_of(RUNNING) == Counts(total=5, success=2, skipped=0, failed=1)
    assert counts_of(FINISHED) == Counts(total=3, success=2, skipped=1, failed=0)
    assert counts_of({"progress": {"total": "5", "failed": True}}) == Counts()
    assert counts_of(RUNNING).done == 3


def test_the_exit_code_is_one_when_any_video_or_job_failed() -> None:
    ok = outcome_of("j2", FINISHED)
    one_failed = JobOutcome("j3", True, "success", Counts(total=2, success=1, failed=1))
    job_failed = JobOutcome("j4", True, "failed", Counts())
    assert exit_code([ok]) == EXIT_OK
    assert exit_code([ok, one_failed]) == EXIT_FAILED
    assert exit_code([job_failed]) == EXIT_FAILED


def test_progress_and_summary_lines() -> None:
    assert progress_line(outcome_of("j1", RUNNING)) == "job j1: 3/5 done, 1 failed"
    assert progress_line(outcome_of("j2", FINISHED)) == (
        "job j2 finished (success): 2 succeeded, 1 skipped, 0 failed of 3"
    )
    assert summary_line([outcome_of("j1", RUNNING), outcome_of("j2", FINISHED)]) == (
        "2 jobs, 8 videos: 4 succeeded, 1 skipped, 1 failed"
    )


def test_the_failure_table_names_each_video_as_written() -> None:
    video = {"state": "failed", "externalId": "[bold]x[/bold]", "code": "download_failed",
             "reason": "HTTP 404 from origin", "systemName": "s"}  # fmt: skip
    failure = failed_video("j1", video)
    assert failure == FailedVideo("j1", "[bold]x[/bold]", "download_failed", "HTTP 404 from origin")
    text = render(failure_table([failure]))
    assert "\x1b" not in text  # not a terminal: no control codes
    assert "Failed videos (1)" in text
    for cell in ("j1", "[bold]x[/bold]", "download_failed", "HTTP 404 from origin"):
        assert cell in text


def test_the_jobs_table_shows_progress_per_job() -> None:
    listing = [{"id": "j1", "state": "started", "finished": False, "systemName": "archive",
                "startedAt": "2026-11-28 09:30:00", "finishedAt": None,
                "progress": {"total": 5, "success": 2, "skipped": 1, "failed": 1}}]  # fmt: skip
    text = render(jobs_table(listing))
    assert "j1" in text and "archive" in text and "4/5" in text and "2026-11-28 09:30:00" in text


def test_without_a_terminal_progress_is_a_line_per_change() -> None:
    out = io.StringIO()
    board = board_for(Console(file=out))
    assert isinstance(board, PlainBoard)
    board.update(outcome_of("j1", RUNNING))
    board.update(outcome_of("j1", RUNNING))
    board.update(outcome_of("j2", FINISHED))
    board.close()
    assert out.getvalue().splitlines() == [
        "job j1: 3/5 done, 1 failed",
        "job j2 finished (success): 2 succeeded, 1 skipped, 0 failed of 3",
    ]
