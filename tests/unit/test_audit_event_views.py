"""How logged events read: JSON Lines, a video's timeline, tables, the progress bar."""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from videoimport_projects.audit import Anchor, anchor_arg, progress_bar
from videoimport_projects.event_views import (
    TIMELINE_HEADERS,
    LoggedEvent,
    json_line,
    render_table,
    timeline,
)

WHEN = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def logged(position: int, event_type: str, data: dict[str, Any] | bytes) -> LoggedEvent:
    raw = data if isinstance(data, bytes) else json.dumps({"type": event_type, **data}).encode()
    return LoggedEvent(
        position=position,
        event_id=uuid.UUID(int=position),
        stream_id=f"job-j{position}/video-0",
        stream_version=0,
        event_type=event_type,
        schema_version=1,
        project="acme",
        correlation_id=f"j{position}",
        causation_id=None,
        occurred_at=WHEN + timedelta(minutes=position),
        recorded_at=(WHEN + timedelta(minutes=position, microseconds=5)).astimezone(
            timezone(timedelta(hours=2))
        ),
        data=raw,
    )


def test_a_json_line_carries_the_envelope_and_data_verbatim() -> None:
    event = logged(3, "SomethingNew", b'{"type":"SomethingNew","n":1.50}')
    line = json_line(event)
    assert b"\n" not in line
    assert line.endswith(b',"data":{"type":"SomethingNew","n":1.50}}')  # not re-encoded
    assert json.loads(line) == {
        "position": 3,
        "event_id": "00000000-0000-0000-0000-000000000003",
        "stream_id": "job-j3/video-0",
        "stream_version": 0,
        "type": "SomethingNew",
        "schema_version": 1,
        "project": "acme",
        "correlation_id": "j3",
        "causation_id": None,
        "occurred_at": "2026-11-28T09:33:00.000000Z",
        "recorded_at": "2026-11-28T09:33:00.000005Z",
        "data": {"type": "SomethingNew", "n": 1.5},
    }


def test_json_stored_across_lines_still_makes_one_line() -> None:
    event = logged(1, "X", b'{\n  "type": "X",\n  "text": "a\\nb"\n}')
    line = json_line(event)
    assert b"\n" not in line
    assert json.loads(line)["data"] == {"type": "X", "text": "a\nb"}


def request(position: int, **fields: Any) -> LoggedEvent:
    base = {
        "job_id": f"j{position}",
        "url": "https://v.example/a.mp4",
        "file_name": "a",
        "metadata": {"title": "t"},
    }
    return logged(position, "VideoImportRequested", {**base, **fields})


def test_a_timeline_compares_each_request_with_the_one_before() -> None:
    rows = timeline(
        [
            request(1),
            request(2),
            request(3, url="https://v.example/b.mp4", file_name="b"),
            request(4, url="https://v.example/b.mp4", file_name="b", metadata={}),
        ]
    )
    assert [r.details for r in rows] == [
        "url https://v.example/a.mp4, fileName 'a'",
        "same url, fileName and metadata",
        "url https://v.example/a.mp4 -> https://v.example/b.mp4; fileName 'a' -> 'b'",
        "metadata changed",
    ]
    assert [r.job for r in rows] == ["j1", "j2", "j3", "j4"]
    assert rows[0].occurred == "2026-11-28 09:31:00"


def test_a_timeline_names_results() -> None:
    stored = {"job_id": "j", "media_id": "m1", "mime_type": "video/webm", "size": 1234567}
    rows = timeline(
        [
            logged(1, "VideoImported", {**stored, "outcome": "created", "downloaded": True}),
            logged(2, "VideoImported", {**stored, "outcome": "updated", "downloaded": False}),
            logged(3, "VideoImportSkipped", {**stored, "code": "already_exists", "reason": "r"}),
            logged(4, "VideoImportFailed", {"job_id": "j", "code": "c", "reason": "two\nlines"}),
            logged(
                5,
                "MediaObjectDeleted",
                {"media_id": "m1", "reason": "superseded", "storage_key": "k"},
            ),
            logged(6, "SomethingNew", {}),
        ]
    )
    assert [(r.event, r.media_id, r.details) for r in rows] == [
        ("imported (created)", "m1", "downloaded video/webm, 1,234,567 bytes"),
        ("imported (updated)", "m1", "stored bytes kept (fileName or metadata only)"),
        ("skipped", "m1", "already_exists: r"),
        ("failed", "-", "c: two lines"),
        ("object deleted", "m1", "superseded: k"),
        ("SomethingNew", "-", ""),
    ]
    assert rows[4].job == "-"
    assert len(rows[0].cells()) == len(TIMELINE_HEADERS)


def test_a_table_aligns_columns_without_trailing_blanks() -> None:
    table = render_table(("a", "long header", "c"), [("1", "x", ""), ("22", "y", "last")])
    assert table.splitlines() == [
        "a   long header  c",
        "--  -----------  ----",
        "1   x",
        "22  y            last",
    ]


def test_the_progress_bar() -> None:
    assert progress_bar(0, 200, width=10) == "verifying [----------]  0/200 events  0%"
    assert progress_bar(50, 200, width=10) == "verifying [##--------]  50/200 events  25%"
    assert progress_bar(2000, 2000, width=4) == "verifying [####]  2,000/2,000 events  100%"
    assert progress_bar(0, 0, width=4) == "verifying [####]  0/0 events  100%"


def test_an_anchor_is_a_position_and_a_sha256() -> None:
    assert anchor_arg(f"12:{'ab' * 32}") == Anchor(12, bytes.fromhex("ab" * 32))
    for bad in ("12", f"0:{'ab' * 32}", "12:abcd", f"x:{'ab' * 32}", f"12:{'zz' * 32}"):
        with pytest.raises(argparse.ArgumentTypeError, match="not POSITION:HASH"):
            anchor_arg(bad)
