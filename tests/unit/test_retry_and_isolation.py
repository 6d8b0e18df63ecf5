"""The shared retry policy, Retry-After parsing, poison isolation and reason bounds (pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from videoimport_eventlog.isolation import PoisonGuard
from videoimport_eventlog.retry import RetryPolicy, parse_retry_after
from videoimport_events import MAX_REASON_BYTES, bounded_reason

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def test_backoff_grows_to_its_cap_and_jitter_spreads_it() -> None:
    policy = RetryPolicy(attempts=6, base=1.0, factor=2.0, max_delay=5.0, jitter=0.2)
    assert [policy.nominal_delay(a) for a in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(2, 0.0) == pytest.approx(1.6)
    assert policy.delay(2, 0.999999) == pytest.approx(2.4, rel=1e-5)
    assert [policy.exhausted(a) for a in (5, 6)] == [False, True]
    assert policy.total_nominal() == 17.0


@pytest.mark.parametrize(
    "kwargs", [{"attempts": 0}, {"factor": 0.5}, {"jitter": 1.0}, {"base": -1.0}]
)
def test_a_policy_that_makes_no_sense_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("²", None),  # str.isdigit() says yes, float() says no
        ("١٢", None),  # Arabic-Indic digits
        ("-5", None),
        ("1.5", None),
        ("99999999999999999999", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Sat, 28 Nov 2026 09:01:00 GMT", 60.0),
        ("Sat, 28 Nov 2026 08:00:00 GMT", 0.0),
        ("Sat, 28 Nov 2026 09:01:00", None),  # no zone: not an HTTP date
    ],
)
def test_retry_after_never_raises(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_a_failing_batch_narrows_to_the_event_that_fails_then_parks_it() -> None:
    guard = PoisonGuard(RetryPolicy(attempts=3), batch_size=100)
    assert guard.batch(10) == 100
    assert guard.failed(10) == "retry"  # the batch after 10 failed: go one by one
    assert guard.batch(10) == 1
    guard.succeeded()  # event 11 was fine
    assert guard.batch(11) == 1
    assert [guard.failed(11) for _ in range(3)] == ["retry", "retry", "park"]
    assert guard.batch(12) == 1  # still inside the narrowed stretch
    assert guard.batch(110) == 100  # past it: full batches again


def test_failures_at_another_position_start_counting_again() -> None:
    guard = PoisonGuard(RetryPolicy(attempts=2), batch_size=1)
    assert guard.failed(5) == "retry"
    assert guard.failed(6) == "retry"
    assert guard.failed(6) == "park"


def test_reasons_are_bounded_in_utf8_bytes() -> None:
    assert bounded_reason("short") == "short"
    cut = bounded_reason("é" * 5000)
    assert len(cut.encode()) <= MAX_REASON_BYTES
    assert cut.endswith("…")


def test_reconciliation_backs_off_per_request() -> None:
    from videoimport_relay.domain import Open, due, finished_through

    after, cap = timedelta(minutes=10), timedelta(hours=6)
    fresh = Open(position=5, event_id=uuid.uuid4(), terminal=False, times=0, last_at=None)
    assert due(fresh, NOW, after, cap)
    sent_twice = Open(
        position=5,
        event_id=fresh.event_id,
        terminal=False,
        times=2,
        last_at=NOW - timedelta(minutes=39),
    )
    assert not due(sent_twice, NOW, after, cap)  # waits 40 minutes after the second time
    assert due(sent_twice, NOW + timedelta(minutes=1), after, cap)
    many = Open(position=5, event_id=fresh.event_id, terminal=False, times=50, last_at=NOW)
    assert due(many, NOW + cap, after, cap)  # never waits longer than the cap
    done = Open(position=6, event_id=fresh.event_id, terminal=True, times=0, last_at=None)
    assert not due(done, NOW, after, cap)
    assert finished_through(4, [done]) == 6
    assert finished_through(4, [done, fresh, done]) == 6
    assert finished_through(4, [fresh, done]) == 4


def test_make_run_passes_on_only_the_operators_videoimport_settings() -> None:
    from videoimport_devstack.run import operator_settings

    env = {"VIDEOIMPORT_ALLOW_PRIVATE_URLS": "false", "PATH": "/bin", "XVIDEOIMPORT_A": "1"}
    assert operator_settings(env) == {"VIDEOIMPORT_ALLOW_PRIVATE_URLS": "false"}
