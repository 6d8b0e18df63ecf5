"""Event log append: ``store.append`` versus a plain INSERT of the same rows.

Both sides run on one connection in one fresh database, in alternating rounds
so that drift (table growth, checkpoints, other processes) hits both alike.
The baseline writes the same columns (minus ``hash``) into a table with the
same keys and indexes, and encodes the events the same way, but takes no lock,
reads no previous row, computes no hash and sends no notification: the ratio
is what commit order and tamper evidence cost.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from videoimport_devstack import StackInfo
from videoimport_eventlog import audit_trail, schema, store
from videoimport_events import VideoImportRequested, encode_event

from .common import Result, fresh_database, median, report

BATCH_SIZES = (1, 100)
ROUNDS = 3
ROUND_SECONDS = 1.5
MAX_EVENTS_PER_ROUND = 200_000

BASELINE_DDL = """
CREATE TABLE IF NOT EXISTS plain_events
    (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
ALTER TABLE plain_events DROP COLUMN IF EXISTS hash;
"""
PLAIN_INSERT = (
    "INSERT INTO plain_events (position, event_id, stream_id, stream_version, event_type,"
    " schema_version, data, project, correlation_id, causation_id, occurred_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8, $9, $10, $11)"
)

Writer = Callable[[asyncpg.Connection, Sequence[store.NewEvent]], Awaitable[None]]


def new_events(count: int) -> list[store.NewEvent]:
    """``count`` realistic request events of one job, as the API appends them."""
    job_id = uuid.uuid4().hex[:12]
    return [
        store.NewEvent(
            event=VideoImportRequested(
                job_id=job_id,
                project="bench",
                index=index,
                system_name="archive",
                external_id=f"{job_id}-{index}",
                url=f"https://videos.example.com/archive/{job_id}/{index}.mp4",
                file_name=f"clip-{index}",
                metadata={"title": f"Clip {index} of job {job_id}", "credit": "Bench"},
            ),
            stream_id=f"job-{job_id}/video-{index}",
            stream_version=0,
            correlation_id=job_id,
            project="bench",
        )
        for index in range(count)
    ]


async def append_to_store(conn: asyncpg.Connection, events: Sequence[store.NewEvent]) -> None:
    await store.append(conn, events)


class PlainInsert:
    """The baseline writer: positions from a counter, nothing read back."""

    def __init__(self) -> None:
        self._position = 0

    async def __call__(self, conn: asyncpg.Connection, events: Sequence[store.NewEvent]) -> None:
        rows = []
        for new in events:
            self._position += 1
            rows.append(
                (
                    self._position,
                    new.event_id,
                    new.stream_id,
                    new.stream_version,
                    type(new.event).type_name(),
                    type(new.event).schema_version,
                    encode_event(new.event).decode(),
                    new.project,
                    new.correlation_id,
                    new.causation_id,
                    new.occurred_at,
                )
            )
        await conn.executemany(PLAIN_INSERT, rows)


async def _round(conn: asyncpg.Connection, write: Writer, batch: int, seconds: float) -> float:
    """Events per second over one round of transactions of ``batch`` events each."""
    spent, written = 0.0, 0
    while spent < seconds and written < MAX_EVENTS_PER_ROUND:
        events = new_events(batch)
        began = time.perf_counter()
        async with conn.transaction():
            await write(conn, events)
        spent += time.perf_counter() - began
        written += batch
    return written / spent


async def run(stack: StackInfo, results: list[Result], *, quick: bool = False) -> None:
    rounds, seconds = (1, 0.5) if quick else (ROUNDS, ROUND_SECONDS)
    async with fresh_database(stack, "bench_eventlog") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await schema.migrate(conn)
            await conn.execute(BASELINE_DDL)
            plain = PlainInsert()
            for batch in BATCH_SIZES:
                # Warm both paths (prepared statements, first pages) outside the measurement.
                await _round(conn, append_to_store, batch, 0.2)
                await _round(conn, plain, batch, 0.2)
                store_rates: list[float] = []
                plain_rates: list[float] = []
                for index in range(rounds):
                    # Alternate which side goes first, so neither always follows the other.
                    order: list[tuple[Writer, list[float]]] = [
                        (append_to_store, store_rates),
                        (plain, plain_rates),
                    ]
                    for write, rates in order if index % 2 == 0 else reversed(order):
                        rates.append(await _round(conn, write, batch, seconds))
                report(
                    Result(
                        name=f"eventlog.append K={batch}",
                        unit="events/s",
                        value=median(store_rates),
                        baseline=median(plain_rates),
                        baseline_name="plain INSERT, no lock/hash",
                        details={
                            "events_per_transaction": batch,
                            "transactions_per_s": median(store_rates) / batch,
                            "rounds": rounds,
                            "round_seconds": seconds,
                            "store_rates": store_rates,
                            "baseline_rates": plain_rates,
                        },
                    ),
                    results,
                )
            checked = await audit_trail.verify_chain(conn)
            print(f"    hash chain verified over {checked:,} appended events", flush=True)
        finally:
            await conn.close()
