"""The OpenAPI document is valid 3.1, names every route the app serves, and its schemas
accept what the API really renders and refuse what the validator refuses."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any, cast

import msgspec
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from videoimport_api.app import build_litestar
from videoimport_api.domain.errors import ApiError, FieldError
from videoimport_api.domain.media_links import MediaLinks
from videoimport_api.domain.status import JobRow, VideoRow, WebhookRow, render_status
from videoimport_api.domain.validation import (
    MAX_EXTERNAL_ID,
    MAX_FILE_NAME,
    MAX_SYSTEM_NAME,
    MAX_URL,
    Invalid,
    parse_import_request,
)
from videoimport_api.handlers import Dependencies
from videoimport_api.metrics import ApiMetrics
from videoimport_api.openapi_document import build_document
from videoimport_events import MediaInfo

VERSIONS = frozenset({"2025-03", "2026-01"})
NOT_DOCUMENTED = ("/ui", "/schema", "/metrics")
STARTED = datetime(2020, 1, 1, 13, 45, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    built = build_document(versions=VERSIONS, max_batch=7, max_body_bytes=7 * 16384)
    return cast(dict[str, Any], msgspec.json.decode(msgspec.json.encode(built)))


def conforms(document: dict[str, Any], name: str, instance: Any) -> list[str]:
    """Why ``instance`` does not fit the component schema ``name`` (empty: it fits)."""
    schema = {**document, "$ref": f"#/components/schemas/{name}"}
    return [error.message for error in OAS31Validator(schema).iter_errors(instance)]


def app_deps() -> Dependencies:
    """Enough to build the routes; the I/O dependencies are never called while building."""
    given: dict[str, Any] = {
        "media_links": MediaLinks(secret=b"k" * 32, ttl_seconds=60, base_url="http://x/media"),
        "supported_versions": VERSIONS,
        "retired_versions": frozenset(),
        "max_batch": 7,
        "max_body_bytes": 7 * 16384,
        "metrics": ApiMetrics(),
        "public_metrics": True,
    }
    unused = {
        field.name: None
        for field in dataclasses.fields(Dependencies)
        if field.name not in given and field.default is dataclasses.MISSING
    }
    return Dependencies(**given, **unused)


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["info"]["version"] == version("videoimport-api")


def test_every_served_route_is_documented_and_nothing_else() -> None:
    def template(path: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", path)

    served = {
        (template(path), method.lower())
        for route in build_litestar(app_deps()).routes
        for handler in getattr(route, "route_handlers", [])
        for path in handler.paths
        for method in handler.http_methods
        if method != "OPTIONS" and not route.path.startswith(NOT_DOCUMENTED)
    }
    document = build_document(versions=VERSIONS, max_batch=7, max_body_bytes=1)
    documented = {
        (template(path), method) for path, item in document["paths"].items() for method in item
    }
    assert served == documented


def test_versions_batch_limit_and_scopes_come_from_the_deployment(
    document: dict[str, Any],
) -> None:
    assert document["components"]["parameters"]["apiVersion"]["schema"]["enum"] == sorted(VERSIONS)
    request = document["components"]["schemas"]["ImportRequest"]
    assert request["properties"]["videos"]["maxItems"] == 7
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for operation in item.values():
            public = path.startswith(("/health", "/media"))
            assert ("security" in operation) == public, path
            if not public:
                assert "Scope: `public-api:" in operation["description"], path


def test_the_request_limits_are_the_validators(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    video = schemas["VideoRequest"]["properties"]
    assert schemas["ImportRequest"]["properties"]["systemName"]["maxLength"] == MAX_SYSTEM_NAME
    assert video["id"]["maxLength"] == MAX_EXTERNAL_ID
    assert video["fileName"]["maxLength"] == MAX_FILE_NAME
    assert video["url"]["maxLength"] == MAX_URL
    assert schemas["VideoRequest"]["required"] == ["url", "id", "fileName", "metadata"]


def body(**video: Any) -> dict[str, Any]:
    entry = {"url": "https://v.example/1.mp4", "id": "a", "fileName": "f", "metadata": {}}
    return {"systemName": "archive", "videos": [{**entry, **video}]}


@pytest.mark.parametrize(
    "request_body",
    [
        body(),
        {**body(), "webhook": None, "context": None},
        {**body(), "webhook": "https://hooks.example/x", "context": {"a": [1, {"b": None}]}},
        body(metadata={"title": "t\tx", "nested": {"k": [1, 2]}}),
    ],
)
def test_a_request_the_validator_accepts_fits_the_schema(
    document: dict[str, Any], request_body: dict[str, Any]
) -> None:
    parsed = parse_import_request(msgspec.json.encode(request_body), max_batch=7)
    assert not isinstance(parsed, Invalid)
    assert conforms(document, "ImportRequest", request_body) == []


@pytest.mark.parametrize(
    "request_body",
    [
        {"videos": body()["videos"]},
        {**body(), "videos": []},
        {**body(), "videos": body()["videos"] * 8},
        {**body(), "systemName": "s" * (MAX_SYSTEM_NAME + 1)},
        {**body(), "systemName": "a\x01b"},
        body(id=""),
        body(fileName=7),
        body(metadata={"": 1}),
        body(metadata={f"k{i}": i for i in range(201)}),
        {**body(), "context": []},
    ],
)
def test_a_request_the_schema_refuses_the_validator_refuses(
    document: dict[str, Any], request_body: dict[str, Any]
) -> None:
    assert conforms(document, "ImportRequest", request_body) != []
    parsed = parse_import_request(msgspec.json.encode(request_body), max_batch=7)
    assert isinstance(parsed, Invalid)


def test_every_rendered_status_fits_the_schema(document: dict[str, Any]) -> None:
    def job(state: Any, **counts: Any) -> JobRow:
        return JobRow(job_id="j1", state=state, video_count=3, started_at=STARTED, **counts)

    videos = [
        VideoRow(
            idx=0,
            system_name="s",
            external_id="a",
            state="success",
            media_id="m",
            mime_type="video/mp4",
            storage_key="p/m/e.mp4",
        ),
        VideoRow(
            idx=1,
            system_name="s",
            external_id="b",
            state="skipped",
            media_id="m",
            mime_type="video/mp4",
            link_expired=True,
        ),
        VideoRow(idx=2, system_name="s", external_id="c", state="failed", code="cancelled"),
        VideoRow(idx=3, system_name="s", external_id="d"),
        VideoRow(
            idx=4,
            system_name="s",
            external_id="e",
            state="success",
            media_id="m",
            mime_type="video/quicktime",
            storage_key="p/m/e.mov",
            size=1048576,
            sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            media_info=MediaInfo(
                container="mov",
                duration=3.0,
                width=640,
                height=360,
                frame_rate=None,
                video_codec="h264",
                audio_codec=None,
                bit_rate=None,
            ),
            poster_key="p/m/e.poster.jpg",
        ),
    ]
    webhook = WebhookRow(state="pending", attempts=1, last_status=503, next_attempt_at=STARTED)
    started = render_status(job("started", success=1), [], lambda key: key)
    finished = render_status(
        job("failed", success=1, skipped=1, failed=1, finished_at=STARTED, webhook=webhook),
        videos,
        lambda key: f"https://cdn.example/{key}",
    )
    assert conforms(document, "StatusStarted", started) == []
    assert conforms(document, "StatusFinished", finished) == []
    assert finished["videos"][4]["video"]["posterUrl"] == "https://cdn.example/p/m/e.poster.jpg"
    assert conforms(document, "StatusFinished", started) != []


def test_the_error_shape_is_the_error_body(document: dict[str, Any]) -> None:
    error = ApiError(400, "invalid", [FieldError("videos[0].url", "required")])
    assert conforms(document, "ErrorBody", msgspec.to_builtins(error.body())) == []
    assert conforms(document, "ErrorBody", {"status": 400, "error": "x"}) != []
    assert document["components"]["responses"]["401"]["headers"]["WWW-Authenticate"]
