"""What the relay sends for a logged event, and when it may advance."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from videoimport_events import (
    Envelope,
    ImportRequested,
    VideoImportFailed,
    WebhookDelivered,
    decode_envelope,
    video_key,
)
from videoimport_relay.domain import Outgoing, acknowledged_through, lag, outgoing

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def envelope_of(
    event: ImportRequested | VideoImportFailed | WebhookDelivered, position: int
) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type=type(event).type_name(),
        version=1,
        position=position,
        stream="s",
        stream_version=0,
        occurred_at=NOW,
        correlation_id="j",
        causation_id=None,
        project="acme",
        data=event,
    )


def test_each_family_goes_to_its_prefixed_topic_with_its_key() -> None:
    job = ImportRequested(
        job_id="j", project="acme", system_name="s", api_version="2025-03", video_count=1
    )
    video = VideoImportFailed(
        job_id="j", project="acme", system_name="s", external_id="x", index=0, reason="r", code="c"
    )
    hook = WebhookDelivered(
        job_id="j", project="acme", delivery_id="d", url="u", attempt=1, status_code=200
    )
    headers = [("event-id", b"1")]
    out = [
        outgoing(e, envelope_of(e, i + 1), headers, "t1.") for i, e in enumerate((job, video, hook))
    ]
    assert [o.topic for o in out] == [
        "t1.videoimport.jobs",
        "t1.videoimport.videos",
        "t1.videoimport.webhooks",
    ]
    assert [o.key for o in out] == [b"j", video_key("acme", "s", "x").encode(), b"j"]
    assert [o.position for o in out] == [1, 2, 3]
    assert decode_envelope(out[1].value).data == video
    assert out[0].headers == headers


def _batch(*positions: int) -> list[Outgoing]:
    return [Outgoing(position=p, topic="t", key=b"k", value=b"v", headers=[]) for p in positions]


def test_the_position_advances_only_when_the_whole_batch_is_acknowledged() -> None:
    batch = _batch(5, 6, 7)
    assert acknowledged_through(4, batch, [False, False, False]) == 7
    assert acknowledged_through(4, batch, [False, True, False]) == 4
    assert acknowledged_through(4, batch, [True, False, False]) == 4
    assert acknowledged_through(4, [], []) == 4
    with pytest.raises(ValueError):
        acknowledged_through(4, batch, [False])


def test_lag() -> None:
    assert lag(10, 7) == 3
    assert lag(7, 7) == 0
    assert lag(0, 3) == 0
