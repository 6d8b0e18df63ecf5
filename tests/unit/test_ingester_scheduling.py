"""Which queued video goes next (fair per project and job), the minimum transfer rate,
and when a running video's progress is written."""

from __future__ import annotations

import math

import pytest
from videoimport_ingester.scheduling import (
    Every,
    Head,
    Limits,
    ProgressReport,
    ProgressSnapshot,
    RateWindow,
    choose,
)

LIMITS = Limits(project=6, job=6)


def head(project: str, job: str, position: int) -> Head:
    return Head(
        event_id=f"{project}-{job}-{position}", project=project, job_id=job, position=position
    )


def test_the_oldest_request_goes_first_when_nothing_runs() -> None:
    heads = [head("a", "j1", 5), head("b", "j2", 3), head("c", "j3", 9)]
    assert choose(heads, {}, LIMITS) == head("b", "j2", 3)


def test_the_project_with_fewest_running_goes_first_whatever_its_age() -> None:
    # Project a has a big backlog posted earlier and 4 running; b's one video waits for nobody.
    heads = [head("a", "big", 1), head("b", "small", 2_001)]
    assert choose(heads, {("a", "big"): 4}, LIMITS) == head("b", "small", 2_001)


def test_within_a_project_the_job_with_fewest_running_goes_first() -> None:
    heads = [head("a", "big", 1), head("a", "small", 500)]
    running = {("a", "big"): 3}
    assert choose(heads, running, LIMITS) == head("a", "small", 500)
    # Once both run as many, age decides again.
    assert choose(heads, {("a", "big"): 1, ("a", "small"): 1}, LIMITS) == head("a", "big", 1)


def test_a_project_at_its_limit_waits_even_with_free_workers() -> None:
    heads = [head("a", "j1", 1), head("a", "j2", 2)]
    running = {("a", "j1"): 4, ("a", "j3"): 2}  # 6 of project a, over two jobs
    assert choose(heads, running, LIMITS) is None
    assert choose([*heads, head("b", "j9", 3)], running, LIMITS) == head("b", "j9", 3)


def test_a_job_at_its_limit_lets_the_next_job_of_its_project_go() -> None:
    limits = Limits(project=10, job=2)
    heads = [head("a", "j1", 1), head("a", "j2", 7)]
    assert choose(heads, {("a", "j1"): 2}, limits) == head("a", "j2", 7)
    assert choose(heads, {("a", "j1"): 2, ("a", "j2"): 2}, limits) is None


def test_nothing_to_choose() -> None:
    assert choose([], {("a", "j1"): 1}, LIMITS) is None


def test_a_steady_source_above_the_rate_never_fails() -> None:
    meter = RateWindow(min_rate=100, window=10)
    for _ in range(1000):
        meter.add(20, 0.1)  # 200 bytes/s
        assert not meter.failed
        remaining = meter.remaining()
        assert remaining is not None and remaining > 0


def test_a_trickle_fails_when_its_first_window_ends() -> None:
    meter = RateWindow(min_rate=100, window=10)  # 1000 bytes per 10 s of waiting
    assert meter.remaining() == 10
    for _ in range(9):
        meter.add(1, 1.0)
    assert not meter.failed
    assert meter.remaining() == pytest.approx(1.0)  # the window ends unfilled in a second
    meter.add(1, 1.5)  # arrived after the window ended
    assert meter.failed
    assert meter.remaining() == 0
    assert meter.describe() == "timeout: the source sent less than 100 bytes/s over 10 s"


def test_a_full_window_gives_until_the_end_of_the_next() -> None:
    meter = RateWindow(min_rate=100, window=10)
    meter.add(1000, 2.0)  # the first window is full after 2 s
    assert meter.remaining() == pytest.approx(18.0)
    meter.add(0, 17.0)  # silence: the first window ended full, the second is empty so far
    assert not meter.failed
    assert meter.remaining() == pytest.approx(1.0)
    meter.add(5, 2.0)  # the second window ended with nothing in it
    assert meter.failed


def test_silence_longer_than_two_windows_fails_even_after_a_full_one() -> None:
    meter = RateWindow(min_rate=100, window=10)
    meter.add(5000, 1.0)
    meter.add(10, 25.0)
    assert meter.failed


def test_a_source_that_recovers_within_the_window_passes() -> None:
    meter = RateWindow(min_rate=100, window=10)
    meter.add(10, 8.0)  # slow start
    meter.add(990, 1.0)  # catches up before the window ends
    assert not meter.failed
    meter.add(1000, 9.0)  # and the next window fills as well
    assert not meter.failed


def test_rate_zero_switches_the_check_off() -> None:
    meter = RateWindow(min_rate=0, window=10)
    meter.add(0, 3600.0)
    assert not meter.failed
    assert meter.remaining() is None


def test_rate_window_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RateWindow(min_rate=-1, window=10)
    with pytest.raises(ValueError):
        RateWindow(min_rate=1, window=0)


def test_nothing_is_written_before_the_download_has_a_response() -> None:
    report = ProgressReport(interval=1.0)
    report.received(100)  # cannot happen before downloading(), but must not spin a writer
    assert report.due_at() is None
    assert report.take(0.0) is None


def test_a_new_phase_is_written_at_once_byte_counts_once_per_interval() -> None:
    wakes: list[tuple[str | None, int]] = []
    report = ProgressReport(
        interval=1.0, on_unwritten=lambda: wakes.append((report.phase, report.bytes_done))
    )
    report.downloading(5_000)
    assert wakes == [("downloading", 0)]
    assert report.take(10.0) == ProgressSnapshot(
        phase="downloading", bytes_done=0, bytes_total=5_000
    )
    for done in range(256, 4_097, 256):  # a chunk every few milliseconds
        report.received(done)
        assert report.take(10.5) is None
    assert wakes == [("downloading", 0), ("downloading", 256)]  # the writer, once per write
    assert report.due_at() == 11.0
    assert report.take(11.0) == ProgressSnapshot(
        phase="downloading", bytes_done=4_096, bytes_total=5_000
    )
    assert report.take(11.0) is None  # written: nothing more until the next chunk
    assert report.due_at() is None
    report.received(4_352)
    report.storing()  # does not wait for the interval, and wakes the writer again
    assert wakes[2:] == [("downloading", 4_352), ("storing", 4_352)]
    assert report.due_at() == -math.inf
    assert report.take(11.1) == ProgressSnapshot(
        phase="storing", bytes_done=4_352, bytes_total=5_000
    )


def test_a_new_attempt_starts_its_bytes_again() -> None:
    report = ProgressReport(interval=1.0)
    report.downloading(None)
    report.received(9_000)
    report.downloading(None)  # a transient failure, then a retry without Content-Length
    assert report.take(0.0) == ProgressSnapshot(phase="downloading", bytes_done=0, bytes_total=None)


def test_every_is_due_once_per_interval_and_a_late_look_does_not_catch_up() -> None:
    every = Every(2.0, start=100.0)
    assert not every.due(101.9)
    assert every.due(102.0)
    assert not every.due(103.0)
    assert every.due(107.5)  # late: due once, not three times in a row
    assert not every.due(108.0)
    assert every.next_at == 109.5


def test_intervals_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ProgressReport(interval=0)
    with pytest.raises(ValueError):
        Every(0, start=0.0)


def test_nothing_is_due_while_quiet_then_the_latest_progress_at_once() -> None:
    report = ProgressReport(interval=1.0, quiet_until=5.0)
    report.downloading(1_000)
    assert report.due_at() == 5.0
    assert report.take(4.9) is None
    report.received(600)
    report.storing()
    assert report.take(5.0) == ProgressSnapshot(phase="storing", bytes_done=600, bytes_total=1_000)
    report.received(700)  # byte counts keep their interval after the quiet time
    assert report.due_at() == 6.0


def test_a_video_done_while_quiet_writes_nothing() -> None:
    report = ProgressReport(interval=1.0, quiet_until=0.5)
    report.downloading(100)
    report.received(100)
    report.storing()
    assert report.take(0.1) is None  # the handling ends here; the watch is cancelled
