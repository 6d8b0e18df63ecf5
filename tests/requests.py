"""What the API appends for a batch, built directly (for tests of the log's readers)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from videoimport_eventlog import store
from videoimport_events import ImportRequested, VideoImportRequested


def requested_job(
    job_id: str,
    count: int,
    *,
    project: str = "acme",
    system_name: str = "archive",
    occurred_at: datetime | None = None,
    **extra: Any,
) -> list[store.NewEvent]:
    """``ImportRequested`` and one ``VideoImportRequested`` per video (external id ``ext-i``)."""
    when = occurred_at or datetime.now(UTC)
    common = {"job_id": job_id, "project": project, "system_name": system_name}
    events = [
        store.NewEvent(
            ImportRequested(**common, api_version="2025-03", video_count=count, **extra),
            stream_id=f"job-{job_id}",
            stream_version=0,
            correlation_id=job_id,
            project=project,
            occurred_at=when,
        )
    ]
    events += [
        store.NewEvent(
            VideoImportRequested(
                **common,
                index=i,
                external_id=f"ext-{i}",
                url=f"https://videos.example.com/{i}.mp4",
                file_name=f"file {i}",
                metadata={"title": f"t{i}"},
            ),
            stream_id=f"job-{job_id}/video-{i}",
            stream_version=0,
            correlation_id=job_id,
            project=project,
            occurred_at=when,
        )
        for i in range(count)
    ]
    return events


async def append_unknown_event(
    conn: Any,
    event_type: str,
    data: bytes,
    job_id: str,
    *,
    stream: str | None = None,
    stream_version: int = 0,
) -> int:
    """Append, hash-chained like any other, an event of a type this code does not know
    (what a newer writer would log): the poison a log reader must get past. ``stream``
    defaults to ``future-{job_id}``, a kind of stream no reader knows either."""
    import uuid

    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", store.APPEND_LOCK)
        last = await conn.fetchrow(
            "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1"
        )
        position = (last["position"] if last else 0) + 1
        previous = bytes(last["hash"]) if last else store.GENESIS_HASH
        event_id = uuid.uuid4()
        stream = stream or f"future-{job_id}"
        digest = store.chain_hash(previous, event_id, stream, stream_version, event_type, data)
        await conn.execute(
            "INSERT INTO events (position, event_id, stream_id, stream_version, event_type,"
            " schema_version, data, project, correlation_id, occurred_at, hash)"
            " VALUES ($1, $2, $3, $8, $4, 1, $5::json, 'acme', $6, now(), $7)",
            position,
            event_id,
            stream,
            event_type,
            data.decode(),
            job_id,
            digest,
            stream_version,
        )
    return position
