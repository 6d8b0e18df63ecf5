"""GET /api/{version}/import/videos/jobs over real HTTP against a real database.

``status_jobs`` belongs to the projector; here the test writes its rows to check the
listing (order, filters, keyset pages, limits); the e2e suite lists projected jobs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from videoimport_api.domain.auth import READ_SCOPE
from videoimport_api.domain.cursor import JobsCursor, VideosCursor, encode

from .api_harness import (
    JOBS_URL,
    RunningApi,
    assert_error_shape,
    auth,
    batch,
    project_with_token,
    submit_batch,
)

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=26)]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def token(api: RunningApi) -> str:
    return await project_with_token(api.settings.database_url, "acme", [READ_SCOPE])


async def project_jobs(dsn: str, rows: list[tuple[Any, ...]]) -> None:
    """Rows as the projector writes them: (job, project, system, state, started_at, counts)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO status_jobs (job_id, project, system_name, state, video_count,"
            " started_at, finished_at, success, skipped, failed)"
            " VALUES ($1, $2, $3, $4, 3, $5::timestamptz,"
            " CASE WHEN $4 = 'started' THEN NULL ELSE $5::timestamptz + interval '90 seconds' END,"
            " $6, $7, $8)",
            rows,
        )
    finally:
        await conn.close()


def job(
    job_id: str,
    minutes: float,
    state: str = "success",
    system: str = "archive",
    project: str = "acme",
) -> tuple[Any, ...]:
    counts = {"started": (1, 0, 0), "success": (2, 1, 0), "failed": (0, 0, 3)}[state]
    return (job_id, project, system, state, T0 + timedelta(minutes=minutes), *counts)


async def listing(api: RunningApi, token: str, **params: Any) -> dict[str, Any]:
    response = await api.http.get(JOBS_URL, params=params, headers=auth(token))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def every_page(api: RunningApi, token: str, **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = await listing(api, token, **params, **({"cursor": cursor} if cursor else {}))
        pages.append([j["id"] for j in page["jobs"]])
        cursor = page["nextCursor"]
        if cursor is None:
            return pages


async def test_the_listing_is_newest_first_in_the_documented_shape(
    api: RunningApi, token: str
) -> None:
    dsn = api.settings.database_url
    await project_jobs(
        dsn,
        [
            job("old", 0, "failed"),
            job("new", 10, "started"),
            job("mid-a", 5),
            job("mid-b", 5),  # the same instant: the larger job id first
            job("foreign", 20, project="other"),
        ],
    )
    page = await listing(api, token)
    assert [j["id"] for j in page["jobs"]] == ["new", "mid-b", "mid-a", "old"]
    assert page["nextCursor"] is None
    assert page["jobs"][0] == {
        "id": "new",
        "state": "started",
        "finished": False,
        "systemName": "archive",
        "startedAt": "2026-01-01 12:10:00",
        "finishedAt": None,
        "progress": {"total": 3, "success": 1, "skipped": 0, "failed": 0},
    }
    assert page["jobs"][3] == {
        "id": "old",
        "state": "failed",
        "finished": True,
        "systemName": "archive",
        "startedAt": "2026-01-01 12:00:00",
        "finishedAt": "2026-01-01 12:01:30",
        "progress": {"total": 3, "success": 0, "skipped": 0, "failed": 3},
    }


async def test_a_job_the_projector_has_not_reached_is_not_listed_yet(
    api: RunningApi, token: str
) -> None:
    writer = await project_with_token(api.settings.database_url, "acme")
    await submit_batch(api, writer, batch(1))
    assert await listing(api, token) == {"jobs": [], "nextCursor": None}


async def test_filters_and_pages_follow_the_cursor_without_repeats(
    api: RunningApi, token: str
) -> None:
    dsn = api.settings.database_url
    await project_jobs(
        dsn,
        [job(f"s{i:02}", i, "success") for i in range(7)]
        + [job(f"f{i:02}", i + 0.5, "failed") for i in range(3)]
        + [job("other-system", 30, system="ingest")],
    )
    all_pages = await every_page(api, token, limit=3)
    assert [len(p) for p in all_pages] == [3, 3, 3, 2]
    flat = [j for p in all_pages for j in p]
    assert flat[0] == "other-system" and len(set(flat)) == 11

    assert await every_page(api, token, state="failed", limit=2) == [["f02", "f01"], ["f00"]]
    assert await every_page(api, token, systemName="ingest") == [["other-system"]]
    successes = await every_page(api, token, state="success", systemName="archive", limit=4)
    assert successes == [["s06", "s05", "s04", "s03"], ["s02", "s01", "s00"]]


async def test_pages_stay_stable_while_jobs_arrive(api: RunningApi, token: str) -> None:
    dsn = api.settings.database_url
    await project_jobs(dsn, [job(f"j{i}", i) for i in range(6)])
    first = await listing(api, token, limit=3)
    assert [j["id"] for j in first["jobs"]] == ["j5", "j4", "j3"]
    # A newer job and one that sorts into the pages still to come.
    await project_jobs(dsn, [job("newest", 60), job("j1b", 1.5)])
    second = await listing(api, token, limit=3, cursor=first["nextCursor"])
    assert [j["id"] for j in second["jobs"]] == ["j2", "j1b", "j1"]
    third = await listing(api, token, limit=3, cursor=second["nextCursor"])
    assert [j["id"] for j in third["jobs"]] == ["j0"]
    assert third["nextCursor"] is None


async def test_the_default_and_largest_page(api: RunningApi, token: str) -> None:
    await project_jobs(api.settings.database_url, [job(f"j{i:03}", i) for i in range(101)])
    assert len((await listing(api, token))["jobs"]) == 20
    largest = await listing(api, token, limit=100)
    assert len(largest["jobs"]) == 100 and largest["nextCursor"] is not None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=skipped", "state"),
        ("state=", "state"),
        ("state=failed&state=success", "state"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=-5", "limit"),
        ("systemName=", "systemName"),
        ("systemName=a%00b", "systemName"),
        ("systemName=" + "x" * 256, "systemName"),
        ("cursor=abc", "cursor"),
        ("cursor=%FF%FE", "cursor"),
        ("cursor=" + "A" * 5000, "cursor"),
    ],
)
async def test_a_bad_parameter_is_a_400_naming_it(
    api: RunningApi, token: str, query: str, field: str
) -> None:
    response = await api.http.get(f"{JOBS_URL}?{query}", headers=auth(token))
    assert response.status_code == 400, response.text
    body = response.json()
    assert_error_shape(body, 400)
    assert [d["field"] for d in body["error_details"]] == [field]


async def test_a_cursor_only_continues_its_own_listing(api: RunningApi, token: str) -> None:
    await project_jobs(api.settings.database_url, [job(f"j{i}", i, "failed") for i in range(3)])
    page = await listing(api, token, state="failed", limit=1)
    cursor = page["nextCursor"]
    for other in ({"state": "success"}, {}, {"state": "failed", "systemName": "archive"}):
        response = await api.http.get(
            JOBS_URL, params={**other, "cursor": cursor}, headers=auth(token)
        )
        assert response.status_code == 400, other
        assert response.json()["error_details"][0]["field"] == "cursor"
    # Well-formed cursors this API never gives out: text no id has, no date, another kind.
    forged = [
        JobsCursor(state="failed", system_name=None, started_at_us=2**62, job_id="j1"),
        JobsCursor(state="failed", system_name=None, started_at_us=0, job_id="a\x00b"),
        VideosCursor(job_id="j1", state="failed", index=0),
    ]
    for made in forged:
        response = await api.http.get(
            JOBS_URL, params={"state": "failed", "cursor": encode(made)}, headers=auth(token)
        )
        assert response.status_code == 400, made
        assert response.json()["error_details"][0]["field"] == "cursor"


async def test_the_listing_needs_a_token_with_a_scope(api: RunningApi) -> None:
    assert (await api.http.get(JOBS_URL)).status_code == 401
    response = await api.http.get(JOBS_URL, headers=auth("vit_unknown"))
    assert response.status_code == 401
    assert_error_shape(response.json(), 401)
    writer = await project_with_token(api.settings.database_url, "acme")
    assert (await api.http.get(JOBS_URL, headers=auth(writer))).status_code == 200
    response = await api.http.get("/api/1999-01/import/videos/jobs", headers=auth(writer))
    assert response.status_code == 404
