"""When work runs (pure): which queued video goes next, and when a source is too slow.

``choose`` picks among the first claimable video of every (project, job) so that
one project or one job cannot take every download slot: each is capped, and the
project (then the job) with the fewest videos running goes first. ``RateWindow``
fails a source that delivers less than a minimum rate in a window of time spent
waiting for it (time spent waiting for S3 does not count against the source).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec


class Head(msgspec.Struct, frozen=True, kw_only=True):
    """The first claimable queued video of one (project, job)."""

    event_id: str
    project: str
    job_id: str
    position: int


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
