"""The notifier on the shared retry pieces: Retry-After, its schedule from settings,
failures that cannot be recorded, per-project slots and bounded error texts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from videoimport_eventlog.retry import parse_retry_after
from videoimport_notifier import bootstrap
from videoimport_notifier.adapters.webhook_http import failure
from videoimport_notifier.domain import (
    MAX_ERROR_CHARS,
    WEBHOOK_SCHEDULE,
    AttemptResult,
    ProjectSlots,
    event_uuid,
    next_step,
    short_error,
    unrecorded_step,
)
from videoimport_notifier.settings import NotifierSettings

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DAY = 86_400.0
OLD_SCHEDULE = [10.0, 30.0, 90.0, 270.0, 810.0, 2430.0, 7290.0, 21870.0] + [43_200.0] * 5
"""The waits between the 14 attempts of the notifier's own policy before the shared one."""


def defaults() -> NotifierSettings:
    return NotifierSettings(database_url="postgresql://unused", kafka_bootstrap="unused:9092")


# --- Retry-After ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("²", None),  # str.isdigit() is True for it; int() raises ValueError
        ("1²", None),
        ("٣", None),  # an Arabic-Indic digit three
        ("-5", None),
        ("+5", None),
        ("1.5", None),
        ("99999999999999999999", None),  # over 300 years: nobody means that
        ("soon", None),
        ("", None),
        ("Sat, 01 Mar 2025 12:01:00 GMT", 60.0),
        ("Sat, 01 Mar 2025 11:00:00 GMT", 0.0),  # in the past: now
        ("Sat, 01 Mar 2025 12:01:00", None),  # no zone
        (None, None),
    ],
)
def test_retry_after_values(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_a_huge_retry_after_is_capped_at_the_longest_step() -> None:
    ten_digits = parse_retry_after("9999999999", NOW)
    assert ten_digits == 9_999_999_999.0
    result = AttemptResult(status=503, error="HTTP 503", retry_after=ten_digits)
    step = next_step(1, result, NOW, WEBHOOK_SCHEDULE, 0.5)
    assert step.next_attempt_at == NOW + timedelta(seconds=WEBHOOK_SCHEDULE.max_delay)


def test_an_unreadable_retry_after_keeps_the_normal_backoff() -> None:
    result = AttemptResult(status=503, error="HTTP 503", retry_after=parse_retry_after("²", NOW))
    step = next_step(2, result, NOW, WEBHOOK_SCHEDULE, 0.5)
    assert (step.state, step.next_attempt_at) == ("pending", NOW + timedelta(seconds=30))


# --- the schedule from settings ------------------------------------------------------------


def test_the_settings_reproduce_the_old_schedule_of_about_three_days() -> None:
    policy = bootstrap.retry_policy(defaults())
    assert policy == WEBHOOK_SCHEDULE
    assert policy.attempts == 14
    assert [policy.nominal_delay(a) for a in range(1, policy.attempts)] == OLD_SCHEDULE
    assert policy.total_nominal() == sum(OLD_SCHEDULE) == 248_800.0
    assert 2.5 * DAY <= policy.total_nominal() <= 3.5 * DAY
    assert policy.exhausted(14) and not policy.exhausted(13)
    assert (policy.delay(1, 0.0), policy.delay(1, 0.999_999)) == pytest.approx((8.0, 12.0))


def test_the_consumer_policy_comes_from_its_own_settings() -> None:
    settings = NotifierSettings(
        database_url="x", kafka_bootstrap="y", consumer_attempts=3, consumer_retry_base=0.1
    )
    policy = bootstrap.consumer_policy(settings)
    assert (policy.attempts, policy.base) == (3, 0.1)


def test_bad_retry_settings_stop_the_start() -> None:
    settings = NotifierSettings(database_url="x", kafka_bootstrap="y", webhook_max_attempts=0)
    with pytest.raises(SystemExit, match="configuration error"):
        bootstrap.retry_policy(settings)
    with pytest.raises(SystemExit, match="PROJECT_LIMIT"):
        bootstrap.project_slots(
            NotifierSettings(database_url="x", kafka_bootstrap="y", webhook_project_limit=0)
        )


# --- attempts that cannot be recorded ---------------------------------------------------


def test_an_unrecorded_attempt_backs_off_like_a_failure_and_the_last_gives_up() -> None:
    waits = [
        unrecorded_step(a, "boom", NOW, WEBHOOK_SCHEDULE, 0.5).next_attempt_at for a in range(1, 14)
    ]
    assert waits == [NOW + timedelta(seconds=s) for s in OLD_SCHEDULE]
    last = unrecorded_step(14, "boom", NOW, WEBHOOK_SCHEDULE, 0.5)
    assert (last.state, last.next_attempt_at, last.error) == ("failed", None, "boom")


# --- per-project slots -----------------------------------------------------------------------


def test_a_project_at_its_limit_is_full_until_one_is_released() -> None:
    slots = ProjectSlots(2)
    assert slots.full() == []
    slots.take("a")
    slots.take("b")
    assert slots.full() == []
    slots.take("a")
    assert slots.full() == ["a"]
    slots.release("a")
    assert slots.full() == []
    for project in ("a", "b", "b"):
        slots.release(project)
    assert (slots.in_flight("a"), slots.in_flight("b"), slots.full()) == (0, 0, [])


def test_the_limit_must_allow_one() -> None:
    with pytest.raises(ValueError):
        ProjectSlots(0)


# --- error texts -----------------------------------------------------------------------------


def test_error_texts_are_one_bounded_printable_line() -> None:
    assert short_error("Bad status line:\n  b'HTTP/1.1 2x0'\x00\x07 ok") == (
        "Bad status line: b'HTTP/1.1 2x0' ok"
    )
    long = short_error("x" * 5000)
    assert len(long) == MAX_ERROR_CHARS and long.endswith("…")


@pytest.mark.parametrize(
    ("exc", "permanent", "starts"),
    [
        (UnicodeError("label empty or too long"), True, "invalid webhook url: UnicodeError"),
        (aiohttp.InvalidURL("http://[::1"), True, "invalid webhook url"),
        (TimeoutError(), False, "no response within 10 s"),
        (aiohttp.ServerDisconnectedError(), False, "request failed: ServerDisconnectedError"),
        (KeyError("surprise\x00"), False, "request failed: KeyError"),
        (RuntimeError("y" * 5000), False, "request failed: RuntimeError: yyy"),
    ],
)
def test_every_exception_of_a_post_is_a_classified_attempt(
    exc: Exception, permanent: bool, starts: str
) -> None:
    result = failure(exc, 10.0)
    assert (result.status, result.permanent) == (None, permanent)
    assert result.error is not None and result.error.startswith(starts)
    assert len(result.error) <= MAX_ERROR_CHARS and result.error.isprintable()


def test_event_ids_that_are_not_uuids_are_not_named_on_a_dead_letter() -> None:
    assert event_uuid("0b9d3a52-5c31-4a63-9d51-3f2f3b0f5f0e") is not None
    assert event_uuid("ev-1") is None
