"""Small pure decisions of the API: versions, bearer tokens, idempotency keys, job ids."""

from __future__ import annotations

import pytest
from videoimport_api.app import check_json_content_type
from videoimport_api.domain import idempotency
from videoimport_api.domain.auth import READ_SCOPE, bearer_token, require_scope
from videoimport_api.domain.errors import ApiError
from videoimport_api.domain.ids import ALPHABET, JOB_ID_LENGTH, new_job_id
from videoimport_api.domain.validation import ImportCommand, VideoSpec
from videoimport_api.domain.versions import version_status
from videoimport_api.handlers import IMPORT_SCOPES, STATUS_SCOPES
from videoimport_api.settings import ApiSettings
from videoimport_projects import WRITE_SCOPE


def test_versions_are_supported_retired_or_unknown() -> None:
    supported, retired = frozenset({"2025-03", "2024-01"}), frozenset({"2024-01"})
    assert version_status("2025-03", supported, retired) == "supported"
    assert version_status("2024-01", supported, retired) == "retired"
    assert version_status("2030-01", supported, retired) == "unknown"


def test_settings_split_the_version_lists() -> None:
    settings = ApiSettings(
        database_url="postgresql://x/y", api_versions="2025-03, 2025-09,", max_batch=10
    )
    assert settings.supported_versions == frozenset({"2025-03", "2025-09"})
    assert settings.retired_versions == frozenset()
    assert settings.max_body_bytes == 10 * 16 * 1024
    assert settings.resolved_media_base_url == "http://127.0.0.1:8000/media"


@pytest.mark.parametrize("header", ["Bearer abc", "bearer abc", "  Bearer   abc  "])
def test_bearer_tokens_are_read(header: str) -> None:
    assert bearer_token(header) == "abc"


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer   ", "abc"])
def test_anything_else_is_401(header: str | None) -> None:
    with pytest.raises(ApiError) as caught:
        bearer_token(header)
    assert caught.value.status == 401
    assert caught.value.details[0].field == "Authorization"
    assert caught.value.headers["www-authenticate"].startswith("Bearer")


def test_a_missing_scope_is_403() -> None:
    require_scope(frozenset({"public-api:write"}), "public-api:write")
    with pytest.raises(ApiError) as caught:
        require_scope(frozenset({"public-api:read"}), "public-api:write")
    assert caught.value.status == 403


def test_status_reads_with_read_or_write_and_imports_need_write() -> None:
    assert READ_SCOPE == "public-api:read"
    assert (IMPORT_SCOPES, STATUS_SCOPES) == ((WRITE_SCOPE,), (READ_SCOPE, WRITE_SCOPE))
    for granted in ({READ_SCOPE}, {WRITE_SCOPE}, {READ_SCOPE, WRITE_SCOPE, "other"}):
        require_scope(frozenset(granted), *STATUS_SCOPES)
    require_scope(frozenset({WRITE_SCOPE}), *IMPORT_SCOPES)
    for granted, accepted in (
        ({READ_SCOPE}, IMPORT_SCOPES),
        (set(), STATUS_SCOPES),
        ({"public-api:admin", "read"}, STATUS_SCOPES),
    ):
        with pytest.raises(ApiError) as caught:
            require_scope(frozenset(granted), *accepted)
        assert caught.value.status == 403
        assert caught.value.details[0].field == "Authorization"
        challenge = caught.value.headers["www-authenticate"]
        assert challenge == f'Bearer error="insufficient_scope", scope="{" ".join(accepted)}"'


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.api+json",
    ],
)
def test_json_bodies_are_accepted(content_type: str | None) -> None:
    check_json_content_type(content_type)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_other_bodies_are_415(content_type: str) -> None:
    with pytest.raises(ApiError) as caught:
        check_json_content_type(content_type)
    assert caught.value.status == 415
    assert caught.value.details[0].field == "Content-Type"


def command(metadata: dict[str, object]) -> ImportCommand:
    video = VideoSpec(
        url="https://a.example/v.mp4", external_id="e", file_name="f", metadata=metadata
    )
    return ImportCommand(system_name="s", videos=(video,))


def test_the_fingerprint_ignores_key_order_but_not_content_or_version() -> None:
    a = idempotency.fingerprint("2025-03", command({"title": "t", "credit": "c"}))
    b = idempotency.fingerprint("2025-03", command({"credit": "c", "title": "t"}))
    assert a == b
    assert a != idempotency.fingerprint("2025-03", command({"title": "other", "credit": "c"}))
    assert a != idempotency.fingerprint("2026-01", command({"title": "t", "credit": "c"}))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "must not be empty"),
        ("x" * 256, "must be at most 255 characters"),
        ("caf\u00e9", "must be printable ASCII"),
    ],
)
def test_malformed_idempotency_keys_are_400(raw: str, reason: str) -> None:
    with pytest.raises(ApiError) as caught:
        idempotency.parse_key(raw)
    assert caught.value.status == 400
    assert (caught.value.details[0].field, caught.value.details[0].reason) == (
        "Idempotency-Key",
        reason,
    )
    assert idempotency.parse_key(None) is None
    assert idempotency.parse_key(" key-1 ") == "key-1"


def test_job_ids_are_short_random_base32() -> None:
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == JOB_ID_LENGTH and set(i) <= set(ALPHABET) for i in ids)
