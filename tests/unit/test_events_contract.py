"""The public event contract: examples decode, topics and docs stay in step."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest
import videoimport_events as events
from videoimport_events.asyncapi import document

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "libs" / "events" / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*/*.json"))
SUBSCRIBER = REPO / "docs" / "examples" / "subscriber.py"


def example(type_name: str, name: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((EXAMPLES / type_name / f"{name}.json").read_text())
    return raw


def test_every_event_type_has_several_examples() -> None:
    by_type: dict[str, int] = {}
    for path in EXAMPLE_FILES:
        by_type[path.parent.name] = by_type.get(path.parent.name, 0) + 1
    assert set(by_type) == set(events.EVENT_TYPES)
    assert min(by_type.values()) >= 2, by_type


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_example_decodes_to_its_type_and_round_trips(path: Path) -> None:
    raw = path.read_bytes()
    envelope = events.decode_envelope(raw)
    assert envelope.type == path.parent.name == envelope.data.type_name()
    assert type(envelope.data) is events.EVENT_TYPES[path.parent.name]
    encoded = events.encode_envelope(envelope)
    assert events.decode_envelope(encoded) == envelope
    # Nothing lost or changed; a field left out of the example comes back as its default.
    assert_contains(json.loads(encoded), json.loads(raw), path.stem)
    assert len(raw) <= events.MAX_EVENT_BYTES


def assert_contains(encoded: Any, raw: Any, where: str) -> None:
    if isinstance(raw, dict):
        assert isinstance(encoded, dict), where
        for key, value in raw.items():
            assert key in encoded, f"{where}.{key}"
            assert_contains(encoded[key], value, f"{where}.{key}")
    else:
        assert encoded == raw, where


def test_every_example_has_its_own_event_id() -> None:
    ids = [json.loads(p.read_text())["id"] for p in EXAMPLE_FILES]
    assert len(ids) == len(set(ids))


def test_the_examples_cover_the_edge_cases() -> None:
    raws = [json.loads(p.read_text()) for p in EXAMPLE_FILES]
    texts = [p.read_text(encoding="utf-8") for p in EXAMPLE_FILES]
    assert any(r["data"].get("metadata") == {} for r in raws), "empty metadata"
    assert any(any(ord(c) > 0xFFFF for c in t) for t in texts), "astral-plane unicode"
    assert max(r["position"] for r in raws) > 2**52, "positions near the largest exact JSON integer"
    assert any(len(r["data"].get("url", "")) == 8192 for r in raws), "longest url"
    reasons = [r["data"]["reason"] for r in raws if r["type"] == "VideoImportFailed"]
    assert any(len(reason.encode()) == events.MAX_REASON_BYTES for reason in reasons)
    omitted = [
        r["type"] for r in raws if "webhook" not in r["data"] and r["type"] == "ImportRequested"
    ]
    assert omitted, "optional fields absent"


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
    raw = example("VideoImportFailed", "not-a-video")["data"]
    raw["added_in_a_later_version"] = 1
    event = events.decode_event(json.dumps(raw))
    assert isinstance(event, events.VideoImportFailed)


def test_events_are_frozen() -> None:
    event = events.decode_event(json.dumps(example("VideoImportFailed", "not-a-video")["data"]))
    assert isinstance(event, events.VideoImportFailed)
    with pytest.raises(AttributeError):
        event.reason = "changed"  # type: ignore[misc]


def test_every_family_has_a_topic() -> None:
    families = {cls.family for cls in events.EVENT_TYPES.values()}
    assert families == set(events.TOPICS)


def test_all_events_of_one_video_share_a_partition_key() -> None:
    keys = set()
    one_video = (
        ("VideoImportRequested", "typical"),
        ("VideoImported", "created-after-download"),
        ("VideoImportSkipped", "already-exists"),
        ("VideoImportFailed", "not-a-video"),
        ("MediaObjectDeleted", "superseded"),
    )
    for type_name, name in one_video:
        data = example(type_name, name)["data"]
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


# ------------------------------------------------------------------ the AsyncAPI document


def asyncapi() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((REPO / "docs" / "asyncapi.json").read_text())
    return doc


def test_the_document_has_one_message_per_type_with_its_own_payload() -> None:
    doc = asyncapi()
    messages, schemas = doc["components"]["messages"], doc["components"]["schemas"]
    assert set(messages) == set(events.EVENT_TYPES)
    for name, message in messages.items():
        payload = schemas[message["payload"]["$ref"].removeprefix("#/components/schemas/")]
        assert payload["properties"]["type"]["const"] == name
        assert payload["properties"]["data"] == {"$ref": f"#/components/schemas/{name}"}
        assert message["headers"]["properties"]["event-type"]["const"] == name
        assert len(message["examples"]) >= 2


def test_every_reference_of_the_document_resolves() -> None:
    doc = asyncapi()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return own + [r for v in node.values() for r in refs(v)]
        return [r for v in node for r in refs(v)] if isinstance(node, list) else []

    for ref in refs(doc):
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]


def test_the_document_describes_what_the_relay_sends() -> None:
    doc = asyncapi()
    for family, topic in events.TOPICS.items():
        channel = doc["channels"][family]
        assert channel["address"] == topic == channel["bindings"]["kafka"]["topic"]
        operation = doc["operations"][f"send-{family}"]
        assert operation["action"] == "send"
        names = {n for n, cls in events.EVENT_TYPES.items() if cls.family == family}
        assert {m["$ref"].rsplit("/", 1)[1] for m in operation["messages"]} == names
    headers = doc["components"]["messages"]["VideoImported"]["headers"]
    assert headers["required"] == ["event-id", "event-type", "event-version", "correlation-id"]


def test_the_document_examples_are_the_example_files() -> None:
    doc = asyncapi()
    for path in EXAMPLE_FILES:
        shown = {e["name"]: e for e in doc["components"]["messages"][path.parent.name]["examples"]}
        assert shown[path.stem]["payload"] == json.loads(path.read_text())
        assert shown[path.stem]["headers"]["event-id"] == shown[path.stem]["payload"]["id"]


def test_an_example_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ValueError, match="'typical' of VideoImported is a VideoImportRequested"):
        document({"VideoImported": [("typical", example("VideoImportRequested", "typical"))]})


# ------------------------------------------------------------------ the example subscriber


def subscriber() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_subscriber", SUBSCRIBER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # its `if __name__ == "__main__"` keeps it from running
    return module


def test_the_example_subscriber_compiles_and_imports() -> None:
    compile(SUBSCRIBER.read_text(), str(SUBSCRIBER), "exec")
    assert callable(subscriber().consume)


def test_the_example_subscriber_handles_the_examples() -> None:
    module = subscriber()
    envelope = events.decode_envelope(json.dumps(example("VideoImportFailed", "not-a-video")))
    assert module.describe(envelope) == (
        "demo: video 123abc failed: not_a_video (not a video (text/html))"
    )
    redelivery = json.dumps(example("WebhookRedeliveryRequested", "by-the-client"))
    assert module.describe(events.decode_envelope(redelivery)) is None
    assert module.known_type([("event-type", b"JobCompleted")])
    assert not module.known_type([("event-type", b"VideoTranscoded")])
    assert not module.known_type([])
    seen = module.SeenEvents(size=2)
    assert [seen.first_time(i) for i in ("a", "b", "a", "c", "a")] == [
        True, True, False, True, True,
    ]  # fmt: skip
