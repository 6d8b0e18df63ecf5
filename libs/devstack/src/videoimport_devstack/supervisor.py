"""Restart what exits unexpectedly under ``make run``, with backoff, within bounds (pure).

A service or server that dies is started again after a jittered, growing delay
(the shared ``RetryPolicy``); one that then stays up ``healthy_after`` seconds
starts from a clean slate. One that keeps dying is given up on after
``policy.attempts`` restarts in a row, like systemd's start limit: a crash loop
is a bug to look at, not something to hide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from videoimport_eventlog.retry import RetryPolicy

RESTARTS = RetryPolicy(attempts=10, base=1.0, factor=2.0, max_delay=30.0, jitter=0.2)


@dataclass
class _Track:
    failures: int = 0
    started_at: float = 0.0
    restart_at: float | None = None


@dataclass
class Supervisor:
    policy: RetryPolicy = RESTARTS
    healthy_after: float = 60.0
    restarts: dict[str, int] = field(default_factory=dict)
    """Restarts per name since the start, for the log and the goodbye line."""
    _tracks: dict[str, _Track] = field(default_factory=dict)

    def started(self, name: str, now: float) -> None:
        track = self._tracks.setdefault(name, _Track())
        track.started_at, track.restart_at = now, None

    def pending(self, name: str) -> bool:
        """A restart of ``name`` is scheduled already."""
        track = self._tracks.get(name)
        return track is not None and track.restart_at is not None

    def died(self, name: str, now: float, rand: float) -> float | None:
        """Seconds until ``name`` is restarted; None when it is given up on."""
        track = self._tracks.setdefault(name, _Track(started_at=now))
        if now - track.started_at >= self.healthy_after:
            track.failures = 0
        track.failures += 1
        if self.policy.exhausted(track.failures):
            return None
        delay = self.policy.delay(track.failures, rand)
        track.restart_at = now + delay
        return delay

    def due(self, now: float) -> list[str]:
        """Names whose restart time has come."""
        return sorted(
            name
            for name, track in self._tracks.items()
            if track.restart_at is not None and track.restart_at <= now
        )

    def restarted(self, name: str, now: float) -> None:
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self.started(name, now)
