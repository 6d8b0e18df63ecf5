"""Readers tell a newer writer's event type (skipped) from one they know (pure)."""

from __future__ import annotations

from videoimport_eventlog.kafka import unknown_type


def test_a_type_this_code_does_not_know_is_named() -> None:
    headers = [("event-id", b"e1"), ("event-type", b"VideoRecolored")]
    assert unknown_type(headers) == "VideoRecolored"


def test_a_known_type_or_no_type_header_is_not_unknown() -> None:
    assert unknown_type([("event-type", b"VideoImported")]) is None
    assert unknown_type([("event-type", b"JobCompleted")]) is None
    # Without the header the message is decoded as before (and parked if undecodable).
    assert unknown_type([]) is None
