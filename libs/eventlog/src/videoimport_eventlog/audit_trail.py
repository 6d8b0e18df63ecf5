"""Reading the hash chain back from ``events`` and checking it, for auditors.

Rows are read undecoded (as the chain covers them, ``chain.ChainRow``), so events of
types this code does not know verify too.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from videoimport_eventlog.chain import ChainRow, ChainVerifier

_CHAIN_COLUMNS = (
    "position, event_id, stream_id, stream_version, event_type, schema_version, data::text,"
    " project, correlation_id, causation_id, occurred_at, recorded_at, chain_version, hash"
)


def _chain_row(row: asyncpg.Record) -> tuple[ChainRow, bytes]:
    # _CHAIN_COLUMNS are named as ChainRow's fields, plus the stored hash.
    columns = dict(row.items())
    stored_hash = bytes(columns.pop("hash"))
    return ChainRow(**columns), stored_hash


async def read_chain(
    conn: asyncpg.Connection, after: int, limit: int, up_to: int | None = None
) -> list[tuple[ChainRow, bytes]]:
    """Rows after ``after`` (at most up to ``up_to``) as the chain covers them, with
    their stored hash; nothing is decoded, so events of unknown types verify too."""
    rows = await conn.fetch(
        f"SELECT {_CHAIN_COLUMNS} FROM events WHERE position > $1"
        " AND ($2::bigint IS NULL OR position <= $2) ORDER BY position LIMIT $3",
        after,
        up_to,
        limit,
    )
    return [_chain_row(r) for r in rows]


async def check_chain(
    conn: asyncpg.Connection,
    *,
    batch: int = 1000,
    up_to: int | None = None,
    progress: Callable[[ChainVerifier], None] | None = None,
) -> ChainVerifier:
    """Recompute the hash chain from position 1 (to ``up_to``), ``batch`` rows at a
    time; ``progress`` sees the verifier after each batch. Returns it at the end
    (``checked``, ``head``); raises ``ChainBroken`` at the first gap or mismatch."""
    verifier = ChainVerifier()
    while rows := await read_chain(conn, verifier.checked, batch, up_to):
        for row, stored_hash in rows:
            verifier.check(row, stored_hash)
        if progress is not None:
            progress(verifier)
    return verifier


async def verify_chain(conn: asyncpg.Connection, batch: int = 1000) -> int:
    """Recompute the hash chain; returns the number of events checked.

    Raises ``ChainBroken`` (a ``ValueError``) naming the first position that is
    missing or altered.
    """
    return (await check_chain(conn, batch=batch)).checked
