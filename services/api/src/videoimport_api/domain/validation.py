"""Structural validation of an import request, by hand so every error names its field.

``parse_import_request`` turns the raw body into an ``ImportCommand`` or an
``Invalid`` listing every problem (up to a cap) as ``{field, reason}``. Whether
metadata fits the project's config is decided per video by the ingester, so one
misfit video does not reject the batch; here metadata and context are only held
to what can be stored and sent (``json_limits``: size, keys, depth, characters),
and URLs to valid hosts (``urls``), whose IP literals must be public addresses
unless ``allow_private``.

Identities (systemName, id) are compared exactly as sent, not Unicode-normalised:
NFC and NFD spellings are different ids, because the external id is the client's
key and must round-trip byte for byte.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from videoimport_api.domain.errors import FieldError
from videoimport_api.domain.json_limits import (
    CONTEXT_LIMITS,
    METADATA_LIMITS,
    METADATA_MAX_BYTES,
    first_problem,
    identity_problem,
)
from videoimport_api.domain.json_scan import refused_surrogate, refused_too_deep, where
from videoimport_api.domain.urls import FORBIDDEN_ADDRESS, forbidden_literal, outside_loopback
from videoimport_api.domain.urls import url_problem as url_problem

CONTEXT_MAX_BYTES = 8192
MAX_REPORTED_ERRORS = 100
MAX_SYSTEM_NAME = 255
MAX_EXTERNAL_ID = 255
MAX_FILE_NAME = 1024
MAX_URL = 8192

_BYTE_OFFSET = re.compile(r"\(byte (\d+)\)")


class VideoSpec(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    external_id: str
    file_name: str
    metadata: dict[str, Any]


class ImportCommand(msgspec.Struct, frozen=True, kw_only=True):
    system_name: str
    videos: tuple[VideoSpec, ...]
    webhook: str | None = None
    context: dict[str, Any] | None = None


class Invalid(msgspec.Struct, frozen=True):
    errors: list[FieldError]


def parse_import_request(
    body: bytes, *, max_batch: int, allow_private: bool = False, loopback_only: bool = False
) -> ImportCommand | Invalid:
    """``loopback_only`` (tests, fuzzing) also refuses every URL whose host is not loopback."""
    try:
        document = msgspec.json.decode(body)
    except RecursionError:
        return Invalid([refused_too_deep(body)])
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return Invalid(
            [refused_surrogate(body, exc) or FieldError("body", _json_problem(body, exc))]
        )
    if not isinstance(document, dict):
        return Invalid([FieldError("body", f"must be a JSON object, not {_kind(document)}")])
    errors: list[FieldError] = []
    system_name = _text(document, "systemName", "systemName", errors, MAX_SYSTEM_NAME)
    webhook = _optional_url(document, "webhook", errors, allow_private)
    context = _context(document, errors)
    videos = _videos(document, errors, max_batch, allow_private)
    if errors or system_name is None or videos is None:
        if len(errors) > MAX_REPORTED_ERRORS:
            hidden = len(errors) - MAX_REPORTED_ERRORS
            errors = errors[:MAX_REPORTED_ERRORS]
            errors.append(FieldError("body", f"{hidden} more errors not shown"))
        return Invalid(errors)
    command = ImportCommand(
        system_name=system_name, videos=tuple(videos), webhook=webhook, context=context
    )
    refused = _outside_loopback(command) if loopback_only else []
    return Invalid(refused[:MAX_REPORTED_ERRORS]) if refused else command


def _outside_loopback(command: ImportCommand) -> list[FieldError]:
    urls = [("webhook", command.webhook)]
    urls += [(f"videos[{i}].url", video.url) for i, video in enumerate(command.videos)]
    reason = f"{FORBIDDEN_ADDRESS}: only loopback hosts are accepted (loopback-only mode)"
    return [FieldError(field, reason) for field, url in urls if url and outside_loopback(url)]


def _json_problem(body: bytes, exc: Exception) -> str:
    if not body.strip():
        return "the request body is empty; expected a JSON object"
    if isinstance(exc, UnicodeDecodeError):
        return f"invalid JSON: not UTF-8 at {where(body, exc.start)}"
    message = str(exc)
    if message == "Input data was truncated":
        return f"invalid JSON: unexpected end of input at {where(body, len(body))}"
    match = _BYTE_OFFSET.search(message)
    detail = message.removeprefix("JSON is malformed: ")
    if match is None:
        return f"invalid JSON: {detail}"
    detail = _BYTE_OFFSET.sub("", detail).strip()
    return f"invalid JSON: {detail} at {where(body, int(match.group(1)))}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _text(
    obj: dict[str, Any], key: str, field: str, errors: list[FieldError], max_length: int
) -> str | None:
    if key not in obj:
        errors.append(FieldError(field, "required"))
        return None
    value = obj[key]
    if not isinstance(value, str):
        errors.append(FieldError(field, f"must be a string, not {_kind(value)}"))
        return None
    if not value.strip():
        errors.append(FieldError(field, "must not be empty"))
        return None
    if len(value) > max_length:
        errors.append(FieldError(field, f"must be at most {max_length} characters"))
        return None
    problem = identity_problem(value)
    if problem:
        errors.append(FieldError(field, problem))
        return None
    return value


def _url(
    obj: dict[str, Any], key: str, field: str, errors: list[FieldError], allow_private: bool
) -> str | None:
    value = _text(obj, key, field, errors, MAX_URL)
    if value is None:
        return None
    problem = url_problem(value)
    if problem is None and not allow_private and forbidden_literal(value):
        problem = FORBIDDEN_ADDRESS  # never echo the address: the field names the URL
    if problem:
        errors.append(FieldError(field, problem))
        return None
    return value


def _optional_url(
    obj: dict[str, Any], key: str, errors: list[FieldError], allow_private: bool
) -> str | None:
    if obj.get(key) is None:
        return None
    return _url(obj, key, key, errors, allow_private)


def _context(obj: dict[str, Any], errors: list[FieldError]) -> dict[str, Any] | None:
    value = obj.get("context")
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.append(FieldError("context", f"must be an object, not {_kind(value)}"))
        return None
    problem = first_problem(value, "context", CONTEXT_LIMITS)
    if problem:
        errors.append(FieldError(*problem))
        return None
    size = len(msgspec.json.encode(value))
    if size > CONTEXT_MAX_BYTES:
        errors.append(
            FieldError("context", f"must be at most {CONTEXT_MAX_BYTES} bytes as JSON, is {size}")
        )
        return None
    return value


def _videos(
    obj: dict[str, Any], errors: list[FieldError], max_batch: int, allow_private: bool
) -> list[VideoSpec] | None:
    if "videos" not in obj:
        errors.append(FieldError("videos", "required"))
        return None
    items = obj["videos"]
    if not isinstance(items, list):
        errors.append(FieldError("videos", f"must be an array, not {_kind(items)}"))
        return None
    if not items:
        errors.append(FieldError("videos", "must contain at least one video"))
        return None
    if len(items) > max_batch:
        errors.append(
            FieldError("videos", f"must contain at most {max_batch} videos, got {len(items)}")
        )
        return None
    videos: list[VideoSpec] = []
    first_index: dict[str, int] = {}
    before = len(errors)
    for index, item in enumerate(items):
        video = _video(item, f"videos[{index}]", errors, allow_private)
        # Checked on the raw id so a duplicate is named even when another field is wrong.
        raw_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(raw_id, str) and raw_id.strip():
            seen = first_index.setdefault(raw_id, index)
            if seen != index:
                errors.append(
                    FieldError(
                        f"videos[{index}].id", f"duplicate id {raw_id!r}: also videos[{seen}].id"
                    )
                )
                continue
        if video is not None:
            videos.append(video)
    return videos if len(errors) == before else None


def _video(item: Any, path: str, errors: list[FieldError], allow_private: bool) -> VideoSpec | None:
    if not isinstance(item, dict):
        errors.append(FieldError(path, f"must be an object, not {_kind(item)}"))
        return None
    url = _url(item, "url", f"{path}.url", errors, allow_private)
    external_id = _text(item, "id", f"{path}.id", errors, MAX_EXTERNAL_ID)
    file_name = _text(item, "fileName", f"{path}.fileName", errors, MAX_FILE_NAME)
    metadata = _metadata(item, f"{path}.metadata", errors)
    if url is None or external_id is None or file_name is None or metadata is None:
        return None
    return VideoSpec(url=url, external_id=external_id, file_name=file_name, metadata=metadata)


def _metadata(item: dict[str, Any], field: str, errors: list[FieldError]) -> dict[str, Any] | None:
    if "metadata" not in item:
        errors.append(FieldError(field, "required"))
        return None
    metadata = item["metadata"]
    if not isinstance(metadata, dict):
        errors.append(FieldError(field, f"must be an object, not {_kind(metadata)}"))
        return None
    problem = first_problem(metadata, field, METADATA_LIMITS)
    if problem:
        errors.append(FieldError(*problem))
        return None
    size = len(msgspec.json.encode(metadata))
    if size > METADATA_MAX_BYTES:
        errors.append(
            FieldError(
                field, f"must be at most {METADATA_MAX_BYTES} bytes as compact JSON, is {size}"
            )
        )
        return None
    return metadata
