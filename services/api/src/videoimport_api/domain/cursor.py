"""Opaque page cursors: where the previous page ended, and which query it belongs to.

A cursor is the URL-safe base64 (unpadded) of a small MessagePack array: a tag, the
query's filters and the last row's sort key. Pagination is keyset, so rows inserted
meanwhile neither repeat nor hide rows of later pages. Cursors are not signed: the
queries are always limited to the caller's project, so a forged cursor can only
start a page of the caller's own rows somewhere else. Anything that is not exactly
a cursor of this query (another query's, other filters, bytes that do not decode,
padding, a non-canonical encoding, text no id can hold) is a 400 naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

import msgspec

from videoimport_api.domain.errors import ApiError, FieldError
from videoimport_api.domain.json_limits import identity_problem

FIELD: Final = "cursor"
MAX_CURSOR_CHARS: Final = 1024
_ALPHABET: Final = re.compile(r"[A-Za-z0-9_-]+")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


class JobsCursor(msgspec.Struct, frozen=True, array_like=True, tag="jobs"):
    """After this job in the listing (``started_at`` desc, ``job_id`` desc)."""

    state: str | None
    system_name: str | None
    started_at_us: int
    """``started_at`` in microseconds since the epoch: exact, unlike a float."""
    job_id: str


class VideosCursor(msgspec.Struct, frozen=True, array_like=True, tag="videos"):
    """After this video (by index) of one job's status."""

    job_id: str
    state: str | None
    index: int


Cursor = TypeVar("Cursor", JobsCursor, VideosCursor)

_encoder: Final = msgspec.msgpack.Encoder()


def encode(cursor: JobsCursor | VideosCursor) -> str:
    return base64.urlsafe_b64encode(_encoder.encode(cursor)).rstrip(b"=").decode("ascii")


def decode(raw: str, kind: type[Cursor]) -> Cursor:
    """The cursor of ``kind`` in ``raw``; a 400 for anything else."""
    if len(raw) > MAX_CURSOR_CHARS or not _ALPHABET.fullmatch(raw):
        raise invalid()
    try:
        packed = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True)
        cursor = msgspec.msgpack.decode(packed, type=kind)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise invalid() from None
    # One encoding per cursor: a re-spelled one (other base64 tail bits, another
    # msgpack integer width) was not made here.
    if encode(cursor) != raw:
        raise invalid()
    # Its text goes into queries: nothing PostgreSQL refuses (NUL) or no id has.
    if any(isinstance(v, str) and identity_problem(v) for v in msgspec.structs.astuple(cursor)):
        raise invalid()
    return cursor


def invalid(reason: str = "not a cursor this API gave out") -> ApiError:
    return ApiError(400, f"invalid query parameter {FIELD}", [FieldError(FIELD, reason)])


def micros(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    try:
        return _EPOCH + value * _MICROSECOND
    except OverflowError:
        raise invalid() from None
