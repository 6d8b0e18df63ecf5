"""The recorded contract, the breaking-change rules and upcasting of old schema versions."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest
import videoimport_events as events
from videoimport_events.compatibility import (
    BreakingChange,
    Contract,
    Schema,
    breaking_changes,
    contract_of,
    file_name,
    key_of,
)
from videoimport_events.upcasting import UPCASTERS, UpcastError, Upcasters

REPO = Path(__file__).resolve().parents[2]
RECORDED = REPO / "libs" / "events" / "contract"
FIXTURES = REPO / "tests" / "fixtures" / "contract"


def load(root: Path) -> dict[tuple[str, int], Schema]:
    return {key_of(p.name): json.loads(p.read_text()) for p in root.glob("*.json")}


def problems(
    recorded: Contract, current: Contract, upcasters: Upcasters | None = None
) -> list[str]:
    return [str(c) for c in breaking_changes(recorded, current, upcasters or Upcasters())]


# ---------------------------------------------------------------- the real contract


def test_the_code_keeps_the_recorded_contract() -> None:
    """The compatibility check of `make test` (with the production upcasters)."""
    assert [str(c) for c in breaking_changes(load(RECORDED), contract_of())] == []


def test_every_type_is_recorded_at_its_current_version() -> None:
    recorded = load(RECORDED)
    for key, schema in contract_of().items():
        assert recorded.get(key) == schema, f"{file_name(key)}: run `make asyncapi`"


def test_contract_file_names_carry_type_and_version() -> None:
    assert key_of("VideoImported.v12.json") == ("VideoImported", 12)
    for bad in ("VideoImported.json", "VideoImported.v0.json", "../x.v1.json"):
        with pytest.raises(ValueError, match="not a contract file name"):
            key_of(bad)


def test_timestamps_are_recorded_as_date_time() -> None:
    job = contract_of()[("JobCompleted", 1)]["$defs"]["JobCompleted"]["properties"]
    assert job["finished_at"] == {"type": "string", "format": "date-time"}
    failed = contract_of()[("WebhookDeliveryFailed", 1)]["$defs"]["WebhookDeliveryFailed"]
    alternatives = failed["properties"]["next_attempt_at"]["anyOf"]
    assert {"type": "string", "format": "date-time"} in alternatives


# ------------------------------------------------- fixtures: deliberate breaking changes


def test_a_removed_field_fails_naming_type_and_field() -> None:
    assert problems(load(FIXTURES / "removed-field"), contract_of()) == [
        "VideoImportFailed v1 field `retryable`: removed"
    ]


def test_a_changed_type_fails_naming_type_and_field() -> None:
    assert problems(load(FIXTURES / "changed-type"), contract_of()) == [
        "JobCompleted v1 field `overview.total`: type changed from string to integer",
        "VideoImportFailed v1 field `index`: type changed from string to integer",
    ]


def test_make_asyncapi_refuses_to_record_a_breaking_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = tmp_path / "contract"
    shutil.copytree(RECORDED, recorded)
    shutil.copy(FIXTURES / "removed-field" / "VideoImportFailed.v1.json", recorded)
    script = gen_asyncapi()
    monkeypatch.setattr(script, "CONTRACT", recorded)
    assert script.main(["--check"]) == 1
    assert script.main([]) == 1
    err = capsys.readouterr().err
    assert "VideoImportFailed v1 field `retryable`: removed" in err
    assert (recorded / "VideoImportFailed.v1.json").read_bytes() == (
        FIXTURES / "removed-field" / "VideoImportFailed.v1.json"
    ).read_bytes()


def gen_asyncapi() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_asyncapi", REPO / "scripts/gen_asyncapi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ the rules, one by one


def entry(properties: dict[str, Any], required: list[str], **defs: Schema) -> Schema:
    event = {"title": "E", "type": "object", "properties": properties, "required": required}
    return {"$ref": "#/$defs/E", "$defs": {"E": event, **defs}}


BASE = entry(
    {
        "state": {"enum": ["failed", "success"]},
        "name": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        "count": {"type": "integer"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    ["state", "name", "at", "count", "tags"],
)


def changed(edit: Any) -> Schema:
    schema = copy.deepcopy(BASE)
    edit(schema["$defs"]["E"])
    return schema


def check(edit: Any) -> list[str]:
    return problems({("E", 1): BASE}, {("E", 1): changed(edit)})


def test_an_unchanged_contract_passes() -> None:
    assert check(lambda e: None) == []


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda e: e["properties"]["state"]["enum"].append("skipped"), id="enum+"),
        pytest.param(lambda e: e["properties"].update(state={"type": "string"}), id="enum->str"),
        pytest.param(lambda e: e["properties"].update(extra={"type": "integer"}), id="optional+"),
        pytest.param(lambda e: e["required"].remove("count"), id="required->optional"),
        pytest.param(lambda e: e.update(description="new words"), id="annotation"),
    ],
)
def test_additive_changes_pass(edit: Any) -> None:
    assert check(edit) == []


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda e: e["properties"]["state"].update(enum=["success"]),
            "field `state`: enumeration narrowed: 'failed' no longer allowed",
        ),
        (
            lambda e: e["properties"].update(name={"enum": ["a", "b"]}),
            "field `name`: type changed from string to one of 'a', 'b'",
        ),
        (
            lambda e: (
                e["properties"].update(code={"type": "string"}),
                e["required"].append("code"),
            ),
            "field `code`: new required field without a default",
        ),
        (
            lambda e: e["required"].append("note"),
            "field `note`: became required (events recorded before lack it)",
        ),
        (
            lambda e: e["properties"].update(
                count={"anyOf": [{"type": "integer"}, {"type": "null"}]}
            ),
            "field `count`: type changed from integer to integer or null",
        ),
        (
            lambda e: e["properties"].update(at={"type": "string"}),
            "field `at`: type changed from string (date-time) to string",
        ),
        (
            lambda e: e["properties"]["tags"].update(items={"type": "integer"}),
            "field `tags[]`: type changed from string to integer",
        ),
        (
            lambda e: e["properties"]["count"].update(maximum=10),
            "field `count`: constraints changed from {} to {'maximum': 10}",
        ),
        (lambda e: e["properties"].pop("note"), "field `note`: removed"),
    ],
)
def test_breaking_changes_are_named(edit: Any, problem: str) -> None:
    assert check(edit) == [f"E v1 {problem}"]


def test_a_field_of_a_nested_object_is_named_by_its_path() -> None:
    inner = {"title": "Inner", "type": "object", "properties": {"n": {"type": "integer"}}}
    old = entry({"inner": {"$ref": "#/$defs/Inner"}}, ["inner"], Inner=inner)
    new = copy.deepcopy(old)
    new["$defs"]["Inner"]["properties"] = {}
    assert problems({("E", 1): old}, {("E", 1): new}) == ["E v1 field `inner.n`: removed"]


def test_a_removed_type_and_a_version_going_back_break() -> None:
    recorded = {("Gone", 1): BASE, ("E", 2): BASE}
    assert problems(recorded, {("E", 1): BASE}) == [
        "E v2: schema version went back to v1",
        "Gone v1: type removed",
    ]


def test_new_types_pass() -> None:
    assert problems({}, contract_of()) == []


def test_a_breaking_change_is_a_breaking_change_object() -> None:
    change = BreakingChange("VideoImported", 1, "size", "removed")
    assert (change.type_name, change.field) == ("VideoImported", "size")


# -------------------------------------------------- a new schema version with an upcaster

V1_FAILED = {
    "id": "5f0c9d2e-8a41-4c3b-9e57-1d2a3b4c5d6e",
    "type": "VideoImportFailed",
    "version": 1,
    "position": 77,
    "stream": "job-k3v9q2m8x7ab/video-0",
    "stream_version": 1,
    "occurred_at": "2025-06-01T08:00:00Z",
    "correlation_id": "k3v9q2m8x7ab",
    "causation_id": None,
    "project": "demo",
    "data": {
        "type": "VideoImportFailed",
        "job_id": "k3v9q2m8x7ab",
        "project": "demo",
        "index": 0,
        "system_name": "archive",
        "external_id": "123abc",
        "message": "not a video (text/html)",
    },
}
"""A VideoImportFailed as stored under a (test-only) v1: ``message``, no ``code``."""


def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data["reason"] = data.pop("message")
    data["code"] = "not_a_video" if data["reason"].startswith("not a video") else "internal_error"
    return data


@pytest.fixture
def failed_is_v2(monkeypatch: pytest.MonkeyPatch) -> Upcasters:
    """VideoImportFailed at schema version 2 (the Struct as it is), with an upcaster from v1."""
    monkeypatch.setattr(events.VideoImportFailed, "schema_version", 2)
    upcasters = Upcasters()
    upcasters.register("VideoImportFailed", from_version=1)(v1_to_v2)
    return upcasters


def test_a_stored_v1_envelope_is_read_as_v2(failed_is_v2: Upcasters) -> None:
    envelope = events.decode_envelope(json.dumps(V1_FAILED), upcasters=failed_is_v2)
    assert envelope.version == 2
    assert envelope.data == events.VideoImportFailed(
        job_id="k3v9q2m8x7ab", project="demo", index=0, system_name="archive",
        external_id="123abc", reason="not a video (text/html)", code="not_a_video",
    )  # fmt: skip
    assert envelope.id == V1_FAILED["id"] and envelope.position == 77


def test_stored_v1_data_is_read_as_v2(failed_is_v2: Upcasters) -> None:
    data = json.dumps(V1_FAILED["data"])
    event = events.decode_event(data, version=1, upcasters=failed_is_v2)
    assert isinstance(event, events.VideoImportFailed) and event.code == "not_a_video"


def test_current_versions_are_not_upcast(failed_is_v2: Upcasters) -> None:
    raw = json.loads((REPO / "libs/events/examples/VideoImportFailed/not-a-video.json").read_text())
    raw["version"] = 2
    envelope = events.decode_envelope(json.dumps(raw), upcasters=failed_is_v2)
    assert envelope.version == 2 and envelope.data.reason == "not a video (text/html)"  # type: ignore[union-attr]


def test_without_its_upcaster_v1_data_does_not_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events.VideoImportFailed, "schema_version", 2)
    with pytest.raises(msgspec.ValidationError, match="missing required field `reason`"):
        events.decode_envelope(json.dumps(V1_FAILED))  # the real registry: no step
    with pytest.raises(UpcastError, match="VideoImportFailed: no upcaster from schema version 1"):
        events.decode_envelope(json.dumps(V1_FAILED), upcasters=unrelated_upcasters())


def unrelated_upcasters() -> Upcasters:
    upcasters = Upcasters()
    upcasters.register("VideoImported", from_version=1)(lambda data: data)
    return upcasters


def test_a_failing_upcaster_is_a_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events.VideoImportFailed, "schema_version", 2)
    upcasters = Upcasters()
    upcasters.register("VideoImportFailed", from_version=1)(lambda data: {**data, "x": data["y"]})
    with pytest.raises(msgspec.ValidationError, match="upcasting from v1 failed: KeyError"):
        events.decode_envelope(json.dumps(V1_FAILED), upcasters=upcasters)


def test_a_step_is_registered_once() -> None:
    upcasters = Upcasters()
    upcasters.register("VideoImportFailed", from_version=1)(v1_to_v2)
    with pytest.raises(ValueError, match="already registered"):
        upcasters.register("VideoImportFailed", from_version=1)(v1_to_v2)
    with pytest.raises(ValueError, match="start at 1"):
        upcasters.register("VideoImportFailed", from_version=0)


def test_a_bumped_version_passes_the_check_only_with_its_upcaster(failed_is_v2: Upcasters) -> None:
    recorded = load(FIXTURES / "bumped-type")
    current = contract_of()
    assert ("VideoImportFailed", 2) in current
    assert problems(recorded, current, failed_is_v2) == []
    assert problems(recorded, current, Upcasters()) == [
        "VideoImportFailed v1: no upcaster from v1 to v2 (current: v2)"
    ]


def test_every_production_type_can_be_read_from_v1_on() -> None:
    for name, cls in events.EVENT_TYPES.items():
        assert UPCASTERS.missing_steps(name, 1, cls.schema_version) == [], name
