"""When an interrupted download may continue with a range request (pure)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict
from videoimport_ingester.resume import (
    MAX_VALIDATOR_CHARS,
    ContentRange,
    ResumeToken,
    can_resume,
    continues,
    parse_content_range,
    range_headers,
    resume_token,
)

DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
ETAG = '"v1-abc"'
TOKEN = ResumeToken(validator=ETAG, is_etag=True, total=1000)


def headers(**values: str) -> CIMultiDict[str]:
    return CIMultiDict((name.replace("_", "-"), value) for name, value in values.items())


def test_a_strong_etag_is_the_validator_even_with_a_date() -> None:
    found = resume_token(headers(accept_ranges="bytes", etag=ETAG, last_modified=DATE), 1000)
    assert found == TOKEN


def test_without_an_etag_the_date_is_the_validator() -> None:
    found = resume_token(headers(Accept_Ranges="none, Bytes", last_modified=DATE), 10)
    assert found == ResumeToken(validator=DATE, is_etag=False, total=10)


@pytest.mark.parametrize(
    ("values", "length"),
    [
        ({"etag": ETAG}, 1000),  # no Accept-Ranges
        ({"accept_ranges": "none", "etag": ETAG}, 1000),
        ({"accept_ranges": "bytes", "etag": ETAG}, None),  # no length to check against
        ({"accept_ranges": "bytes"}, 1000),  # no validator
        ({"accept_ranges": "bytes", "etag": 'W/"v1"', "last_modified": DATE}, 1000),
        ({"accept_ranges": "bytes", "etag": "v1-unquoted"}, 1000),
        ({"accept_ranges": "bytes", "etag": '"caf\u00e9"'}, 1000),
        ({"accept_ranges": "bytes", "etag": '"' + "x" * MAX_VALIDATOR_CHARS + '"'}, 1000),
        ({"accept_ranges": "bytes", "last_modified": "yesterday"}, 1000),
    ],
)
def test_no_resume_without_ranges_a_length_and_a_usable_validator(
    values: dict[str, str], length: int | None
) -> None:
    assert resume_token(headers(**values), length) is None


def test_the_range_request_asks_for_the_rest_of_the_same_version() -> None:
    assert range_headers(TOKEN, 600) == {"Range": "bytes=600-", "If-Range": ETAG}
    assert can_resume(TOKEN, 0) and can_resume(TOKEN, 999)
    assert not can_resume(TOKEN, 1000)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("bytes 0-9/10", ContentRange(0, 9, 10)),
        (" bytes 600-999/1000 ", ContentRange(600, 999, 1000)),
        ("bytes 5-9/*", ContentRange(5, 9, None)),
        ("bytes 9-5/10", None),
        ("bytes 0-10/10", None),
        ("bytes */10", None),
        ("items 0-9/10", None),
        ("bytes 0-9/10, 20-29/30", None),
        ("bytes -1-9/10", None),
        ("bytes 0-" + "9" * 20 + "/*", None),
        ("", None),
        (None, None),
    ],
)
def test_content_range_is_parsed_strictly(value: str | None, parsed: ContentRange | None) -> None:
    assert parse_content_range(value) == parsed


def test_only_a_206_with_exactly_the_rest_continues() -> None:
    rest = headers(content_range="bytes 600-999/1000", etag=ETAG)
    assert continues(TOKEN, 600, 206, rest)
    assert continues(TOKEN, 600, 206, headers(content_range="bytes 600-999/1000"))
    assert not continues(TOKEN, 600, 200, rest)  # changed, or ranges ignored
    assert not continues(TOKEN, 500, 206, rest)  # another start
    assert not continues(TOKEN, 600, 206, headers(content_range="bytes 600-899/1000"))
    assert not continues(TOKEN, 600, 206, headers(content_range="bytes 600-999/*"))
    assert not continues(TOKEN, 600, 206, headers(content_range="bytes 600-1199/1200"))
    assert not continues(TOKEN, 600, 206, headers(etag='"v2"', content_range="bytes 600-999/1000"))
    assert not continues(TOKEN, 600, 206, headers())  # multipart/byteranges has none


def test_a_date_validator_must_match_the_date_of_the_rest() -> None:
    token = ResumeToken(validator=DATE, is_etag=False, total=10)
    assert continues(token, 4, 206, headers(content_range="bytes 4-9/10", last_modified=DATE))
    later = "Thu, 22 Oct 2015 07:28:00 GMT"
    assert not continues(token, 4, 206, headers(content_range="bytes 4-9/10", last_modified=later))
