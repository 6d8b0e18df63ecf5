"""The public event contract: examples decode, topics and docs stay in step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
import videoimport_events as events

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "libs" / "events" / "examples"


def test_every_event_type_has_an_example() -> None:
    assert {p.stem for p in EXAMPLES.glob("*.json")} == set(events.EVENT_TYPES)


@pytest.mark.parametrize("name", sorted(events.EVENT_TYPES))
def test_example_decodes_to_its_type_and_round_trips(name: str) -> None:
    raw = (EXAMPLES / f"{name}.json").read_bytes()
    envelope = events.decode_envelope(raw)
    assert envelope.type == name
    assert type(envelope.data) is events.EVENT_TYPES[name]
    assert json.loads(events.encode_envelope(envelope)) == json.loads(raw)


def test_an_unknown_event_type_is_rejected() -> None:
    with pytest.raises(msgspec.ValidationError, match="Invalid value 'VideoExploded'"):
        events.decode_event(b'{"type": "VideoExploded", "job_id": "j"}')


def test_a_missing_required_field_is_named() -> None:
    with pytest.raises(msgspec.ValidationError, match="missing required field `external_id`"):
        events.decode_event(
            b'{"type":"VideoImportFailed","job_id":"j","project":"p","index":0,'
            b'"system_name":"s","reason":"r","code":"c"}'
        )


def test_unknown_fields_are_ignored_so_additions_stay_compatible() -> None:
    raw = json.loads((EXAMPLES / "VideoImportFailed.json").read_text())["data"]
    raw["added_in_a_later_version"] = 1
    event = events.decode_event(json.dumps(raw))
    assert isinstance(event, events.VideoImportFailed)


def test_events_are_frozen() -> None:
    event = events.decode_event(
        json.dumps(json.loads((EXAMPLES / "VideoImportFailed.json").read_text())["data"])
    )
    with pytest.raises(AttributeError):
        event.reason = "changed"  # type: ignore[misc]


def test_every_family_has_a_topic() -> None:
    families = {cls.family for cls in events.EVENT_TYPES.values()}
    assert families == set(events.TOPICS)


def test_all_events_of_one_video_share_a_partition_key() -> None:
    keys = set()
    video_events = (
        "VideoImportRequested",
        "VideoImported",
        "VideoImportSkipped",
        "VideoImportFailed",
    )
    for name in video_events:
        data = json.loads((EXAMPLES / f"{name}.json").read_text())["data"]
        keys.add(events.decode_event(json.dumps(data)).partition_key())
    assert keys == {"demo/archive/123abc"}


def test_contract_imports_nothing_but_msgspec() -> None:
    code = (
        "import sys, videoimport_events;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "{'asyncpg','aiokafka','aiohttp','aiobotocore','litestar','structlog','videoimport_eventlog'}];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_asyncapi_document_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_asyncapi.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_a_redelivery_request_travels_with_its_job() -> None:
    event = events.WebhookRedeliveryRequested(job_id="k3v9", project="demo", requested_by="api")
    assert event.family == "jobs" and events.topic_for(type(event)) == "videoimport.jobs"
    assert event.partition_key() == "k3v9"
    with pytest.raises(msgspec.ValidationError, match="requested_by"):
        events.decode_event(
            b'{"type":"WebhookRedeliveryRequested","job_id":"j","project":"p",'
            b'"requested_by":"someone"}'
        )
