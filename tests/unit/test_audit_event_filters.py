"""``videoimport events``' filters as SQL (pure, no database)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta, timezone

import pytest
from videoimport_projects.event_filters import (
    LOGGED_COLUMNS,
    EventFilter,
    count_arg,
    is_exhausted,
    page_query,
    parse_timestamp,
    position_arg,
)


def test_no_filter_reads_a_page_in_log_order() -> None:
    sql, args = page_query(EventFilter(), after=0, limit=500)
    assert sql == (
        f"SELECT {LOGGED_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
    )
    assert args == [0, 500]


def test_every_filter_is_a_parameter() -> None:
    since = datetime(2026, 11, 28, tzinfo=UTC)
    until = since + timedelta(days=1)
    where = EventFilter(
        job="j1",
        project="acme",
        system_name="archive",
        external_id="x'; DROP TABLE events; --",
        types=("VideoImported", "VideoImportFailed"),
        since=since,
        until=until,
        from_position=10,
        to_position=20,
    )
    sql, args = page_query(where, after=0, limit=50)
    assert sql.split(" WHERE ")[1] == (
        "position > $1 AND position <= $2 AND correlation_id = $3 AND project = $4"
        " AND (data ->> 'external_id') = $5 AND (data ->> 'system_name') = $6"
        " AND event_type = ANY($7::text[]) AND occurred_at >= $8 AND occurred_at < $9"
        " ORDER BY position LIMIT $10"
    )
    assert args == [
        9,
        20,
        "j1",
        "acme",
        "x'; DROP TABLE events; --",
        "archive",
        ["VideoImported", "VideoImportFailed"],
        since,
        until,
        50,
    ]


def test_the_next_page_starts_after_the_last_position_read() -> None:
    where = EventFilter(from_position=10)
    assert page_query(where, after=0, limit=5)[1][0] == 9
    assert page_query(where, after=42, limit=5)[1][0] == 42


def test_a_video_is_named_by_both_parts() -> None:
    with pytest.raises(ValueError, match="both its system name and its external id"):
        EventFilter(external_id="x")
    with pytest.raises(ValueError):
        EventFilter(system_name="archive")


def test_the_range_ends_at_to_position() -> None:
    assert not is_exhausted(EventFilter(), 10**9)
    assert not is_exhausted(EventFilter(to_position=20), 19)
    assert is_exhausted(EventFilter(to_position=20), 20)


def test_timestamps_are_iso_8601_and_utc_unless_they_say_otherwise() -> None:
    assert parse_timestamp("2026-11-28T09:30:00Z") == datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    assert parse_timestamp("2026-11-28") == datetime(2026, 11, 28, tzinfo=UTC)
    assert parse_timestamp("2026-11-28T10:30:00+01:00") == datetime(
        2026, 11, 28, 10, 30, tzinfo=timezone(timedelta(hours=1))
    )
    with pytest.raises(argparse.ArgumentTypeError, match="not an ISO 8601 time"):
        parse_timestamp("yesterday")


def test_positions_start_at_one() -> None:
    assert position_arg("1") == 1
    for bad in ("0", "-3", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            position_arg(bad)


def test_counts_are_positive() -> None:
    assert count_arg("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="1 or more"):
        count_arg("0")
