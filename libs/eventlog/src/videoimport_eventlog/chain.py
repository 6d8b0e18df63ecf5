"""The hash chain that makes the event log tamper-evident (pure: no I/O).

Every row stores ``hash = sha256(previous row's hash || the row's bytes)``, the
first row chaining from ``GENESIS_HASH``. Changing, removing or reordering a
row changes every hash after it, so an auditor who noted the head hash (the
last row's) at some point can tell that nothing up to there was touched since.
The chain has no secret: whoever can rewrite the table can also re-seal it from
the first edited row on. It proves nothing without a head hash kept elsewhere.

Which bytes a row contributes is its ``chain_version``:

1. The first release: event id, stream, stream version, type and data. Not
   "when" (``occurred_at``, ``recorded_at``) nor "which job" (``correlation_id``).
   Rows written before migration 0009 keep it, as does a writer that predates
   chain versions (the column defaults to 1), so they still verify.
2. Every column an auditor relies on (``encode_row``), led by the version
   itself (so a row cannot be passed off as sealed by the weaker formula
   without breaking the chain after it).
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

GENESIS_HASH = b"\x00" * 32
LEGACY_CHAIN = 1
CURRENT_CHAIN = 2
KNOWN_CHAINS = (LEGACY_CHAIN, CURRENT_CHAIN)

# A NULL field: a length no PostgreSQL field can have (its limit is 1 GB).
_NULL = b"\xff\xff\xff\xff"
_FIXED_WIDTH = struct.Struct(">hqiiqq16s")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

MISSING = "missing (a gap: the event was deleted or moved to another position)"
MISMATCH = (
    "hash mismatch (data, occurred_at or another covered column was altered,"
    " or events were reordered)"
)


class ChainRow(NamedTuple):
    """The columns of one ``events`` row that the chain covers, as stored, in the
    table's column order (an append inserts a row as these values and its hash).

    A NamedTuple rather than a frozen dataclass: every append builds one per row,
    and it is several times cheaper to make.
    """

    position: int
    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    event_type: str
    schema_version: int
    data: str
    """The ``data`` column's text, verbatim (``json`` keeps it character for character)."""
    project: str
    correlation_id: str
    causation_id: str | None
    occurred_at: datetime
    recorded_at: datetime
    chain_version: int = CURRENT_CHAIN


class ChainBroken(ValueError):
    """The first position at which the log stops verifying, and why."""

    def __init__(self, position: int, problem: str) -> None:
        super().__init__(f"event log: position {position}: {problem}")
        self.position = position
        self.problem = problem


def epoch_microseconds(moment: datetime) -> int:
    """Microseconds since 1970-01-01T00:00:00Z: the instant PostgreSQL stores, exactly
    (its resolution), whatever the time zone. A naive datetime counts as local time,
    as asyncpg stores it."""
    if moment.tzinfo is None:
        moment = moment.astimezone(UTC)
    return (moment - _EPOCH) // _MICROSECOND


def chain_hash(
    previous: bytes,
    event_id: uuid.UUID,
    stream_id: str,
    stream_version: int,
    event_type: str,
    data: bytes,
) -> bytes:
    """Chain version 1, exactly as the first release computed it."""
    digest = hashlib.sha256(previous)
    for part in (str(event_id), stream_id, str(stream_version), event_type):
        digest.update(part.encode())
        digest.update(b"\x1f")
    digest.update(data)
    return digest.digest()


def encode_row(row: ChainRow) -> bytes:
    """Chain version 2's bytes of a row.

    First the fixed-width columns, big-endian as PostgreSQL sends them: the chain
    version (int16, 2), position (int64), stream version and schema version
    (int32 each), occurred_at and recorded_at (int64 each, ``epoch_microseconds``),
    the event id (its 16 bytes). Then stream id, event type, project, correlation
    id, causation id and data, each as its UTF-8 length (uint32) and bytes, NULL
    as the length 2**32 - 1 alone. Fixed widths and length prefixes: no two rows
    encode alike.
    """
    parts = [
        _FIXED_WIDTH.pack(
            CURRENT_CHAIN,
            row.position,
            row.stream_version,
            row.schema_version,
            epoch_microseconds(row.occurred_at),
            epoch_microseconds(row.recorded_at),
            row.event_id.bytes,
        )
    ]
    for text in (
        row.stream_id,
        row.event_type,
        row.project,
        row.correlation_id,
        row.causation_id,
        row.data,
    ):
        if text is None:
            parts.append(_NULL)
        else:
            encoded = text.encode()
            parts += (len(encoded).to_bytes(4, "big"), encoded)
    return b"".join(parts)


def row_hash(previous: bytes, row: ChainRow) -> bytes:
    """The hash that seals ``row`` after a row whose hash is ``previous``."""
    if row.chain_version == CURRENT_CHAIN:
        return hashlib.sha256(previous + encode_row(row)).digest()
    if row.chain_version == LEGACY_CHAIN:
        return chain_hash(
            previous,
            row.event_id,
            row.stream_id,
            row.stream_version,
            row.event_type,
            row.data.encode(),
        )
    raise ValueError(f"unknown chain version {row.chain_version}")


class ChainVerifier:
    """Checks rows handed to it in position order, from position 1 on.

    ``check`` raises ``ChainBroken`` at the first row that is not where the
    chain expects it (a gap) or whose hash does not follow from the one before.
    """

    def __init__(self) -> None:
        self.head = GENESIS_HASH
        self.checked = 0

    def check(self, row: ChainRow, stored_hash: bytes) -> None:
        expected = self.checked + 1
        if row.position != expected:
            raise ChainBroken(expected, MISSING)
        if row.chain_version not in KNOWN_CHAINS:
            raise ChainBroken(
                row.position,
                f"unknown chain version {row.chain_version} (altered, or written by newer code)",
            )
        sealed = row_hash(self.head, row)
        if sealed != stored_hash:
            raise ChainBroken(row.position, MISMATCH)
        self.head = sealed
        self.checked = expected
