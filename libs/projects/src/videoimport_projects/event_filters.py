"""Which logged events ``videoimport events`` and ``history`` read: filters as SQL (pure).

Every query reads in position order after a position (keyset pagination), so a
reader holds one page at a time however long the log is. The filters use the
log's indexes: the primary key for positions, ``events_correlation_idx`` for a
job, ``events_type_idx`` for types and ``events_video_idx`` for a video's
external id (the expression must stay exactly as the index has it).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime

from videoimport_eventlog.logged import LOGGED_COLUMNS


@dataclass(frozen=True)
class EventFilter:
    """Every condition an event must meet; ``None`` (or no types) lets all through."""

    job: str | None = None
    project: str | None = None
    system_name: str | None = None
    external_id: str | None = None
    types: tuple[str, ...] = ()
    since: datetime | None = None
    """``occurred_at`` at or after."""
    until: datetime | None = None
    """``occurred_at`` before."""
    from_position: int | None = None
    to_position: int | None = None
    """The last position read (inclusive)."""

    def __post_init__(self) -> None:
        # A video is named by both; one alone would match many videos, unindexed.
        if (self.system_name is None) != (self.external_id is None):
            raise ValueError("a video is named by both its system name and its external id")


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 date or time; without an offset it is UTC (the log's time zone)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {text!r} (e.g. 2026-11-28T09:30:00Z)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def position_arg(text: str) -> int:
    try:
        position = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a log position: {text!r}") from None
    if position < 1:
        raise argparse.ArgumentTypeError("log positions start at 1")
    return position


def count_arg(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return count


def page_query(where: EventFilter, after: int, limit: int) -> tuple[str, list[object]]:
    """The next page: at most ``limit`` matching events after position ``after``."""
    args: list[object] = []

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    start = max(after, (where.from_position or 1) - 1)
    conditions = [f"position > {param(start)}"]
    if where.to_position is not None:
        conditions.append(f"position <= {param(where.to_position)}")
    if where.job is not None:
        conditions.append(f"correlation_id = {param(where.job)}")
    if where.project is not None:
        conditions.append(f"project = {param(where.project)}")
    if where.external_id is not None:
        conditions.append(f"(data ->> 'external_id') = {param(where.external_id)}")
        conditions.append(f"(data ->> 'system_name') = {param(where.system_name)}")
    if where.types:
        conditions.append(f"event_type = ANY({param(list(where.types))}::text[])")
    if where.since is not None:
        conditions.append(f"occurred_at >= {param(where.since)}")
    if where.until is not None:
        conditions.append(f"occurred_at < {param(where.until)}")
    sql = (
        f"SELECT {LOGGED_COLUMNS} FROM events WHERE {' AND '.join(conditions)}"
        f" ORDER BY position LIMIT {param(limit)}"
    )
    return sql, args


def is_exhausted(where: EventFilter, position: int) -> bool:
    """Nothing after ``position`` can match (the range ends there)."""
    return where.to_position is not None and position >= where.to_position
