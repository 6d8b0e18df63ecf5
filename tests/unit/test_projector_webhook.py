"""The webhook part of the job status fold: attempt events → the status's ``webhook``."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from videoimport_events import (
    ImportRequested,
    JobCompleted,
    Overview,
    WebhookDelivered,
    WebhookDeliveryFailed,
)
from videoimport_projector.domain import JobState, Logged, evolve, webhook_view
from videoimport_projector.webhook import WebhookStatus, fold

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
JOB = "abcdefghijkl"
HOOK = {"job_id": JOB, "project": "acme", "delivery_id": "whd_1", "url": "https://h.example/in"}


def at(seconds: int, event: object) -> Logged:
    return Logged(event=event, event_id=uuid.uuid4(), occurred_at=T0 + timedelta(seconds=seconds))


def failed(attempt: int, status: int | None = 503, retry_in: int | None = 10) -> Logged:
    next_at = None if retry_in is None else T0 + timedelta(seconds=attempt * 100 + retry_in)
    return at(
        attempt * 100,
        WebhookDeliveryFailed(
            **HOOK,
            attempt=attempt,
            error=f"HTTP {status}" if status else "timed out",
            status_code=status,
            next_attempt_at=next_at,
        ),
    )


def delivered(attempt: int) -> Logged:
    return at(attempt * 100, WebhookDelivered(**HOOK, attempt=attempt, status_code=204))


def job(webhook: str | None = "https://h.example/in", finished: bool = True) -> JobState:
    state = evolve(
        None,
        at(
            0,
            ImportRequested(
                job_id=JOB,
                project="acme",
                system_name="archive",
                api_version="2025-03",
                video_count=0 if finished else 1,
                webhook=webhook,
            ),
        ),
    )
    assert state is not None
    return state


def run(state: JobState, *facts: Logged) -> JobState:
    for fact in facts:
        after = evolve(state, fact)
        assert after is not None
        state = after
    return state


def test_a_failed_attempt_with_a_retry_is_pending() -> None:
    status = run(job(), failed(1)).webhook_status
    assert status == WebhookStatus(
        delivery_id="whd_1",
        state="pending",
        attempts=1,
        last_status=503,
        last_error="HTTP 503",
        next_attempt_at=T0 + timedelta(seconds=110),
    )


def test_a_success_after_failures_is_delivered_with_its_time() -> None:
    status = run(job(), failed(1), failed(2, None), delivered(3)).webhook_status
    assert status == WebhookStatus(
        delivery_id="whd_1",
        state="delivered",
        attempts=3,
        last_status=204,
        last_error=None,
        next_attempt_at=None,
        delivered_at=T0 + timedelta(seconds=300),
        delivered_attempt=3,
    )


def test_the_last_failure_without_a_retry_is_failed() -> None:
    status = run(job(), failed(1), failed(2, 500, None)).webhook_status
    assert status is not None
    assert (status.state, status.attempts, status.last_status, status.next_attempt_at) == (
        "failed",
        2,
        500,
        None,
    )


def test_a_redelivery_after_success_keeps_counting_and_keeps_the_last_success() -> None:
    status = run(job(), delivered(1), failed(2)).webhook_status
    assert status is not None
    assert (status.state, status.attempts, status.delivered_at) == (
        "pending",
        2,
        T0 + timedelta(seconds=100),
    )
    again = run(job(), delivered(1), failed(2), delivered(3)).webhook_status
    assert again is not None
    assert (again.state, again.attempts, again.delivered_at) == (
        "delivered",
        3,
        T0 + timedelta(seconds=300),
    )


def test_any_order_and_duplicates_give_the_same_status() -> None:
    facts = [failed(1), delivered(2), failed(3), delivered(4)]
    expected = run(job(), *facts).webhook_status
    for order in itertools.permutations(facts):
        assert run(job(), *order, *order[:2]).webhook_status == expected


def test_a_duplicate_attempt_changes_nothing() -> None:
    state = run(job(), failed(1))
    assert evolve(state, failed(1)) is state
    status = state.webhook_status
    assert fold(status, failed(1).event, T0) is status  # type: ignore[arg-type]


def test_an_attempt_of_another_delivery_is_ignored() -> None:
    state = run(job(), delivered(1))
    other = WebhookDeliveryFailed(**{**HOOK, "delivery_id": "whd_2"}, attempt=5, error="x")
    assert evolve(state, at(9, other)) is state


def test_the_view_shows_a_finished_job_with_a_webhook_as_pending_before_any_attempt() -> None:
    assert webhook_view(job()) == WebhookStatus(delivery_id="", state="pending", attempts=0)
    assert webhook_view(job(webhook=None)) is None
    assert webhook_view(job(finished=False)) is None
    completed = JobCompleted(
        job_id=JOB,
        project="acme",
        state="failed",
        overview=Overview(total=0, success=0, skipped=0, failed=0),
        started_at=T0,
        finished_at=T0,
        webhook="https://h.example/in",
    )
    state = run(job(), at(1, completed), delivered(1))
    assert webhook_view(state) == state.webhook_status
    assert state.webhook_status is not None and state.webhook_status.state == "delivered"
