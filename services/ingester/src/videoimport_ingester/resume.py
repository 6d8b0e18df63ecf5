"""Whether an interrupted download may continue where it broke off (pure).

A download continues with ``Range: bytes=<offset>-`` and ``If-Range: <validator>``
only when its first response said it could: ``Accept-Ranges: bytes``, a
``Content-Length`` (the total to check the answer against) and a validator, a
strong ``ETag`` or else ``Last-Modified`` (a weak ``W/`` ETag is not allowed in
If-Range). The answer is taken only when it is a ``206`` carrying exactly the
rest of the same representation; anything else (a ``200``: the source changed or
ignores ranges) means starting over.

Headers are read from a case-insensitive mapping (aiohttp's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Final

import msgspec

MAX_VALIDATOR_CHARS: Final = 256
"""A longer validator is not sent back to the source: such a download starts over."""
_CONTENT_RANGE: Final = re.compile(r"bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19}|\*)")
_STRONG_ETAG: Final = re.compile(r'"[\x21\x23-\x7e]*"')
"""ASCII only: the value is sent back as a request header."""


class ResumeToken(msgspec.Struct, frozen=True, kw_only=True):
    """What a range request needs to ask for the rest of the same representation."""

    validator: str
    """The ``ETag`` (strong) or else the ``Last-Modified`` of the first response."""
    is_etag: bool
    total: int
    """The full size, from the first response's ``Content-Length``."""


class ContentRange(msgspec.Struct, frozen=True):
    first: int
    last: int
    total: int | None
    """None for ``*`` (unknown)."""


def resume_token(headers: Mapping[str, str], content_length: int | None) -> ResumeToken | None:
    """How the download of this (2xx, full) response may continue; None: it cannot."""
    if content_length is None or not _accepts_byte_ranges(headers.get("Accept-Ranges")):
        return None
    etag = _strong_etag(headers.get("ETag"))
    if etag is not None:
        return ResumeToken(validator=etag, is_etag=True, total=content_length)
    if headers.get("ETag") is not None:
        # A weak ETag means the bytes may differ under the same tag: a date
        # cannot promise more, so such a download starts over.
        return None
    modified = _http_date(headers.get("Last-Modified"))
    if modified is None:
        return None
    return ResumeToken(validator=modified, is_etag=False, total=content_length)


def can_resume(token: ResumeToken, offset: int) -> bool:
    """Whether ``offset`` bytes received leave a rest to ask for."""
    return 0 <= offset < token.total


def range_headers(token: ResumeToken, offset: int) -> dict[str, str]:
    return {"Range": f"bytes={offset}-", "If-Range": token.validator}


def continues(token: ResumeToken, offset: int, status: int, headers: Mapping[str, str]) -> bool:
    """Whether the answer to ``range_headers(token, offset)`` is the rest of the same bytes."""
    if status != 206:
        return False
    served = parse_content_range(headers.get("Content-Range"))
    if served is None or (served.first, served.last) != (offset, token.total - 1):
        return False
    if served.total != token.total:
        return False
    # If-Range already asked the source to compare; a source that honours Range but
    # ignores If-Range is caught here when it names its (changed) validator.
    name = "ETag" if token.is_etag else "Last-Modified"
    named = headers.get(name)
    return named is None or named.strip() == token.validator


def parse_content_range(value: str | None) -> ContentRange | None:
    """A ``Content-Range: bytes first-last/total`` header; None for anything else."""
    if value is None:
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        return None
    first, last = int(match[1]), int(match[2])
    total = None if match[3] == "*" else int(match[3])
    if last < first or (total is not None and last >= total):
        return None
    return ContentRange(first, last, total)


def _accepts_byte_ranges(value: str | None) -> bool:
    if value is None:
        return False
    return any(unit.strip().lower() == "bytes" for unit in value.split(","))


def _strong_etag(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > MAX_VALIDATOR_CHARS or not _STRONG_ETAG.fullmatch(value):
        return None
    return value


def _http_date(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > MAX_VALIDATOR_CHARS:
        return None
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return value
