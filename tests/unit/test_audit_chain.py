"""The hash chain's encoding and its verifier (pure, no database)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from videoimport_eventlog.chain import (
    GENESIS_HASH,
    LEGACY_CHAIN,
    ChainBroken,
    ChainRow,
    ChainVerifier,
    chain_hash,
    encode_row,
    epoch_microseconds,
    row_hash,
)

WHEN = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
ROW = ChainRow(
    position=7,
    event_id=uuid.UUID("00000000-0000-4000-8000-000000000007"),
    stream_id="job-j1/video-0",
    stream_version=1,
    event_type="VideoImportFailed",
    schema_version=1,
    data='{"type":"VideoImportFailed","reason":"é"}',
    project="acme",
    correlation_id="j1",
    causation_id="00000000-0000-4000-8000-000000000006",
    occurred_at=WHEN,
    recorded_at=WHEN + timedelta(microseconds=1234),
)


def test_the_first_releases_rows_keep_their_hash() -> None:
    """Position 1 of tests/fixtures/schema/release-0.1.sql, hashed by the old code."""
    data = (
        b'{"type":"ImportRequested","job_id":"legacyjob0001","project":"legacy",'
        b'"system_name":"archive","api_version":"2025-03","video_count":1,"webhook":null,'
        b'"context":null,"idempotency_key":null}'
    )
    sealed = chain_hash(
        GENESIS_HASH,
        uuid.UUID("00000000-0000-4000-8000-000000000001"),
        "job-legacyjob0001",
        0,
        "ImportRequested",
        data,
    )
    assert sealed.hex() == "79ed98054c978cfcb7eb48031305e7394503d1ec661ad0e96f80590e1a941d5d"
    legacy_row = ChainRow(
        position=1,
        event_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
        stream_id="job-legacyjob0001",
        stream_version=0,
        event_type="ImportRequested",
        schema_version=1,
        data=data.decode(),
        project="legacy",
        correlation_id="legacyjob0001",
        causation_id=None,
        occurred_at=WHEN,
        recorded_at=WHEN,
        chain_version=LEGACY_CHAIN,
    )
    assert row_hash(GENESIS_HASH, legacy_row) == sealed


def test_version_2_encodes_every_column_in_a_fixed_layout() -> None:
    # Every log written since migration 0009 depends on these exact bytes: a change
    # here is a new chain version, never an edit.
    def text(value: str) -> bytes:
        return len(value.encode()).to_bytes(4, "big") + value.encode()

    fixed_width = (
        (2).to_bytes(2, "big")  # chain version
        + (7).to_bytes(8, "big")  # position
        + (1).to_bytes(4, "big")  # stream version
        + (1).to_bytes(4, "big")  # schema version
        + (1_795_858_200_000_000).to_bytes(8, "big")  # occurred_at: 2026-11-28T09:30:00Z
        + (1_795_858_200_001_234).to_bytes(8, "big")  # recorded_at
        + bytes.fromhex("00000000000040008000000000000007")  # event id
    )
    cause = text("00000000-0000-4000-8000-000000000006")
    assert encode_row(ROW) == fixed_width + b"".join(
        [
            text("job-j1/video-0"),
            text("VideoImportFailed"),
            text("acme"),
            text("j1"),
            cause,
            text('{"type":"VideoImportFailed","reason":"é"}'),  # é: 2 bytes, 1 character
        ]
    )
    assert row_hash(GENESIS_HASH, ROW) == hashlib.sha256(GENESIS_HASH + encode_row(ROW)).digest()
    assert encode_row(ROW._replace(causation_id=None)) == encode_row(ROW).replace(
        cause, b"\xff\xff\xff\xff"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"position": 8},
        {"event_id": uuid.UUID("00000000-0000-4000-8000-000000000008")},
        {"stream_id": "job-j1/video-1"},
        {"stream_version": 2},
        {"event_type": "VideoImported"},
        {"schema_version": 2},
        {"data": '{"type":"VideoImportFailed","reason":"e"}'},
        {"project": "other"},
        {"correlation_id": "j2"},
        {"causation_id": None},
        {"causation_id": ""},
        {"occurred_at": WHEN + timedelta(microseconds=1)},
        {"recorded_at": WHEN},
        {"chain_version": LEGACY_CHAIN},
    ],
)
def test_every_covered_column_changes_the_hash(change: dict[str, object]) -> None:
    changed = ROW._replace(**change)  # type: ignore[arg-type]
    assert row_hash(GENESIS_HASH, changed) != row_hash(GENESIS_HASH, ROW)


def test_no_two_rows_encode_alike_across_field_boundaries() -> None:
    shifted = ROW._replace(project="acmej", correlation_id="1")
    assert encode_row(shifted) != encode_row(ROW)
    # NULL and empty text are different values.
    assert encode_row(ROW._replace(causation_id=None)) != encode_row(ROW._replace(causation_id=""))


def test_the_same_instant_in_any_time_zone_hashes_alike() -> None:
    elsewhere = WHEN.astimezone(timezone(timedelta(hours=5, minutes=30)))
    changed = ROW._replace(occurred_at=elsewhere)
    assert row_hash(GENESIS_HASH, changed) == row_hash(GENESIS_HASH, ROW)
    assert epoch_microseconds(elsewhere) == epoch_microseconds(WHEN) == 1_795_858_200_000_000
    assert epoch_microseconds(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == -1
    naive_local = WHEN.astimezone().replace(tzinfo=None)  # as asyncpg reads a naive one
    assert epoch_microseconds(naive_local) == epoch_microseconds(WHEN)


def sealed_log(count: int) -> list[tuple[ChainRow, bytes]]:
    rows, previous = [], GENESIS_HASH
    for position in range(1, count + 1):
        row = ROW._replace(position=position)
        previous = row_hash(previous, row)
        rows.append((row, previous))
    return rows


def test_the_verifier_follows_the_chain_to_its_head() -> None:
    verifier = ChainVerifier()
    log = sealed_log(3)
    for row, stored in log:
        verifier.check(row, stored)
    assert (verifier.checked, verifier.head) == (3, log[-1][1])


def test_the_verifier_names_the_first_gap() -> None:
    verifier = ChainVerifier()
    first, _, third = sealed_log(3)
    verifier.check(*first)
    with pytest.raises(ChainBroken, match="position 2: missing") as broken:
        verifier.check(*third)
    assert broken.value.position == 2


def test_the_verifier_names_an_altered_row() -> None:
    verifier = ChainVerifier()
    first, (second, stored), _ = sealed_log(3)
    verifier.check(*first)
    with pytest.raises(ChainBroken, match="position 2: hash mismatch") as broken:
        verifier.check(second._replace(correlation_id="other"), stored)
    assert broken.value.problem.startswith("hash mismatch (data, occurred_at")
    with pytest.raises(ChainBroken, match="position 2: unknown chain version 9"):
        verifier.check(second._replace(chain_version=9), stored)
    assert verifier.checked == 1
