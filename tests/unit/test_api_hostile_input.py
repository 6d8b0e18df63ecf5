"""Input that could not be stored or sent is refused at the door, naming the exact field."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import msgspec
import pytest
from videoimport_api.domain.errors import FieldError
from videoimport_api.domain.json_limits import (
    CONTEXT_LIMITS,
    MAX_DEPTH,
    MAX_KEY_CHARS,
    METADATA_LIMITS,
    METADATA_MAX_BYTES,
    METADATA_MAX_KEYS,
    NESTED_MAX_KEYS,
    first_problem,
)
from videoimport_api.domain.validation import (
    CONTEXT_MAX_BYTES,
    MAX_EXTERNAL_ID,
    MAX_FILE_NAME,
    MAX_SYSTEM_NAME,
    MAX_URL,
    ImportCommand,
    Invalid,
    parse_import_request,
)
from videoimport_events import MAX_EVENT_BYTES, ImportRequested, VideoImportRequested, encode_event

from .test_api_validation import only_error, request, video


def parsed(document: Any, *, allow_private: bool = False) -> ImportCommand:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    result = parse_import_request(body, max_batch=1000, allow_private=allow_private)
    assert isinstance(result, ImportCommand), result
    return result


def raw_error(body: bytes) -> FieldError:
    result = parse_import_request(body, max_batch=1000)
    assert isinstance(result, Invalid), result
    assert len(result.errors) == 1, result.errors
    # Whatever is refused, the answer itself can always be encoded.
    msgspec.json.encode(result.errors)
    return result.errors[0]


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def with_body(metadata_json: bytes = b"{}", extra: bytes = b"") -> bytes:
    return (
        b'{"systemName": "archive", ' + extra + b'"videos": [{"url": "https://a.example/v.mp4",'
        b' "id": "x", "fileName": "f", "metadata": ' + metadata_json + b"}]}"
    )


# 1. Control characters and invalid Unicode -------------------------------------------------


@pytest.mark.parametrize(
    ("document", "field", "reason"),
    [
        (
            request(systemName="arch\u0000ive"),
            "systemName",
            "must not contain control character U+0000 at character 5",
        ),
        (
            request(videos=[video(0), video(1, id="a\x1fb")]),
            "videos[1].id",
            "must not contain control character U+001F at character 2",
        ),
        (
            request(videos=[video(0, fileName="line\nbreak")]),
            "videos[0].fileName",
            "must not contain control character U+000A at character 5",
        ),
        (
            request(videos=[video(0, url="https://a.example/\x7f.mp4")]),
            "videos[0].url",
            "must not contain control character U+007F at character 19",
        ),
        (
            request(webhook="https://hooks.example/\x00"),
            "webhook",
            "must not contain control character U+0000 at character 23",
        ),
        (
            request(videos=[video(0), video(1), video(2), video(3, metadata={"credit": "L\x00C"})]),
            "videos[3].metadata.credit",
            "must not contain control character U+0000 at character 2",
        ),
        (
            request(videos=[video(0, metadata={"a": {"b": [1, "ok", "bell\x07"]}})]),
            "videos[0].metadata.a.b[2]",
            "must not contain control character U+0007 at character 5",
        ),
        (
            request(videos=[video(0, metadata={"title": "t", "del": "x\x7f"})]),
            "videos[0].metadata.del",
            "must not contain control character U+007F at character 2",
        ),
        (
            request(videos=[video(0, metadata={"cr\x00dit": "LC"})]),
            'videos[0].metadata["cr\\u0000dit"]',
            "key must not contain control character U+0000 at character 3",
        ),
        (
            request(videos=[video(0, metadata={"a": [{"tab\tkey": 1}]})]),
            'videos[0].metadata.a[0]["tab\\u0009key"]',
            "key must not contain control character U+0009 at character 4",
        ),
        (
            request(context={"a": {"b": "\x00"}}),
            "context.a.b",
            "must not contain control character U+0000 at character 1",
        ),
        (
            request(context={"a": [{"k\x1b": 1}]}),
            'context.a[0]["k\\u001b"]',
            "key must not contain control character U+001B at character 2",
        ),
    ],
)
def test_control_characters_are_refused_naming_the_field(
    document: dict[str, Any], field: str, reason: str
) -> None:
    assert only_error(document) == FieldError(field, reason)


def test_tab_newline_and_carriage_return_are_fine_in_free_text() -> None:
    text = "line one\r\nline two\tend"
    command = parsed(request(context={"note": text}, videos=[video(0, metadata={"d": [text]})]))
    assert command.videos[0].metadata == {"d": [text]}
    assert command.context == {"note": text}


@pytest.mark.parametrize(
    ("body", "field", "reason_part"),
    [
        (
            b'{"systemName": "\\ud800", "videos": []}',
            "systemName",
            "must be valid Unicode: lone UTF-16 surrogate \\ud800 at line 1, column 16 (byte 15)",
        ),
        (
            with_body(b'{"title": "a\\udc00b"}'),
            "videos[0].metadata.title",
            "lone UTF-16 surrogate \\udc00",
        ),
        (
            with_body(b'{"x": [1, {"y": "\\uDBFF\\u0041"}]}'),
            "videos[0].metadata.x[1].y",
            "lone UTF-16 surrogate \\udbff",
        ),
        (
            with_body(b'{"ti\\ud800": "t"}'),
            'videos[0].metadata["ti\\ud800"]',
            "key must be valid Unicode: lone UTF-16 surrogate \\ud800",
        ),
        (
            with_body(extra=b'"context": {"a": {"b": "\\ud83d"}}, '),
            "context.a.b",
            "lone UTF-16 surrogate \\ud83d",
        ),
        (
            b'{"systemName": "a", "videos": [{"fileName": "\\ud800',
            "videos[0].fileName",
            "lone UTF-16 surrogate \\ud800",
        ),
    ],
)
def test_lone_surrogates_are_refused_naming_the_field(
    body: bytes, field: str, reason_part: str
) -> None:
    error = raw_error(body)
    assert error.field == field
    assert reason_part in error.reason


def test_surrogate_pairs_and_escaped_backslashes_are_fine() -> None:
    command = parsed(with_body(b'{"title": "\\ud83d\\ude00 and \\\\ud800"}'))
    assert command.videos[0].metadata == {"title": "\U0001f600 and \\ud800"}


def test_the_walk_itself_refuses_lone_surrogates() -> None:
    # msgspec never decodes one; the walk refuses them anyway, should a value come otherwise.
    assert first_problem({"a": ["\udfff"]}, "context", CONTEXT_LIMITS) == (
        "context.a[0]",
        "must be valid Unicode: lone UTF-16 surrogate U+DFFF at character 1",
    )


def test_identities_are_kept_exactly_as_sent_not_normalised() -> None:
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    command = parsed(request(systemName=nfd, videos=[video(0, id=nfc), video(1, id=nfd)]))
    assert command.system_name == nfd
    assert [v.external_id for v in command.videos] == [nfc, nfd]


# 2. URL hosts --------------------------------------------------------------------------------

LABEL_63 = "a" * 63
HOST_253 = ".".join([LABEL_63] * 3 + ["b" * 61])


@pytest.mark.parametrize(
    ("url", "reason_part"),
    [
        ("http://xn--a.com/v.mp4", "label 'xn--a' is not valid IDNA"),
        ("http://xn--ls8h.la/v.mp4", "label 'xn--ls8h' is not valid IDNA"),
        ("http://a..b/v.mp4", "host 'a..b' is not a valid hostname: empty label"),
        ("http://.a.com/v.mp4", "empty label"),
        ("http://" + "a" * 64 + ".com/v.mp4", "is 64 characters, more than 63"),
        ("http://" + HOST_253 + "c.com/v.mp4", "longer than 253 characters (258 as ASCII)"),
        ("http://-a.com/v.mp4", "label '-a' starts or ends with '-'"),
        ("http://a-.com/v.mp4", "label 'a-' starts or ends with '-'"),
        ("http://a%2fb.com/v.mp4", "label 'a%2fb' contains '%'"),
        ("http://a!b.com/v.mp4", "contains '!'"),
        ("http://\U0001f4a9.la/v.mp4", "is not valid IDNA"),
        ("http://[v1.fe]/v.mp4", "host [v1.fe] is not an IPv6 address"),
    ],
)
def test_url_hosts_must_be_valid_hostnames(url: str, reason_part: str) -> None:
    error = only_error(request(videos=[video(0), video(1, url=url)]))
    assert error.field == "videos[1].url"
    assert reason_part in error.reason
    webhook_error = only_error(request(webhook=url))
    assert webhook_error.field == "webhook"
    assert reason_part in webhook_error.reason


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v.mp4",
        "http://[::1]/v.mp4",
        "https://[2001:db8::1]:8443/v.mp4",
        "https://bücher.example/v.mp4",
        "https://BÜCHER.example/v.mp4",
        "https://xn--bcher-kva.example/v.mp4",
        "https://r3---sn-abc.googlevideo.com/videoplayback",
        "https://videos.example.com./v.mp4",
        "https://my_bucket.s3.example.com/v.mp4",
        "https://user:pw@videos.example.com/v.mp4",
        f"https://{LABEL_63}.example/v.mp4",
        f"https://{HOST_253}/v.mp4",
    ],
)
def test_valid_hosts_and_ip_literals_are_accepted(url: str) -> None:
    # Structure only: whether a literal address is public is test_api_url_literals' matter.
    command = parsed(request(webhook=url, videos=[video(0, url=url)]), allow_private=True)
    assert command.videos[0].url == url
    assert command.webhook == url


# 3. Metadata caps ----------------------------------------------------------------------------


def metadata_error(metadata: Any) -> FieldError:
    return only_error(request(videos=[video(0), video(1, metadata=metadata)]))


@pytest.mark.parametrize(
    ("metadata", "field", "reason"),
    [
        (
            {f"k{i}": i for i in range(METADATA_MAX_KEYS + 1)},
            "videos[1].metadata",
            "must have at most 200 keys at the top level, has 201",
        ),
        (
            {"a": {"b": {f"k{i}": i for i in range(NESTED_MAX_KEYS + 1)}}},
            "videos[1].metadata.a.b",
            "must have at most 100 keys in a nested object, has 101",
        ),
        ({"": 1}, 'videos[1].metadata[""]', "key must be 1 to 255 characters, is 0"),
        (
            {"a": [{"k" * (MAX_KEY_CHARS + 1): 1}]},
            'videos[1].metadata.a[0]["' + "k" * 40 + '…"]',
            "key must be 1 to 255 characters, is 256",
        ),
        (
            {"a": nested(MAX_DEPTH)},
            "videos[1].metadata.a[0][0][0][0][0][0][0]",
            "nested deeper than 8 levels of objects and arrays",
        ),
        (
            {"t": "x" * (METADATA_MAX_BYTES - 7)},
            "videos[1].metadata",
            "must be at most 65536 bytes as compact JSON, is 65537",
        ),
    ],
)
def test_metadata_caps_name_the_field_and_the_limit(metadata: Any, field: str, reason: str) -> None:
    assert metadata_error(metadata) == FieldError(field, reason)


def test_metadata_at_every_cap_is_accepted() -> None:
    at_caps = {f"k{i}": i for i in range(METADATA_MAX_KEYS - 4)}
    at_caps["n"] = {f"k{i}": i for i in range(NESTED_MAX_KEYS)}
    at_caps["d"] = nested(MAX_DEPTH - 1)  # the metadata object itself is level 1
    at_caps["k" * MAX_KEY_CHARS] = 1
    filler = METADATA_MAX_BYTES - len(msgspec.json.encode({**at_caps, "f": ""}))
    at_caps["f"] = "x" * filler
    assert len(msgspec.json.encode(at_caps)) == METADATA_MAX_BYTES
    assert parsed(request(videos=[video(0, metadata=at_caps)])).videos[0].metadata == at_caps


def test_context_gets_the_depth_cap_and_keeps_its_size_cap() -> None:
    assert only_error(request(context={"a": {"b": nested(7)}})) == FieldError(
        "context.a.b[0][0][0][0][0][0]", "nested deeper than 8 levels of objects and arrays"
    )
    assert parsed(request(context={"a": {"b": nested(6)}})).context == {"a": {"b": nested(6)}}
    too_big = {"k": "x" * CONTEXT_MAX_BYTES}
    assert only_error(request(context=too_big)).reason.startswith("must be at most 8192 bytes")


def test_60000_metadata_keys_are_refused_by_count() -> None:
    metadata = {f"key{i:06d}": "v" for i in range(60_000)}
    assert metadata_error(metadata) == FieldError(
        "videos[1].metadata", "must have at most 200 keys at the top level, has 60000"
    )


# 4. Deep nesting ------------------------------------------------------------------------------


def test_a_10000_deep_body_is_refused_as_body() -> None:
    assert raw_error(b"[" * 10_000 + b"]" * 10_000) == FieldError(
        "body", "invalid JSON: nested too deeply at line 1, column 12 (byte 11)"
    )


@pytest.mark.parametrize("depth", [50, 10_000])
def test_deep_metadata_names_the_level_past_the_cap(depth: int) -> None:
    # Decodable (50) or not (10,000): the same field and reason either way.
    metadata = b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
    assert raw_error(with_body(metadata)) == FieldError(
        "videos[0].metadata.a[0][0][0][0][0][0][0]",
        "nested deeper than 8 levels of objects and arrays",
    )


@pytest.mark.parametrize("depth", [50, 10_000])
def test_deep_context_names_the_level_past_the_cap(depth: int) -> None:
    context = b'"context": {"x": ' + b'{"y": ' * depth + b"1" + b"}" * depth + b"}, "
    assert raw_error(with_body(extra=context)) == FieldError(
        "context.x.y.y.y.y.y.y.y", "nested deeper than 8 levels of objects and arrays"
    )


def test_deep_nesting_elsewhere_is_refused_as_body() -> None:
    error = raw_error(with_body(extra=b'"ignored": ' + b"[" * 10_000 + b"]" * 10_000 + b", "))
    assert error.field == "body"
    assert error.reason.startswith("invalid JSON: nested too deeply at line 1, column ")


# 5. Every event the API appends fits ------------------------------------------------------------


def test_the_largest_valid_video_and_job_events_fit_in_an_event() -> None:
    wide = "\U0001f600"  # 4 bytes of UTF-8 per character
    url = "https://a.example/" + wide * (MAX_URL - 18)
    metadata = {"t": wide * ((METADATA_MAX_BYTES - 8) // 4)}
    command = parsed(
        request(
            systemName=wide * MAX_SYSTEM_NAME,
            webhook=url,
            context={"k": wide * ((CONTEXT_MAX_BYTES - 8) // 4)},
            videos=[
                video(
                    0,
                    url=url,
                    id=wide * MAX_EXTERNAL_ID,
                    fileName=wide * MAX_FILE_NAME,
                    metadata=metadata,
                )
            ],
        )
    )
    spec = command.videos[0]
    requested = VideoImportRequested(
        job_id="j" * 12,
        project="p" * 255,
        index=999,
        system_name=command.system_name,
        external_id=spec.external_id,
        url=spec.url,
        file_name=spec.file_name,
        metadata=spec.metadata,
    )
    job = ImportRequested(
        job_id="j" * 12,
        project="p" * 255,
        system_name=command.system_name,
        api_version="2025-03",
        video_count=1000,
        webhook=command.webhook,
        context=command.context,
        idempotency_key="k" * 255,
    )
    assert len(encode_event(requested)) < MAX_EVENT_BYTES // 4
    assert len(encode_event(job)) < MAX_EVENT_BYTES // 4


def test_metadata_limits_are_the_ones_in_use() -> None:
    assert METADATA_LIMITS.max_top_keys == METADATA_MAX_KEYS
    assert METADATA_LIMITS.max_nested_keys == NESTED_MAX_KEYS
    assert METADATA_LIMITS.max_key_chars == MAX_KEY_CHARS
    assert CONTEXT_LIMITS.max_depth == MAX_DEPTH
