"""Shared vocabulary of failures and the size limits every event respects.

A failed video carries a ``code`` from ``FAILURE_CODES`` (for machines; defined
in ``vocabulary``, importable from here too) and a ``reason`` (for humans) of at
most ``MAX_REASON_BYTES``: a reason never lists unbounded client input. Every
event's JSON is at most ``MAX_EVENT_BYTES``, half of Kafka's default message
limit (1 MiB), so whatever the log accepts can always be published; the event
store refuses a larger one to its writer.
"""

from __future__ import annotations

from typing import Final

from videoimport_events.vocabulary import FAILURE_CODES, FailureCode

__all__ = [
    "FAILURE_CODES",
    "MAX_EVENT_BYTES",
    "MAX_REASON_BYTES",
    "FailureCode",
    "bounded_reason",
]

MAX_REASON_BYTES: Final = 1024
MAX_EVENT_BYTES: Final = 512 * 1024
_ELLIPSIS: Final = "…"


def bounded_reason(reason: str) -> str:
    """``reason`` cut to ``MAX_REASON_BYTES`` of UTF-8 (ending in "…" when cut)."""
    encoded = reason.encode("utf-8", "replace")
    if len(encoded) <= MAX_REASON_BYTES:
        return reason
    room = MAX_REASON_BYTES - len(_ELLIPSIS.encode())
    return encoded[:room].decode("utf-8", "ignore") + _ELLIPSIS
