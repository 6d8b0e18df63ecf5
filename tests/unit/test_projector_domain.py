"""The job status fold: evolve + decide_completion, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from videoimport_events import (
    ImportRequested,
    JobCompleted,
    MediaObjectDeleted,
    Overview,
    VideoImported,
    VideoImportFailed,
    VideoImportRequested,
    VideoImportSkipped,
    WebhookRedeliveryRequested,
)
from videoimport_projector import handlers
from videoimport_projector.adapters import readmodel
from videoimport_projector.domain import (
    JobState,
    Logged,
    decide_completion,
    evolve,
    expired_key,
    job_id_of,
    newer_row,
    video_row,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
JOB = "abcdefghijkl"
COMMON = {"job_id": JOB, "project": "acme", "system_name": "archive"}


def at(seconds: int, event: object) -> Logged:
    return Logged(event=event, event_id=uuid.uuid4(), occurred_at=T0 + timedelta(seconds=seconds))


def requested(count: int, **extra: object) -> Logged:
    return at(
        0,
        ImportRequested(**COMMON, api_version="2025-03", video_count=count, **extra),  # type: ignore[arg-type]
    )


def imported(i: int, seconds: int) -> Logged:
    return at(
        seconds,
        VideoImported(
            **COMMON,
            index=i,
            external_id=f"v{i}",
            media_id=f"m{i}",
            mime_type="video/mp4",
            storage_key=f"acme/m{i}/x.mp4",
            size=10,
            sha256="00",
            outcome="created",
            downloaded=True,
            url=f"https://example.com/{i}.mp4",
            file_name=f"f{i}",
            metadata={},
        ),
    )


def skipped(i: int, seconds: int) -> Logged:
    return at(
        seconds,
        VideoImportSkipped(
            **COMMON,
            index=i,
            external_id=f"v{i}",
            media_id=f"m{i}",
            mime_type="video/mp4",
            storage_key=f"acme/m{i}/x.mp4",
            size=10,
            sha256="00",
        ),
    )


def failed(i: int, seconds: int) -> Logged:
    return at(
        seconds,
        VideoImportFailed(
            **COMMON, index=i, external_id=f"v{i}", reason="not a video (text/html)", code="x"
        ),
    )


def fold(*facts: Logged) -> JobState:
    state: JobState | None = None
    for fact in facts:
        state = evolve(state, fact)
    assert state is not None
    return state


def test_a_job_stays_started_until_every_video_is_terminal() -> None:
    state = fold(requested(3), imported(0, 5), failed(1, 6))
    assert state.status == "started"
    assert state.finished_at is None
    assert decide_completion(state) is None


def test_all_succeeded_is_success_with_counts_and_times() -> None:
    request = requested(2, webhook="https://hooks.example.com/x", context={"k": "v"})
    last = imported(1, 9)
    state = fold(request, imported(0, 5), last)
    completed = decide_completion(state)
    assert completed == JobCompleted(
        job_id=JOB,
        project="acme",
        state="success",
        overview=Overview(total=2, success=2, skipped=0, failed=0),
        started_at=T0,
        finished_at=T0 + timedelta(seconds=9),
        webhook="https://hooks.example.com/x",
        context={"k": "v"},
    )
    assert state.cause_id == str(last.event_id)


def test_all_failed_is_failed() -> None:
    state = fold(requested(2), failed(0, 1), failed(1, 2))
    completed = decide_completion(state)
    assert completed is not None
    assert completed.state == "failed"
    assert completed.overview.failed == 2


def test_mixed_results_are_success() -> None:
    state = fold(requested(3), failed(0, 1), imported(1, 2), skipped(2, 3))
    completed = decide_completion(state)
    assert completed is not None
    assert completed.state == "success"
    overview = completed.overview
    assert (overview.total, overview.success, overview.skipped, overview.failed) == (3, 1, 1, 1)


def test_skipped_counts_as_not_failed() -> None:
    state = fold(requested(2), skipped(0, 1), skipped(1, 2))
    completed = decide_completion(state)
    assert completed is not None
    assert completed.state == "success"
    assert completed.overview.skipped == 2


def test_result_order_does_not_change_the_outcome() -> None:
    results = [failed(0, 1), imported(1, 2), skipped(2, 3)]
    forward = fold(requested(3), *results)
    backward = fold(requested(3), *reversed(results))
    assert forward.overview() == backward.overview()
    assert forward.status == backward.status == "success"
    # finished_at is the time of whichever terminal event came last in the log.
    assert forward.finished_at == T0 + timedelta(seconds=3)
    assert backward.finished_at == T0 + timedelta(seconds=1)


def test_reapplying_an_event_changes_nothing() -> None:
    request, first, second = requested(2), imported(0, 1), failed(1, 2)
    once = fold(request, first, second)
    twice = fold(request, request, first, first, second, second)
    assert once == twice
    assert evolve(once, first) is once
    assert evolve(once, request) is once


def test_a_second_result_for_one_video_is_ignored() -> None:
    state = fold(requested(2), imported(0, 1), failed(0, 2))
    assert state.status == "started"
    assert state.results == {0: "success"}


def test_job_completed_is_applied_idempotently() -> None:
    state = fold(requested(1), imported(0, 4))
    completed = decide_completion(state)
    assert completed is not None
    applied = evolve(state, at(5, completed))
    assert applied is not None
    assert applied.completed
    assert (applied.status, applied.finished_at) == (state.status, state.finished_at)
    assert decide_completion(applied) is None
    assert evolve(applied, at(6, completed)) is applied


def test_events_without_a_known_job_and_other_types_are_ignored() -> None:
    assert evolve(None, imported(0, 1)) is None
    state = fold(requested(1))
    # (Webhook attempts are folded: see test_projector_webhook.py.)
    redelivery = WebhookRedeliveryRequested(job_id=JOB, project="acme", requested_by="api")
    assert evolve(state, at(1, redelivery)) is state
    video = VideoImportRequested(
        **COMMON, index=0, external_id="v0", url="u", file_name="f", metadata={}
    )
    assert evolve(state, at(1, video)) is state


def test_an_empty_job_completes_at_once_as_failed() -> None:
    state = fold(requested(0))
    completed = decide_completion(state)
    assert completed is not None
    assert completed.state == "failed"
    assert completed.finished_at == T0


@pytest.mark.parametrize(
    ("fact", "state"),
    [(imported(0, 1), "success"), (skipped(0, 1), "skipped"), (failed(0, 1), "failed")],
)
def test_video_rows_and_terminal_rows_win(fact: Logged, state: str) -> None:
    request_row = video_row(
        VideoImportRequested(
            **COMMON, index=0, external_id="v0", url="u", file_name="f", metadata={}
        )
    )
    terminal_row = video_row(fact.event)
    assert request_row is not None and terminal_row is not None
    assert request_row.state is None
    assert terminal_row.state == state
    assert newer_row(request_row, terminal_row) is terminal_row
    assert newer_row(terminal_row, request_row) is terminal_row


def _deleted(key: str = "acme/m1/old.mp4") -> MediaObjectDeleted:
    return MediaObjectDeleted(
        project="acme",
        system_name="archive",
        external_id="v0",
        media_id="m1",
        storage_key=key,
        reason="superseded",
    )


def test_a_deleted_object_expires_its_key_and_belongs_to_no_job() -> None:
    event = _deleted()
    assert expired_key(event) == "acme/m1/old.mp4"
    assert job_id_of(event) is None
    assert video_row(event) is None
    state = fold(requested(1))
    assert evolve(state, at(1, event)) is state
    assert expired_key(imported(0, 1).event) is None


async def test_apply_marks_the_key_after_the_rows_of_the_same_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A result and the deletion of its object in one batch: the row is saved, then marked."""
    calls: list[tuple[str, object]] = []

    async def load_jobs(conn: object, job_ids: object) -> dict[str, JobState]:
        return {}

    async def save_jobs(conn: object, states: object) -> None:
        calls.append(("jobs", [s.job_id for s in states]))  # type: ignore[attr-defined]

    async def save_videos(conn: object, rows: object) -> None:
        calls.append(("videos", sorted(r.storage_key for r in rows)))  # type: ignore[attr-defined]

    async def expire_links(conn: object, keys: object) -> None:
        calls.append(("expire", list(keys)))  # type: ignore[call-overload]

    async def append(conn: object, events: object, *, skip_existing: bool = False) -> list[int]:
        return []

    monkeypatch.setattr(readmodel, "load_jobs", load_jobs)
    monkeypatch.setattr(readmodel, "save_jobs", save_jobs)
    monkeypatch.setattr(readmodel, "save_videos", save_videos)
    monkeypatch.setattr(readmodel, "expire_links", expire_links)
    monkeypatch.setattr(handlers.store, "append", append)
    result = imported(0, 1)
    assert isinstance(result.event, VideoImported)
    records = [requested(1), result, at(2, _deleted(result.event.storage_key))]
    await handlers.apply(object(), records)  # type: ignore[arg-type]
    assert calls == [
        ("jobs", [JOB]),
        ("videos", [result.event.storage_key]),
        ("expire", [result.event.storage_key]),
    ]
