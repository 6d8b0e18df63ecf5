"""GET /api/{version}/import/videos/status over real HTTP against a real database.

The status tables belong to the projector. Here the test writes rows into them
only to check how the API renders a finished job; the e2e suite covers the real
path (projector fed by the log).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from .api_harness import (
    IMPORT_URL,
    STATUS_DDL,
    STATUS_URL,
    RunningApi,
    assert_error_shape,
    auth,
    batch,
    project_with_token,
    running_api,
)

pytestmark = pytest.mark.integration

MEDIA_BASE = "https://media.example.com/media"


@pytest.fixture
async def api(pg_dsn: str) -> AsyncIterator[RunningApi]:
    async with running_api(pg_dsn, media_base_url=MEDIA_BASE + "/") as running:
        yield running


def signed_link(api: RunningApi, url: str, minted_after: int) -> str:
    """The link without its query, after checking the query signs it for one TTL."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert set(query) == {"expires", "signature"}, url
    [expires], [sig] = query["expires"], query["signature"]
    ttl = api.settings.media_link_ttl
    assert minted_after + ttl <= int(expires) <= int(time.time()) + ttl
    key = parts.path.removeprefix(urlsplit(MEDIA_BASE).path + "/")
    assert api.deps.media_links.problem(key, expires, sig, time.time()) is None
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


async def submit(api: RunningApi, token: str, count: int = 2) -> str:
    response = await api.http.post(IMPORT_URL, json=batch(count), headers=auth(token))
    assert response.status_code == 200, response.text
    job_id: str = response.json()["id"]
    return job_id


async def requested_at(dsn: str, job_id: str) -> datetime:
    conn = await asyncpg.connect(dsn)
    try:
        occurred: datetime = await conn.fetchval(
            "SELECT occurred_at FROM events WHERE stream_id = $1", f"job-{job_id}"
        )
        return occurred
    finally:
        await conn.close()


async def test_before_the_projector_the_status_comes_from_the_log(
    api: RunningApi, token: str
) -> None:
    job_id = await submit(api, token, count=3)
    expected = {
        "finished": False,
        "state": "started",
        "id": job_id,
        "startedAt": (await requested_at(api.settings.database_url, job_id))
        .astimezone(UTC)
        .strftime("%Y-%m-%d %H:%M:%S"),
        "progress": {"total": 3, "success": 0, "skipped": 0, "failed": 0},
    }
    # No read-model tables at all yet (the projector never ran).
    response = await api.http.get(STATUS_URL, params={"id": job_id}, headers=auth(token))
    assert response.status_code == 200, response.text
    assert response.json() == expected

    # Tables exist but the projector has not reached this job.
    conn = await asyncpg.connect(api.settings.database_url)
    try:
        await conn.execute(STATUS_DDL)
    finally:
        await conn.close()
    response = await api.http.get(STATUS_URL, params={"id": job_id}, headers=auth(token))
    assert response.json() == expected


async def test_a_projected_started_job_shows_progress(api: RunningApi, token: str) -> None:
    job_id = await submit(api, token, count=4)
    conn = await asyncpg.connect(api.settings.database_url)
    try:
        await conn.execute(STATUS_DDL)
        await conn.execute(
            "INSERT INTO status_jobs VALUES"
            " ($1, 'acme', 'archive', 'started', 4, $2, NULL, 2, 0, 1)",
            job_id,
            datetime(2020, 1, 1, 13, 45, 12, tzinfo=UTC),
        )
    finally:
        await conn.close()
    response = await api.http.get(STATUS_URL, params={"id": job_id}, headers=auth(token))
    assert response.json() == {
        "finished": False,
        "state": "started",
        "id": job_id,
        "startedAt": "2020-01-01 13:45:12",
        "progress": {"total": 4, "success": 2, "skipped": 0, "failed": 1},
    }


async def test_a_finished_job_is_rendered_in_the_seed_shape(api: RunningApi, token: str) -> None:
    job_id = await submit(api, token, count=3)
    conn = await asyncpg.connect(api.settings.database_url)
    try:
        await conn.execute(STATUS_DDL)
        await conn.execute(
            "INSERT INTO status_jobs VALUES ($1, 'acme', 'archive', 'success', 3, $2, $3, 1, 1, 1)",
            job_id,
            datetime(2020, 1, 1, 13, 45, 12, tzinfo=UTC),
            datetime(2020, 1, 1, 13, 50, 0, tzinfo=UTC),
        )
        await conn.executemany(
            "INSERT INTO status_videos VALUES ($1, $2, 'archive', $3, $4, $5, $6, $7, $8, $9, $10)",
            [
                (job_id, 2, "ext-2", "failed", "not a video (text/html)", "not_a_video",
                 None, None, None, None),
                (job_id, 0, "ext-0", "success", None, None, "m0", "video/mp4",
                 "acme/m0/e0.mp4", "created"),
                (job_id, 1, "ext-1", "skipped", "already exists", "already_exists", "m1",
                 "video/webm", "acme/m1/e1.webm", None),
            ],
        )  # fmt: skip
    finally:
        await conn.close()
    before = int(time.time())
    response = await api.http.get(STATUS_URL, params={"id": job_id}, headers=auth(token))
    assert response.status_code == 200
    document = response.json()
    links = [
        signed_link(api, v["video"].pop("originalUrl"), before) for v in document["videos"][:2]
    ]
    assert links == [f"{MEDIA_BASE}/acme/m0/e0.mp4", f"{MEDIA_BASE}/acme/m1/e1.webm"]
    assert document == {
        "finished": True,
        "state": "success",
        "id": job_id,
        "startedAt": "2020-01-01 13:45:12",
        "finishedAt": "2020-01-01 13:50:00",
        "overview": {"total": 3, "success": 1, "skipped": 1, "failed": 1},
        "videos": [
            {
                "state": "success",
                "systemName": "archive",
                "externalId": "ext-0",
                "video": {"mediaId": "m0", "mimeType": "video/mp4"},
            },
            {
                "state": "skipped",
                "reason": "already exists",
                "code": "already_exists",
                "systemName": "archive",
                "externalId": "ext-1",
                "video": {"mediaId": "m1", "mimeType": "video/webm"},
            },
            {
                "state": "failed",
                "reason": "not a video (text/html)",
                "code": "not_a_video",
                "systemName": "archive",
                "externalId": "ext-2",
            },
        ],
    }


async def test_unknown_and_foreign_jobs_are_404(api: RunningApi, token: str) -> None:
    other = await project_with_token(api.settings.database_url, "other")
    theirs = await submit(api, other)
    mine = await submit(api, token)
    conn = await asyncpg.connect(api.settings.database_url)
    try:
        await conn.execute(STATUS_DDL)
        await conn.execute(
            "INSERT INTO status_jobs VALUES"
            " ($1, 'other', 'archive', 'started', 2, now(), NULL, 0, 0, 0)",
            theirs,
        )
    finally:
        await conn.close()
    for job_id in (theirs, "nosuchjob123"):
        response = await api.http.get(STATUS_URL, params={"id": job_id}, headers=auth(token))
        assert response.status_code == 404, job_id
        assert_error_shape(response.json(), 404)
        assert response.json()["error_details"][0]["field"] == "id"
    # Each project sees its own job, whether projected or not.
    assert (await api.http.get(STATUS_URL, params={"id": theirs}, headers=auth(other))).json()[
        "id"
    ] == theirs
    assert (await api.http.get(STATUS_URL, params={"id": mine}, headers=auth(token))).json()[
        "id"
    ] == mine


async def test_the_id_parameter_is_required(api: RunningApi, token: str) -> None:
    for params in ({}, {"id": ""}):
        response = await api.http.get(STATUS_URL, params=params, headers=auth(token))
        assert response.status_code == 400
        assert_error_shape(response.json(), 400)
        assert response.json()["error_details"][0]["field"] == "id"


async def test_a_read_scope_token_reads_the_status_but_cannot_import(
    api: RunningApi, token: str
) -> None:
    job_id = await submit(api, token, count=1)
    reader = await project_with_token(api.settings.database_url, "acme", ["public-api:read"])
    response = await api.http.get(STATUS_URL, params={"id": job_id}, headers=auth(reader))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == job_id

    denied = await api.http.post(IMPORT_URL, json=batch(1), headers=auth(reader))
    assert denied.status_code == 403
    assert_error_shape(denied.json(), 403)
    assert 'scope="public-api:write"' in denied.headers["www-authenticate"]

    # A token with neither scope reads nothing; a read token of another project neither.
    neither = await project_with_token(api.settings.database_url, "acme", ["public-api:admin"])
    response = await api.http.get(STATUS_URL, params={"id": job_id}, headers=auth(neither))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'scope="public-api:read public-api:write"' in challenge
    stranger = await project_with_token(api.settings.database_url, "other", ["public-api:read"])
    response = await api.http.get(STATUS_URL, params={"id": job_id}, headers=auth(stranger))
    assert response.status_code == 404


async def test_every_status_call_mints_fresh_links(api: RunningApi, token: str) -> None:
    job_id = await submit(api, token, count=1)
    conn = await asyncpg.connect(api.settings.database_url)
    try:
        await conn.execute(STATUS_DDL)
        await conn.execute(
            "INSERT INTO status_jobs VALUES ($1, 'acme', 'archive', 'success', 1, now(), now(),"
            " 1, 0, 0)",
            job_id,
        )
        await conn.execute(
            "INSERT INTO status_videos VALUES ($1, 0, 'archive', 'ext-0', 'success', NULL, NULL,"
            " 'm0', 'video/mp4', 'acme/m0/e0.mp4', 'created')",
            job_id,
        )
    finally:
        await conn.close()

    async def link() -> Any:
        response = await api.http.get(STATUS_URL, params={"id": job_id}, headers=auth(token))
        return response.json()["videos"][0]["video"]["originalUrl"]

    first = await link()
    expires = int(parse_qs(urlsplit(first).query)["expires"][0])
    # Into the next second, so the next link expires later.
    await asyncio.sleep(max(0.0, expires - api.settings.media_link_ttl + 1.01 - time.time()))
    second = await link()
    assert int(parse_qs(urlsplit(second).query)["expires"][0]) > expires
    assert second != first
