"""``videoimport audit verify``, ``events`` and ``history`` as an operator runs them
(a subprocess), against a real PostgreSQL holding what the services append."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from videoimport_eventlog import audit_trail, schema, store
from videoimport_eventlog.chain import row_hash
from videoimport_events import VideoImportRequested
from videoimport_ingester import domain
from videoimport_ingester.adapters.superseded import Superseded
from videoimport_ingester.sweeper import deletion
from videoimport_projects import MetadataField, ProjectConfig, media_decision
from videoimport_projects.event_filters import EventFilter, page_query

from tests.requests import requested_job

from .test_cli_tokens import REPO, videoimport

pytestmark = pytest.mark.integration

RELEASE_0_1 = Path(__file__).resolve().parents[1] / "fixtures" / "schema" / "release-0.1.sql"
CONFIG = ProjectConfig(metadata=[MetadataField(handle="title", type="text", required=True)])
T0 = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
NEW_URL = "https://videos.example.com/new.mp4"


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_dsn)
    await schema.migrate(connection)
    yield connection
    await connection.close()


async def append(conn: asyncpg.Connection, events: list[store.NewEvent]) -> list[int]:
    async with conn.transaction():
        return await store.append(conn, events)


def result_of(
    request: store.NewEvent, resolution: domain.Resolution, at: datetime
) -> store.NewEvent:
    """The terminal event as the ingester appends it: caused by the request."""
    return store.NewEvent(
        event=resolution.event,
        stream_id=request.stream_id,
        stream_version=1,
        correlation_id=request.correlation_id,
        project=request.project,
        causation_id=str(request.event_id),
        occurred_at=at,
    )


async def video_lifecycle(conn: asyncpg.Connection) -> str:
    """Five jobs import video acme/archive/ext-0: created, skipped, renamed (bytes
    kept), new url (downloaded), failed (no title); then its first object is deleted.
    Each job's ext-1 fails to download; project ``other`` has a job too. Returns the
    video's media id."""
    changes: list[dict[str, Any]] = [
        {},
        {},
        {"file_name": "renamed"},
        {"file_name": "renamed", "url": NEW_URL},
        {"file_name": "renamed", "url": NEW_URL, "metadata": {}},
    ]
    registered: media_decision.MediaRecord | None = None
    for n, change in enumerate(changes):
        at = T0 + timedelta(hours=n)
        job = requested_job(f"job{n:09d}", 2, occurred_at=at)
        first = job[1].event
        assert isinstance(first, VideoImportRequested)
        job[1] = dataclasses.replace(job[1], event=msgspec.structs.replace(first, **change))
        request, other = job[1].event, job[2].event
        assert isinstance(request, VideoImportRequested)
        assert isinstance(other, VideoImportRequested)
        decision = media_decision.decide(request, CONFIG, registered)
        stored = domain.StoredObject(
            storage_key=f"acme/{n}.mp4", mime_type="video/mp4", size=12_345, sha256="ab"
        )
        resolution = domain.resolve(request, decision, stored)
        registered = resolution.record or registered
        failed = domain.failed(other, "download_failed", "HTTP 404 from the origin")
        await append(conn, job)
        await append(
            conn,
            [
                result_of(job[1], resolution, at + timedelta(seconds=5)),
                result_of(job[2], failed, at + timedelta(seconds=6)),
            ],
        )
    assert registered is not None
    gone = deletion(
        Superseded(
            storage_key="acme/0.mp4",
            project="acme",
            media_id=registered.media_id,
            system_name="archive",
            external_id="ext-0",
        )
    )
    await append(conn, [dataclasses.replace(gone, occurred_at=T0 + timedelta(days=1))])
    await append(conn, requested_job("otherjob0001", 1, project="other", occurred_at=T0))
    return registered.media_id


async def tamper(conn: asyncpg.Connection, statement: str) -> None:
    """What someone with the owner's rights can do: bypass the append-only trigger."""
    async with conn.transaction():
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_immutable")
        await conn.execute(statement)
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_immutable")


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


# audit verify


async def test_verify_a_fresh_log(conn: asyncpg.Connection, pg_dsn: str) -> None:
    code, out, err = await videoimport("audit", "verify", dsn=pg_dsn)
    assert (code, err) == (0, ""), err
    assert out == f"log verified: 0 events, chain intact (head {'0' * 64})\n"
    await video_lifecycle(conn)
    code, out, err = await videoimport("audit", "verify", "--batch", "7", dsn=pg_dsn)
    assert (code, err) == (0, ""), err  # no progress bar when stderr is no terminal
    count, head = await conn.fetchrow("SELECT position, hash FROM events ORDER BY position DESC")
    assert out == f"log verified: {count} events, chain intact (head {head.hex()})\n"


@pytest.mark.parametrize(
    "edit",
    [
        "data = replace(data::text, 'HTTP 404', 'HTTP 500')::json",
        "occurred_at = occurred_at - interval '1 hour'",
        "correlation_id = 'job999999999'",
    ],
)
async def test_verify_names_the_position_that_was_altered(
    conn: asyncpg.Connection, pg_dsn: str, edit: str
) -> None:
    await video_lifecycle(conn)
    target = await conn.fetchval(
        "SELECT min(position) FROM events WHERE event_type = 'VideoImportFailed'"
    )
    await tamper(conn, f"UPDATE events SET {edit} WHERE position = {target}")
    code, out, err = await videoimport("audit", "verify", dsn=pg_dsn)
    assert (code, out) == (1, "")
    assert f"log NOT verified: position {target}: hash mismatch (data, occurred_at" in err
    assert f"({target - 1} events before it verified)" in err


async def test_verify_names_a_removed_event_and_reordered_ones(
    conn: asyncpg.Connection, pg_dsn: str
) -> None:
    await video_lifecycle(conn)
    swap = (
        "UPDATE events SET position = -position WHERE position IN (5, 6);"
        " UPDATE events SET position = 11 + position WHERE position IN (-5, -6)"
    )
    await tamper(conn, swap)
    code, _, err = await videoimport("audit", "verify", dsn=pg_dsn)
    assert code == 1
    assert "position 5: hash mismatch" in err
    await tamper(conn, swap)  # swapped back: intact again
    code, _, err = await videoimport("audit", "verify", dsn=pg_dsn)
    assert code == 0, err
    await tamper(conn, "DELETE FROM events WHERE position = 9")
    code, _, err = await videoimport("audit", "verify", dsn=pg_dsn)
    assert code == 1
    assert "position 9: missing (a gap" in err


async def reseal(conn: asyncpg.Connection, position: int, statement: str) -> None:
    """Edit a row and recompute every hash from it on: what the chain alone cannot catch."""
    await tamper(conn, statement)
    verified = await audit_trail.check_chain(conn, up_to=position - 1)
    previous = verified.head
    async with conn.transaction():
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_immutable")
        for row, _ in await audit_trail.read_chain(conn, position - 1, 10_000):
            previous = row_hash(previous, row)
            await conn.execute(
                "UPDATE events SET hash = $1 WHERE position = $2", previous, row.position
            )
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_immutable")


async def test_an_anchor_catches_a_log_rewritten_and_sealed_again(
    conn: asyncpg.Connection, pg_dsn: str
) -> None:
    await video_lifecycle(conn)
    code, out, err = await videoimport("audit", "verify", dsn=pg_dsn)
    assert code == 0, err
    head = out.split("(head ")[1].rstrip(")\n")
    count = await conn.fetchval("SELECT max(position) FROM events")
    anchor = f"{count}:{head}"
    await append(conn, requested_job("later0000001", 1))
    code, out, err = await videoimport("audit", "verify", "--anchor", anchor, dsn=pg_dsn)
    assert code == 0, err
    assert out.endswith(f"; passes through the anchor at position {count}\n")

    await reseal(
        conn, 3, "UPDATE events SET occurred_at = occurred_at - interval '1 day' WHERE position = 3"
    )
    code, out, err = await videoimport("audit", "verify", dsn=pg_dsn)
    assert code == 0, err  # sealed again: the chain alone cannot tell
    code, out, err = await videoimport("audit", "verify", "--anchor", anchor, dsn=pg_dsn)
    assert (code, out) == (1, "")
    assert f"position {count}: not the anchor's hash" in err

    await tamper(conn, f"DELETE FROM events WHERE position >= {count}")
    code, _, err = await videoimport(
        "audit", "verify", "--anchor", f"{count}:{'0' * 64}", dsn=pg_dsn
    )
    assert code == 1
    assert f"ends at position {count - 1}, before the anchor" in err
    code, _, err = await videoimport("audit", "verify", "--anchor", "12:beef", dsn=pg_dsn)
    assert code == 2 and "not POSITION:HASH" in err


async def test_verify_shows_progress_on_a_terminal(conn: asyncpg.Connection, pg_dsn: str) -> None:
    await video_lifecycle(conn)
    controller, terminal = os.openpty()
    try:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "videoimport_projects.cli", "audit", "verify"),
            *("--batch", "2", "--database-url", pg_dsn),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=terminal,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        os.close(terminal)
        terminal = -1
        shown = b""
        while chunk := await asyncio.to_thread(_read_or_eof, controller):
            shown += chunk
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    assert process.returncode == 0
    assert out.decode().startswith("log verified: ")
    assert b"verifying [" in shown and b"events  100%" in shown


def _read_or_eof(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the other end is closed
        return b""


async def test_a_log_of_the_first_release_verifies_after_the_upgrade(pg_dsn: str) -> None:
    loader = await asyncpg.connect(pg_dsn)
    try:
        await loader.execute(RELEASE_0_1.read_text())
    finally:
        await loader.close()
    code, out, err = await videoimport("audit", "verify", dsn=pg_dsn)  # migrates, then checks
    assert code == 0, err
    assert out.startswith("log verified: 3 events, chain intact (head e38c18a773a6aa89")
    conn = await asyncpg.connect(pg_dsn)
    try:
        await append(conn, requested_job("newjob000001", 1, project="legacy"))
    finally:
        await conn.close()
    code, out, err = await videoimport("audit", "verify", dsn=pg_dsn)
    assert code == 0, err
    assert out.startswith("log verified: 5 events, chain intact")


# events


async def test_events_prints_json_lines_in_log_order(conn: asyncpg.Connection, pg_dsn: str) -> None:
    await video_lifecycle(conn)
    code, out, err = await videoimport("events", dsn=pg_dsn)
    assert code == 0, err
    events = lines(out)
    total = await conn.fetchval("SELECT count(*) FROM events")
    assert [e["position"] for e in events] == list(range(1, total + 1))
    first = events[0]
    row = await conn.fetchrow("SELECT * FROM events WHERE position = 1")
    assert first == {
        "position": 1,
        "event_id": str(row["event_id"]),
        "stream_id": "job-job000000000",
        "stream_version": 0,
        "type": "ImportRequested",
        "schema_version": 1,
        "project": "acme",
        "correlation_id": "job000000000",
        "causation_id": None,
        "occurred_at": "2026-11-28T09:30:00.000000Z",
        "recorded_at": row["recorded_at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "data": json.loads(row["data"]),
    }
    assert events[3]["causation_id"] == events[1]["event_id"]  # a result names its request


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--job", "job000000002"], {"job000000002"}),
        (["--project", "other"], {"otherjob0001"}),
        (["--type", "VideoImportSkipped", "--type", "MediaObjectDeleted"], None),
        (["--since", "2026-11-28T11:30:00Z", "--until", "2026-11-28T12:30"], {"job000000002"}),
        (["--from-position", "6", "--to-position", "10"], None),
    ],
)
async def test_events_filters(
    conn: asyncpg.Connection, pg_dsn: str, args: list[str], expected: set[str] | None
) -> None:
    media_id = await video_lifecycle(conn)
    code, out, err = await videoimport("events", *args, dsn=pg_dsn)
    assert code == 0, err
    events = lines(out)
    assert events, "no events printed"
    if expected is not None:
        assert {e["correlation_id"] for e in events} == expected
    if "--type" in args:
        assert [e["type"] for e in events] == ["VideoImportSkipped", "MediaObjectDeleted"]
        assert events[1]["correlation_id"] == media_id
    if "--from-position" in args:
        assert [e["position"] for e in events] == [6, 7, 8, 9, 10]
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)


async def test_events_of_one_video_with_a_limit(conn: asyncpg.Connection, pg_dsn: str) -> None:
    await video_lifecycle(conn)
    video = ("--system-name", "archive", "--external-id", "ext-0")
    code, out, err = await videoimport("events", *video, dsn=pg_dsn)
    assert code == 0, err
    assert {e["project"] for e in lines(out)} == {"acme", "other"}  # one name, two projects
    code, out, err = await videoimport("events", *video, "--project", "acme", dsn=pg_dsn)
    assert code == 0, err
    events = lines(out)
    assert len(events) == 11  # five requests, five results, one deletion
    assert {(e["data"]["system_name"], e["data"]["external_id"]) for e in events} == {
        ("archive", "ext-0")
    }
    code, out, err = await videoimport(
        "events", *video, "--project", "acme", "--limit", "3", dsn=pg_dsn
    )
    assert code == 0, err
    assert [e["position"] for e in lines(out)] == [e["position"] for e in events[:3]]
    # One half of a video's name is refused, not silently widened to many videos.
    code, out, err = await videoimport("events", "--external-id", "ext-0", dsn=pg_dsn)
    assert (code, out) == (1, "")
    assert "give --system-name and --external-id together" in err
    code, _, err = await videoimport("events", "--since", "yesterday", dsn=pg_dsn)
    assert code == 2 and "not an ISO 8601 time" in err


async def test_a_video_is_found_by_its_index(conn: asyncpg.Connection) -> None:
    """The identity filter's expressions are the ones ``events_video_idx`` indexes."""
    await video_lifecycle(conn)
    await conn.execute("SET enable_seqscan = off")
    for project in (None, "acme"):
        where = EventFilter(project=project, system_name="archive", external_id="ext-0")
        sql, args = page_query(where, 0, 500)
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args))
        assert "events_video_idx" in plan, plan


async def test_events_follow_prints_what_is_appended_until_ctrl_c(
    conn: asyncpg.Connection, pg_dsn: str
) -> None:
    await append(conn, requested_job("job000000001", 1))
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "videoimport_projects.cli", "events", "--follow"),
        *("--type", "ImportRequested", "--database-url", pg_dsn),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:

        async def next_event() -> dict[str, Any]:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
            assert line, "the follower ended"
            event: dict[str, Any] = json.loads(line)
            return event

        assert (await next_event())["correlation_id"] == "job000000001"
        # Many appends the filter skips, then one it wants, then one more.
        for n in range(3):
            await append(conn, requested_job(f"skip{n:08d}", 1)[1:])
        await append(conn, requested_job("job000000002", 1))
        assert (await next_event())["correlation_id"] == "job000000002"
        await append(conn, requested_job("job000000003", 0))
        assert (await next_event())["correlation_id"] == "job000000003"
        process.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err
    assert rest == b""


# history


async def test_history_tells_one_videos_story(conn: asyncpg.Connection, pg_dsn: str) -> None:
    media_id = await video_lifecycle(conn)
    code, out, err = await videoimport("history", "acme", "archive", "ext-0", dsn=pg_dsn)
    assert code == 0, err
    title, blank, header, rule, *lines = out.rstrip("\n").splitlines()
    assert title == "video archive/ext-0 in project acme: 11 events"
    assert blank == ""
    assert cells(header) == ["position", "occurred (UTC)", "job", "event", "media id", "details"]
    assert set(rule) <= {"-", " "}
    rows = [cells(line) for line in lines]
    assert [row[2:4] for row in rows] == [
        ["job000000000", "requested"],
        ["job000000000", "imported (created)"],
        ["job000000001", "requested"],
        ["job000000001", "skipped"],
        ["job000000002", "requested"],
        ["job000000002", "imported (updated)"],
        ["job000000003", "requested"],
        ["job000000003", "imported (updated)"],
        ["job000000004", "requested"],
        ["job000000004", "failed"],
        ["-", "object deleted"],
    ]
    assert [row[1] for row in rows[:2]] == ["2026-11-28 09:30:00", "2026-11-28 09:30:05"]
    assert [row[4] for row in rows] == [*["-", media_id] * 4, "-", "-", media_id]
    assert [row[5] for row in rows] == [
        "url https://videos.example.com/0.mp4, fileName 'file 0'",
        "downloaded video/mp4, 12,345 bytes",
        "same url, fileName and metadata",
        "already_exists: already exists",
        "fileName 'file 0' -> 'renamed'",
        "stored bytes kept (fileName or metadata only)",
        f"url https://videos.example.com/0.mp4 -> {NEW_URL}",
        "downloaded video/mp4, 12,345 bytes",
        "metadata changed",
        "invalid_metadata: metadata.title: required",
        "superseded: acme/0.mp4",
    ]


def cells(line: str) -> list[str]:
    """A table line's cells: columns are two or more spaces apart, cells have single ones."""
    return re.split(r" {2,}", line.rstrip())


async def test_history_of_an_unknown_video(conn: asyncpg.Connection, pg_dsn: str) -> None:
    await append(conn, requested_job("job000000001", 1))
    code, out, err = await videoimport("history", "other", "archive", "ext-0", dsn=pg_dsn)
    assert (code, out) == (1, "")
    assert "no events for video archive/ext-0 in project other" in err
