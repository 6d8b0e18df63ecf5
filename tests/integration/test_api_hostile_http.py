"""Hostile but legal-looking POSTs are answered 400 naming the field, and nothing is written.

Each of these once got a 200 (and then stopped a downstream reader), a 500, or an
event too large to publish. Runs the real app against the real PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
from videoimport_eventlog import store

from .api_harness import (
    IMPORT_URL,
    RunningApi,
    assert_error_shape,
    auth,
    batch,
    running_api,
)

pytestmark = pytest.mark.integration

DEEP = 10_000


@pytest.fixture
async def api(pg_dsn: str) -> AsyncIterator[RunningApi]:
    # The default batch size, so the body limit (16 MiB) is not what refuses these.
    async with running_api(pg_dsn, max_batch=1000) as running:
        yield running


async def rows(dsn: str, table: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


def body_with(
    video_metadata: bytes = b'{"title": "t"}', url: str = "https://a.example/v.mp4"
) -> bytes:
    return (
        b'{"systemName": "archive", "videos": [{"url": '
        + json.dumps(url).encode()
        + b', "id": "x",'
        b' "fileName": "f", "metadata": ' + video_metadata + b"}]}"
    )


def sixty_thousand_keys() -> bytes:
    document = batch(2)
    document["videos"][1]["metadata"] = {f"key{i:06d}": "v" for i in range(60_000)}
    return json.dumps(document).encode()


CASES = [
    pytest.param(
        json.dumps(batch(1, system="arch\u0000ive")).encode(),
        "systemName",
        "must not contain control character U+0000",
        id="nul-systemName",
    ),
    pytest.param(
        sixty_thousand_keys(),
        "videos[1].metadata",
        "must have at most 200 keys at the top level, has 60000",
        id="60000-metadata-keys",
    ),
    pytest.param(
        body_with(b'{"a": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
        "videos[0].metadata.a[0][0][0][0][0][0][0]",
        "nested deeper than 8 levels",
        id="10000-deep-metadata",
    ),
    pytest.param(
        b"[" * DEEP + b"]" * DEEP,
        "body",
        "nested too deeply",
        id="10000-deep-body",
    ),
    pytest.param(
        body_with(url="http://xn--a.com/v.mp4"),
        "videos[0].url",
        "label 'xn--a' is not valid IDNA",
        id="xn--a-host",
    ),
    pytest.param(
        body_with(b'{"title": "\\ud800"}'),
        "videos[0].metadata.title",
        "lone UTF-16 surrogate \\ud800",
        id="lone-surrogate",
    ),
]


@pytest.mark.parametrize(("body", "field", "reason_part"), CASES)
async def test_hostile_bodies_are_refused_naming_the_field_and_nothing_is_written(
    api: RunningApi, token: str, body: bytes, field: str, reason_part: str
) -> None:
    headers = {**auth(token), "Content-Type": "application/json", "Idempotency-Key": "k-1"}
    response = await api.http.post(IMPORT_URL, content=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()
    assert_error_shape(error, 400)
    assert [d["field"] for d in error["error_details"]] == [field]
    assert reason_part in error["error_details"][0]["reason"]
    assert error["error"].startswith(f"invalid request: {field}: ")
    assert await rows(api.settings.database_url, "events") == 0
    assert await rows(api.settings.database_url, "idempotency_keys") == 0

    # The API is not wedged: a good request right after is recorded.
    good = await api.http.post(IMPORT_URL, json=batch(2), headers=auth(token))
    assert good.status_code == 200, good.text
    assert await rows(api.settings.database_url, "events") == 3


async def test_an_event_the_log_refuses_as_too_large_is_a_400_naming_the_video(
    api: RunningApi, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The caps keep every real event far below the log's limit; lower the limit to reach it.
    monkeypatch.setattr(store, "MAX_EVENT_BYTES", 2000)
    document = batch(3)
    document["videos"][1]["metadata"] = {"title": "t", "notes": "x" * 3000}
    headers = {**auth(token), "Idempotency-Key": "k-2"}
    response = await api.http.post(IMPORT_URL, json=document, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()
    assert_error_shape(error, 400)
    assert [d["field"] for d in error["error_details"]] == ["videos[1]"]
    assert "too large to record" in error["error_details"][0]["reason"]
    assert await rows(api.settings.database_url, "events") == 0
    assert await rows(api.settings.database_url, "idempotency_keys") == 0
