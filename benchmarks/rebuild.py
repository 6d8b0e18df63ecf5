"""Projection rebuild: ``videoimport_projector.rebuild`` versus a bare scan of the log.

One fresh database holds about N events of finished jobs of 10 videos each (request,
10 video requests, 10 results of every kind, a webhook attempt and the projector's own
``JobCompleted``), projected once by the projector so the live tables are complete.
Measured: a whole rebuild as ``python -m videoimport_projector rebuild`` runs it
(replay into the shadow tables, catch-up under the tracking lock, compare and copy
into the live tables, which are already right, so nothing is written), events/s.
Baseline: the same events read in the same batches by position, rows fetched and
nothing done with them. Both on one connection, in alternating rounds. The ratio is
what decoding, folding, writing the shadow and the swap cost over reading the log.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from videoimport_devstack import StackInfo
from videoimport_eventlog import runtime, schema, store
from videoimport_events import (
    Event,
    ImportRequested,
    VideoImported,
    VideoImportFailed,
    VideoImportRequested,
    VideoImportSkipped,
    WebhookDelivered,
)
from videoimport_projector import handlers
from videoimport_projector.rebuild import rebuild
from videoimport_projector.settings import ProjectorSettings

from .common import Result, fresh_database, median, report

ROUNDS = 3
VIDEOS = 10
EVENTS_PER_JOB = 2 * VIDEOS + 3  # + ImportRequested, WebhookDelivered, JobCompleted
JOBS_PER_TRANSACTION = 20
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _job(n: int) -> list[store.NewEvent]:
    """What the API, the ingester and the notifier log for one job (not its completion)."""
    job_id = f"bench{n:07d}"
    at = T0 + timedelta(seconds=n)
    common: dict[str, Any] = {"job_id": job_id, "project": "bench", "system_name": "archive"}

    def new(event: Event, stream: str, version: int) -> store.NewEvent:
        return store.NewEvent(
            event,
            stream_id=stream,
            stream_version=version,
            correlation_id=job_id,
            project="bench",
            occurred_at=at,
        )

    events = [
        new(
            ImportRequested(
                **common,
                api_version="2025-03",
                video_count=VIDEOS,
                webhook="https://hooks.example.com/in",
                context={"batch": n},
            ),
            f"job-{job_id}",
            0,
        )
    ]
    for i in range(VIDEOS):
        video = {**common, "index": i, "external_id": f"{job_id}-{i}"}
        events.append(
            new(
                VideoImportRequested(
                    **video,
                    url=f"https://videos.example.com/{job_id}/{i}.mp4",
                    file_name=f"clip {i}",
                    metadata={"title": f"Clip {i} of {job_id}"},
                ),
                f"job-{job_id}/video-{i}",
                0,
            )
        )
    for i in range(VIDEOS):
        video = {**common, "index": i, "external_id": f"{job_id}-{i}"}
        stored: dict[str, Any] = {
            "media_id": f"m{n:07d}{i:02d}",
            "mime_type": "video/mp4",
            "storage_key": f"bench/m{n:07d}{i:02d}/{uuid.uuid4()}.mp4",
            "size": 1000,
            "sha256": "ab" * 32,
        }
        result: Event
        if i % 5 == 4:
            result = VideoImportFailed(
                **video, reason="not a video (text/html)", code="not_a_video"
            )
        elif i % 5 == 3:
            result = VideoImportSkipped(**video, **stored)
        else:
            result = VideoImported(
                **video,
                **stored,
                outcome="created",
                downloaded=True,
                url=f"https://videos.example.com/{job_id}/{i}.mp4",
                file_name=f"clip {i}",
                metadata={"title": f"Clip {i} of {job_id}"},
            )
        events.append(new(result, f"job-{job_id}/video-{i}", 1))
    delivered = WebhookDelivered(
        job_id=job_id,
        project="bench",
        delivery_id=f"whd_{job_id}",
        url="https://hooks.example.com/in",
        attempt=1,
        status_code=204,
    )
    events.append(new(delivered, f"webhook-whd_{job_id}", 0))
    return events


async def _fill(conn: asyncpg.Connection, events: int, batch_size: int) -> int:
    """About ``events`` events, projected once by the projector; returns the log's size."""
    jobs = max(1, events // EVENTS_PER_JOB)
    for first in range(0, jobs, JOBS_PER_TRANSACTION):
        batch = [e for n in range(first, min(jobs, first + JOBS_PER_TRANSACTION)) for e in _job(n)]
        async with conn.transaction():
            await store.append(conn, batch)
    # The projector appends the JobCompleted events and fills the live tables.
    await handlers.catch_up(conn, batch_size)
    count: int = await conn.fetchval("SELECT count(*) FROM events")
    return count


async def _scan(conn: asyncpg.Connection, batch_size: int) -> int:
    """The baseline: every event fetched in batches by position, nothing done with it."""
    position, count = 0, 0
    while True:
        rows = await conn.fetch(
            "SELECT * FROM events WHERE position > $1 ORDER BY position LIMIT $2",
            position,
            batch_size,
        )
        if not rows:
            return count
        position = rows[-1]["position"]
        count += len(rows)


async def _timed_rebuild(conn: asyncpg.Connection, batch_size: int) -> tuple[float, float, int]:
    """(events/s, seconds the tracking row was held, rows written)."""
    began = time.perf_counter()
    outcome = await rebuild(conn, batch_size)
    seconds = time.perf_counter() - began
    return outcome.events / seconds, outcome.held, sum(outcome.written.values())


async def _timed_scan(conn: asyncpg.Connection, batch_size: int) -> float:
    began = time.perf_counter()
    count = await _scan(conn, batch_size)
    return count / (time.perf_counter() - began)


async def run(stack: StackInfo, results: list[Result], *, events: int, quick: bool = False) -> None:
    rounds = 1 if quick else ROUNDS
    runtime.configure_logging(level="WARNING")  # not a line per rebuild phase
    async with fresh_database(stack, "bench_rebuild") as dsn:
        batch_size = ProjectorSettings(database_url=dsn).batch_size
        conn = await asyncpg.connect(dsn)
        try:
            await schema.migrate(conn)
            began = time.perf_counter()
            logged = await _fill(conn, events, batch_size)
            print(
                f"    {logged:,} events logged and projected in"
                f" {time.perf_counter() - began:.1f} s",
                flush=True,
            )
            # Warm both paths (prepared statements, the log's pages) outside the measurement.
            await _timed_rebuild(conn, batch_size)
            await _timed_scan(conn, batch_size)
            rebuild_rates: list[float] = []
            scan_rates: list[float] = []
            held: list[float] = []

            async def rebuild_round() -> None:
                rate, locked, written = await _timed_rebuild(conn, batch_size)
                assert written == 0, f"a rebuild of a sound projection wrote {written} rows"
                rebuild_rates.append(rate)
                held.append(locked)

            async def scan_round() -> None:
                scan_rates.append(await _timed_scan(conn, batch_size))

            for index in range(rounds):
                # Alternate which side goes first, so neither always follows the other.
                order = (rebuild_round, scan_round)
                for measure in order if index % 2 == 0 else reversed(order):
                    await measure()
            # The other extreme: live tables emptied, so the swap writes every row.
            await conn.execute("TRUNCATE status_jobs, status_videos, projector_job_state")
            began = time.perf_counter()
            _, empty_held, empty_written = await _timed_rebuild(conn, batch_size)
            empty_seconds = time.perf_counter() - began
            report(
                Result(
                    name=f"projector.rebuild N={logged}",
                    unit="events/s",
                    value=median(rebuild_rates),
                    baseline=median(scan_rates),
                    baseline_name="bare scan of the events table",
                    details={
                        "events": logged,
                        "batch_size": batch_size,
                        "rounds": rounds,
                        "rebuild_seconds": logged / median(rebuild_rates),
                        "tracking_held_seconds": median(held),
                        "into_empty_seconds": empty_seconds,
                        "into_empty_held_seconds": empty_held,
                        "into_empty_rows_written": empty_written,
                        "rebuild_rates": rebuild_rates,
                        "scan_rates": scan_rates,
                    },
                ),
                results,
            )
        finally:
            await conn.close()
