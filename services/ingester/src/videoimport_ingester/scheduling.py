"""When work runs (pure): which queued video goes next, when a source is too slow,
and when a running video's watch acts.

``choose`` picks among the first claimable video of every (project, job) so that
one project or one job cannot take every download slot: each is capped, and the
project (then the job) with the fewest videos running goes first. ``RateWindow``
fails a source that delivers less than a minimum rate in a window of time spent
waiting for it (time spent waiting for S3 does not count against the source).
``ProgressReport`` holds a running video's phase and bytes and says which of
their changes are worth a write; ``Every`` paces the watch's other duties.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

import msgspec


class Head(msgspec.Struct, frozen=True, kw_only=True):
    """The first claimable queued video of one (project, job)."""

    event_id: str
    project: str
    job_id: str
    position: int
    video_index: int | None = None
    """The video's index in its job (None: queued by a release that did not keep it)."""


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    project: int
    """Videos of one project running at once (across every instance)."""
    job: int
    """Videos of one job running at once."""


def choose(
    heads: Iterable[Head], running: Mapping[tuple[str, str], int], limits: Limits
) -> Head | None:
    """The video to start next, or None when every candidate is at a limit.

    ``running`` counts the videos running per (project, job). Among the heads
    under both limits: the project with the fewest running, then the job with
    the fewest running, then the oldest request (lowest log position).
    """
    per_project: dict[str, int] = {}
    for (project, _), count in running.items():
        per_project[project] = per_project.get(project, 0) + count
    best: tuple[int, int, int] | None = None
    chosen: Head | None = None
    for head in heads:
        in_project = per_project.get(head.project, 0)
        in_job = running.get((head.project, head.job_id), 0)
        if in_project >= limits.project or in_job >= limits.job:
            continue
        rank = (in_project, in_job, head.position)
        if best is None or rank < best:
            best, chosen = rank, head
    return chosen


class RateWindow:
    """Consecutive windows of ``window`` seconds of waiting for the source; each
    must bring at least ``min_rate * window`` bytes.

    The clock is the time spent waiting for the next chunk (``add`` is told how
    long that was), so a slow consumer downstream is not blamed on the source.
    A ``min_rate`` of 0 switches the check off.
    """

    def __init__(self, min_rate: float, window: float) -> None:
        if min_rate < 0 or window <= 0:
            raise ValueError("min_rate must be >= 0 and window > 0")
        self.min_rate = min_rate
        self.window = window
        self._needed = min_rate * window
        self._clock = 0.0
        self._window_start = 0.0
        self._received = 0
        self._failed = False

    @property
    def failed(self) -> bool:
        return self._failed

    def add(self, size: int, waited: float) -> None:
        """``size`` bytes arrived after waiting ``waited`` seconds for them."""
        if self._failed or self.min_rate == 0:
            return
        self._clock += max(0.0, waited)
        while self._clock >= self._window_start + self.window:
            # A window ended before these bytes arrived: it must have been full.
            if self._received < self._needed:
                self._failed = True
                return
            self._window_start += self.window
            self._received = 0
        self._received += size

    def remaining(self) -> float | None:
        """Seconds of waiting left before the source is too slow (None: never)."""
        if self.min_rate == 0:
            return None
        if self._failed:
            return 0.0
        end = self._window_start + self.window
        if self._received >= self._needed:
            end += self.window  # this window is full; the next one must fill too
        return max(0.0, end - self._clock)

    def describe(self) -> str:
        return (
            f"timeout: the source sent less than {self.min_rate:g} bytes/s over {self.window:g} s"
        )


PROGRESS_INTERVAL = 1.0
"""Seconds between two writes of a running video's byte count."""
FIRST_PROGRESS_AFTER = 0.5
"""Seconds a claimed video runs before its progress is first written. Most small
videos are done sooner; writing each of their phases would cost two round trips
per video for a state nobody could have seen."""

RunningPhase = Literal["downloading", "storing"]
"""What a worker does with a claimed video (a row without a phase is ``queued``)."""


class ProgressSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A running video's progress as written to its queue row."""

    phase: RunningPhase
    bytes_done: int
    bytes_total: int | None
    """The size the source announced (Content-Length), when it did."""


class ProgressReport:
    """A running video's phase and bytes, told by the download as it goes, and
    which of their changes to write: a new phase at once, byte counts at most once
    per ``interval`` seconds (the download reports every chunk).

    ``on_unwritten`` is called when there is newly something to write (a new
    phase, or the first bytes since the last write; not every chunk), so that a
    writer asleep wakes up to schedule it. Nothing is due before ``quiet_until``
    (a clock time): what changed until then is written at that time, if still
    running.
    """

    def __init__(
        self,
        interval: float = PROGRESS_INTERVAL,
        on_unwritten: Callable[[], None] | None = None,
        *,
        quiet_until: float = -math.inf,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.quiet_until = quiet_until
        self.phase: RunningPhase | None = None
        self.bytes_done = 0
        self.bytes_total: int | None = None
        self._on_unwritten = on_unwritten
        self._unwritten = False
        self._phase_unwritten = False
        self._written_at = -math.inf

    def downloading(self, total: int | None) -> None:
        """A download attempt has its response; ``total`` is its announced size."""
        self.bytes_done, self.bytes_total = 0, total
        self._enter("downloading")

    def received(self, done: int) -> None:
        """``done`` bytes of the current attempt have arrived."""
        self.bytes_done = done
        self._changed(new_phase=False)

    def storing(self) -> None:
        """The download (if any) is over: the result is being recorded."""
        self._enter("storing")

    def due_at(self) -> float | None:
        """When the unwritten progress may be written; None when all of it is written."""
        if not self._unwritten or self.phase is None:
            return None
        if self._phase_unwritten:
            return self.quiet_until
        return max(self._written_at + self.interval, self.quiet_until)

    def take(self, now: float) -> ProgressSnapshot | None:
        """What to write at ``now`` (then counted as written), or None: nothing is due."""
        due = self.due_at()
        if due is None or now < due or self.phase is None:
            return None
        self._unwritten = self._phase_unwritten = False
        self._written_at = now
        return ProgressSnapshot(
            phase=self.phase, bytes_done=self.bytes_done, bytes_total=self.bytes_total
        )

    def _enter(self, phase: RunningPhase) -> None:
        self.phase = phase
        self._changed(new_phase=True)

    def _changed(self, *, new_phase: bool) -> None:
        newly = not self._unwritten or (new_phase and not self._phase_unwritten)
        self._unwritten = True
        self._phase_unwritten = self._phase_unwritten or new_phase
        if newly and self._on_unwritten is not None:
            self._on_unwritten()


class Every:
    """A duty due once every ``interval`` seconds, the first ``interval`` after ``start``."""

    def __init__(self, interval: float, start: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.next_at = start + interval

    def due(self, now: float) -> bool:
        """True at most once per interval; a late look does not bring the next one closer."""
        if now < self.next_at:
            return False
        self.next_at = now + self.interval
        return True
