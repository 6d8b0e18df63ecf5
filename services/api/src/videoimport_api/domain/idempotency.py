"""Idempotency keys (Stripe-style): a retried POST with the same key gets the same job."""

from __future__ import annotations

import hashlib

import msgspec

from videoimport_api.domain.errors import ApiError, FieldError
from videoimport_api.domain.validation import ImportCommand

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def parse_key(raw: str | None) -> str | None:
    """The header's key, None when absent; raises a 400 naming the header when malformed."""
    if raw is None:
        return None
    key = raw.strip()
    problem = None
    if not key:
        problem = "must not be empty"
    elif len(key) > MAX_KEY_LENGTH:
        problem = f"must be at most {MAX_KEY_LENGTH} characters"
    elif not key.isascii() or not key.isprintable():
        problem = "must be printable ASCII"
    if problem:
        raise ApiError(400, f"invalid {HEADER} header", [FieldError(HEADER, problem)])
    return key


def fingerprint(api_version: str, command: ImportCommand) -> str:
    """sha256 of the request as understood: key order and ignored keys do not count."""
    canonical = msgspec.json.encode([api_version, command], order="sorted")
    return hashlib.sha256(canonical).hexdigest()


def reused_key_error() -> ApiError:
    return ApiError(
        422,
        f"{HEADER} was already used for a different request",
        [
            FieldError(
                HEADER,
                "already used with a different request body; use a new key for a new request",
            )
        ],
    )
