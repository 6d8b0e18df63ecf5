"""Every structural rejection of an import request names its exact field and reason."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from videoimport_api.domain.errors import FieldError
from videoimport_api.domain.validation import (
    CONTEXT_MAX_BYTES,
    MAX_REPORTED_ERRORS,
    ImportCommand,
    Invalid,
    VideoSpec,
    parse_import_request,
)

# The seed's "Example Request", verbatim.
SEED_EXAMPLE = b"""{
"systemName": "identifier-for-your-system",
"webhook": "https://my-domain.com/webhooks/video-import",
"context": {
"myIdentifier": "some-identifier-sent-to-the-webhook"
},
"videos": [
{
"url": "https://www.learningcontainer.com/wp-content/uploads/2020/05/sample-mp4-file.mp4",
"id": "123abc",
"fileName": "foo",
"metadata": {
"title": "sample video",
"credit": "LC"
}
}
]
}"""

# The body of the seed's curl example, verbatim: a comma is missing after "sample video".
SEED_CURL_BODY = b"""{
"systemName": "identifier-for-your-system",
"webhook": "https://my-domain.com/webhooks/video-import",
"videos": [
{
"url": "https://www.learningcontainer.com/wp-content/uploads/2020/05/sample-mp4-file.mp4",
"id": "123abc",
"fileName": "sample",
"metadata": {
"title": "sample video"
"credit": "LC"
}
}
]
}"""


def video(index: int = 0, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "url": f"https://videos.example.com/{index}.mp4",
        "id": f"ext-{index}",
        "fileName": f"video {index}",
        "metadata": {"title": f"title {index}"},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def request(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"systemName": "archive", "videos": [video(0)]}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


def errors_of(document: Any, max_batch: int = 1000) -> list[FieldError]:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    parsed = parse_import_request(body, max_batch=max_batch)
    assert isinstance(parsed, Invalid), parsed
    return parsed.errors


def only_error(document: Any, max_batch: int = 1000) -> FieldError:
    errors = errors_of(document, max_batch)
    assert len(errors) == 1, errors
    return errors[0]


def test_the_seed_example_request_is_accepted() -> None:
    parsed = parse_import_request(SEED_EXAMPLE, max_batch=1000)
    assert parsed == ImportCommand(
        system_name="identifier-for-your-system",
        webhook="https://my-domain.com/webhooks/video-import",
        context={"myIdentifier": "some-identifier-sent-to-the-webhook"},
        videos=(
            VideoSpec(
                url="https://www.learningcontainer.com/wp-content/uploads/2020/05/sample-mp4-file.mp4",
                external_id="123abc",
                file_name="foo",
                metadata={"title": "sample video", "credit": "LC"},
            ),
        ),
    )


def test_the_seed_curl_body_is_rejected_at_the_missing_comma() -> None:
    error = only_error(SEED_CURL_BODY)
    assert error.field == "body"
    # The comma is missing at the end of line 10; the parser stops at the next key, on line 11.
    assert error.reason.startswith("invalid JSON: expected ',' or '}'")
    assert "at line 11, column 1 " in error.reason


@pytest.mark.parametrize(
    ("body", "reason_part"),
    [
        (b"", "the request body is empty"),
        (b"   \n", "the request body is empty"),
        (b'{"systemName": "a"', "unexpected end of input at line 1, column 19 (byte 18)"),
        (b'{"systemName": "a"} trailing', "trailing characters at line 1"),
        (b'{"systemName": "\xff"}', "not UTF-8"),
    ],
)
def test_malformed_json_says_where(body: bytes, reason_part: str) -> None:
    error = only_error(body)
    assert error.field == "body"
    assert reason_part in error.reason


@pytest.mark.parametrize("document", [[], "text", 3, None])
def test_the_body_must_be_an_object(document: Any) -> None:
    error = only_error(document)
    assert error.field == "body"
    assert error.reason.startswith("must be a JSON object, not ")


@pytest.mark.parametrize(
    ("document", "field", "reason"),
    [
        (request(systemName=_DROP), "systemName", "required"),
        (request(systemName=None), "systemName", "must be a string, not null"),
        (request(systemName=7), "systemName", "must be a string, not a number"),
        (request(systemName=""), "systemName", "must not be empty"),
        (request(systemName="   "), "systemName", "must not be empty"),
        (request(systemName="x" * 256), "systemName", "must be at most 255 characters"),
        (request(videos=_DROP), "videos", "required"),
        (request(videos={"0": video()}), "videos", "must be an array, not an object"),
        (request(videos=[]), "videos", "must contain at least one video"),
        (
            request(videos=["https://a.example/x.mp4"]),
            "videos[0]",
            "must be an object, not a string",
        ),
        (request(videos=[video(url=_DROP)]), "videos[0].url", "required"),
        (request(videos=[video(id=_DROP)]), "videos[0].id", "required"),
        (request(videos=[video(fileName=_DROP)]), "videos[0].fileName", "required"),
        (request(videos=[video(metadata=_DROP)]), "videos[0].metadata", "required"),
        (request(videos=[video(id=123)]), "videos[0].id", "must be a string, not a number"),
        (request(videos=[video(id="")]), "videos[0].id", "must not be empty"),
        (request(videos=[video(fileName="")]), "videos[0].fileName", "must not be empty"),
        (
            request(videos=[video(fileName=True)]),
            "videos[0].fileName",
            "must be a string, not a boolean",
        ),
        (
            request(videos=[video(metadata=[])]),
            "videos[0].metadata",
            "must be an object, not an array",
        ),
        (
            request(videos=[video(metadata=None)]),
            "videos[0].metadata",
            "must be an object, not null",
        ),
        (request(context=[1]), "context", "must be an object, not an array"),
        (request(context="ctx"), "context", "must be an object, not a string"),
        (request(webhook=5), "webhook", "must be a string, not a number"),
        (request(webhook=""), "webhook", "must not be empty"),
    ],
)
def test_each_structural_problem_names_its_field(
    document: dict[str, Any], field: str, reason: str
) -> None:
    assert only_error(document) == FieldError(field, reason)


@pytest.mark.parametrize(
    ("url", "reason_part"),
    [
        ("ftp://videos.example.com/a.mp4", "must be an http or https URL (scheme is 'ftp')"),
        ("file:///etc/passwd", "must be an http or https URL (scheme is 'file')"),
        ("javascript:alert(1)", "must be an http or https URL"),
        ("videos.example.com/a.mp4", "must be an http or https URL (scheme is none)"),
        ("https:///a.mp4", "must name a host"),
        ("http://", "must name a host"),
        ("https://videos.example.com:99999/a.mp4", "is not a valid URL"),
        ("https://videos.example.com/a b.mp4", "must not contain whitespace"),
        ("https://[::1/a.mp4", "is not a valid URL"),
    ],
)
def test_urls_must_be_http_with_a_host(url: str, reason_part: str) -> None:
    error = only_error(request(videos=[video(1), video(2, url=url)]))
    assert error.field == "videos[1].url"
    assert reason_part in error.reason
    webhook_error = only_error(request(webhook=url))
    assert webhook_error.field == "webhook"
    assert reason_part in webhook_error.reason


def test_a_webhook_is_optional_and_null_means_none() -> None:
    parsed = parse_import_request(json.dumps(request(webhook=None)).encode(), max_batch=10)
    assert isinstance(parsed, ImportCommand)
    assert parsed.webhook is None


def test_context_is_limited_to_8192_bytes_as_json() -> None:
    # {"k":"<filler>"} is 8 bytes of framing around the filler.
    fits = {"k": "x" * (CONTEXT_MAX_BYTES - 8)}
    assert len(msgspec.json.encode(fits)) == CONTEXT_MAX_BYTES
    parsed = parse_import_request(json.dumps(request(context=fits)).encode(), max_batch=10)
    assert isinstance(parsed, ImportCommand)
    assert parsed.context == fits

    too_big = {"k": "x" * (CONTEXT_MAX_BYTES - 7)}
    assert only_error(request(context=too_big)) == FieldError(
        "context", "must be at most 8192 bytes as JSON, is 8193"
    )


def test_a_duplicate_id_names_both_indexes() -> None:
    videos = [video(0), video(1), video(2, id="ext-0"), video(3, id="ext-1")]
    assert errors_of(request(videos=videos)) == [
        FieldError("videos[2].id", "duplicate id 'ext-0': also videos[0].id"),
        FieldError("videos[3].id", "duplicate id 'ext-1': also videos[1].id"),
    ]


def test_a_duplicate_is_named_even_when_the_first_is_otherwise_invalid() -> None:
    videos = [video(0, url="ftp://x/y"), video(1, id="ext-0")]
    assert [e.field for e in errors_of(request(videos=videos))] == [
        "videos[0].url",
        "videos[1].id",
    ]


def test_the_batch_size_is_limited() -> None:
    videos = [video(i) for i in range(4)]
    assert only_error(request(videos=videos), max_batch=3) == FieldError(
        "videos", "must contain at most 3 videos, got 4"
    )
    parsed = parse_import_request(json.dumps(request(videos=videos)).encode(), max_batch=4)
    assert isinstance(parsed, ImportCommand)
    assert [v.external_id for v in parsed.videos] == ["ext-0", "ext-1", "ext-2", "ext-3"]


def test_all_problems_are_reported_together_in_order() -> None:
    document = {
        "systemName": "",
        "context": 1,
        "videos": [video(0), video(1, url="nope", fileName=None), video(2, metadata="x")],
    }
    assert [e.field for e in errors_of(document)] == [
        "systemName",
        "context",
        "videos[1].url",
        "videos[1].fileName",
        "videos[2].metadata",
    ]


def test_the_error_list_is_capped() -> None:
    videos = [video(i, url="nope") for i in range(MAX_REPORTED_ERRORS + 5)]
    errors = errors_of(request(videos=videos))
    assert len(errors) == MAX_REPORTED_ERRORS + 1
    assert errors[-1] == FieldError("body", "5 more errors not shown")


def test_unknown_keys_are_ignored_and_metadata_is_kept_as_given() -> None:
    metadata = {"title": 5, "anything": {"nested": [1, 2]}}
    document = request(extra="ignored", videos=[video(0, metadata=metadata, unknown=True)])
    parsed = parse_import_request(json.dumps(document).encode(), max_batch=10)
    assert isinstance(parsed, ImportCommand)
    # Metadata is checked against the project config per video, later, by the ingester.
    assert parsed.videos[0].metadata == metadata
