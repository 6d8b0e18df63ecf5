"""Rebuilding the status read model from the log without a gap in what readers see.

1. The whole log is replayed into temporary shadow copies of the tables
   (``adapters.shadow``) with ``handlers.apply``, the projector's own fold, while the
   live projector goes on and readers see the live tables as before.
2. One transaction then holds the projector's tracking row (the live projector,
   which may keep running, waits at its next batch), catches the shadow up to the
   log head as of then, makes the live tables equal to the shadow and sets the
   tracking position to that head. Readers see the old complete state until the
   commit, the new one after it; the live projector goes on from the head.

``check`` instead catches the live tables up to the same head in that transaction,
compares them with the shadow and rolls everything back: it writes nothing.

``JobCompleted``: a rebuild appends what it decides with ``skip_existing`` (a job
settled between the live projector's position and the head would otherwise never
be completed, since the live projector resumes after it); a check appends nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field

import asyncpg
import structlog
from videoimport_eventlog import store, tracking

from videoimport_projector import domain, handlers
from videoimport_projector.adapters import readmodel, shadow
from videoimport_projector.differences import TableDifferences

log = structlog.get_logger(__name__)

_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
SAMPLE = 20
"""Differing rows a check shows per table and kind (all of them are counted)."""


@dataclass(frozen=True)
class Outcome:
    position: int
    """The log position the rebuilt (or compared) read model stands at."""
    events: int
    """Events replayed into the shadow."""
    written: dict[str, int] = field(default_factory=dict)
    """A rebuild: rows written into each live table (0 when it already was right)."""
    differences: tuple[TableDifferences, ...] = ()
    """A check: what differs, per table."""
    held: float = 0.0
    """Seconds the tracking row was held (the live projector waited at most this)."""

    @property
    def differs(self) -> bool:
        return any(t.total for t in self.differences)


async def replay(
    conn: asyncpg.Connection,
    into: readmodel.Model,
    position: int,
    until: int | None,
    batch_size: int,
    *,
    complete: bool,
) -> tuple[int, int]:
    """Apply the log after ``position`` (up to ``until``, else to its end) into
    ``into``, a transaction (or savepoint) per batch; returns (position, events)."""
    events = 0
    while True:
        records = await store.read_after(conn, position, batch_size)
        if until is not None:
            records = [r for r in records if r.position <= until]
        if not records:
            return position, events
        async with conn.transaction():
            await handlers.apply(conn, records, into, complete=complete)
        position = records[-1].position
        events += len(records)


async def rebuild(
    conn: asyncpg.Connection, batch_size: int, *, check: bool = False, sample: int = SAMPLE
) -> Outcome:
    began = time.monotonic()
    copies = await shadow.create(conn)
    try:
        position, events = await replay(conn, copies, 0, None, batch_size, complete=not check)
        await shadow.analyze(conn, copies)
        log.info(
            "shadow read model built",
            position=position,
            events=events,
            seconds=round(time.monotonic() - began, 3),
        )
        locked = time.monotonic()
        transaction = conn.transaction()
        await transaction.start()
        try:
            outcome = await _finish(conn, copies, position, events, batch_size, check, sample)
        except BaseException:
            await transaction.rollback()
            raise
        if check:
            await transaction.rollback()
        else:
            await transaction.commit()
        outcome = dataclasses.replace(outcome, held=time.monotonic() - locked)
    finally:
        # A lost connection took the temporary tables with it: nothing to report then.
        with contextlib.suppress(*_DB_ERRORS):
            await shadow.drop(conn, copies)
    log.info(
        "read model checked" if check else "read model rebuilt",
        position=outcome.position,
        events=outcome.events,
        written=outcome.written,
        differs=outcome.differs,
        held=round(outcome.held, 3),
        seconds=round(time.monotonic() - began, 3),
    )
    return outcome


async def _finish(
    conn: asyncpg.Connection,
    copies: readmodel.Tables,
    position: int,
    events: int,
    batch_size: int,
    check: bool,
    sample: int,
) -> Outcome:
    """The locked part, in the caller's transaction."""
    live_position = await tracking.lock_position(conn, domain.TRACKING_NAME)
    # Appends commit in position order (the log's append lock), so every event up
    # to the head is visible now; later ones are the live projector's again.
    head = max(await handlers.log_head(conn), position)
    position, more = await replay(conn, copies, position, head, batch_size, complete=not check)
    if check:
        await replay(conn, readmodel, live_position, head, batch_size, complete=True)
        found = [
            await shadow.differences(conn, live, copy, sample)
            for live, copy in zip(readmodel.LIVE.names(), copies.names(), strict=True)
        ]
        return Outcome(position=head, events=events + more, differences=tuple(found))
    written = {
        live: await shadow.copy_into(conn, copy, live)
        for live, copy in zip(readmodel.LIVE.names(), copies.names(), strict=True)
    }
    await tracking.save_position(conn, domain.TRACKING_NAME, head)
    return Outcome(position=head, events=events + more, written=written)
