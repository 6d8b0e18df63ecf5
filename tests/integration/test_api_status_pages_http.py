"""GET …/status?id=&state=&cursor=&limit=: the status with a page of its videos, and
where each video without a result is (``ingest_tasks``), over real HTTP.

The read model belongs to the projector and ``ingest_tasks`` to the ingester; the test
writes their rows to check the rendering; the e2e suite covers the real path.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from .api_harness import (
    STATUS_URL,
    RunningApi,
    assert_error_shape,
    auth,
    batch,
    project_with_token,
    running_api,
    submit_batch,
)

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def api(pg_dsn: str) -> AsyncIterator[RunningApi]:
    async with running_api(pg_dsn, media_base_url="https://media.example.com/media") as running:
        yield running


async def project(
    dsn: str, job_id: str, state: str, results: dict[int, tuple[Any, ...]], count: int
) -> None:
    """The projector's rows: the job and every video (``results``: index → state, code)."""
    conn = await asyncpg.connect(dsn)
    try:
        counts = [
            sum(1 for s, _ in results.values() if s == k) for k in ("success", "skipped", "failed")
        ]
        await conn.execute(
            "INSERT INTO status_jobs (job_id, project, system_name, state, video_count, started_at,"
            " finished_at, success, skipped, failed) VALUES ($1, 'acme', 'archive', $2, $3, $4,"
            " $5, $6, $7, $8)",
            job_id,
            state,
            count,
            T0,
            None if state == "started" else T0,
            *counts,
        )
        await conn.executemany(
            "INSERT INTO status_videos (job_id, idx, system_name, external_id, state, code, reason,"
            " media_id, mime_type, storage_key) VALUES ($1, $2, 'archive', $3, $4, $5, $6,"
            " $7, $8, $9)",
            [(job_id, i, f"ext-{i}", *_result(results.get(i))) for i in range(count)],
        )
    finally:
        await conn.close()


def _result(result: tuple[Any, ...] | None) -> tuple[Any, ...]:
    if result is None:
        return (None, None, None, None, None, None)
    state, code = result
    if state == "failed":
        return (state, code, "it failed", None, None, None)
    return (state, None, None, "m", "video/mp4", "acme/m/e.mp4")


async def queue(
    dsn: str, job_id: str, rows: list[tuple[int, str | None, int | None, int | None, bool]]
) -> None:
    """The ingester's queue rows: (index, phase, bytes done, bytes total, index column set)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO ingest_tasks (event_id, position, project, job_id, video_key, envelope,"
            " video_index, phase, bytes_done, bytes_total, lease_owner, lease_until)"
            " VALUES ($1, $2, 'acme', $3, $4, $5::json, $6, $7, $8, $9,"
            # A worker is on a row with a phase: its lease lives.
            " CASE WHEN $7::text IS NULL THEN NULL ELSE 'worker' END,"
            " CASE WHEN $7::text IS NULL THEN NULL ELSE now() + interval '1 minute' END)",
            [
                (
                    f"{job_id}-{index}",
                    1000 + index,
                    job_id,
                    f"acme/archive/ext-{index}",
                    json.dumps({"type": "VideoImportRequested", "data": {"index": index}}),
                    index if with_column else None,
                    phase,
                    done,
                    total,
                )
                for index, phase, done, total, with_column in rows
            ],
        )
    finally:
        await conn.close()


async def status(api: RunningApi, token: str, job_id: str, **params: Any) -> dict[str, Any]:
    response = await api.http.get(STATUS_URL, params={"id": job_id, **params}, headers=auth(token))
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def test_a_running_job_pages_its_videos_with_their_phases(
    api: RunningApi, token: str
) -> None:
    dsn = api.settings.database_url
    job_id = await submit_batch(api, token, batch(5))
    await project(dsn, job_id, "started", {0: ("success", None), 3: ("failed", "not_a_video")}, 5)
    await queue(
        dsn,
        job_id,
        [
            (1, "downloading", 2048, 10_000, True),
            (2, "storing", 4096, None, False),
            (4, None, None, None, True),
        ],
    )
    unpaged = await status(api, token, job_id)
    assert unpaged == {
        "finished": False,
        "state": "started",
        "id": job_id,
        "startedAt": "2026-01-01 12:00:00",
        "progress": {"total": 5, "success": 1, "skipped": 0, "failed": 1},
    }
    paged = await status(api, token, job_id, limit=100)
    assert paged == {**unpaged, "videos": paged["videos"], "nextCursor": None}
    videos = paged["videos"]
    assert videos[0]["state"] == "success" and videos[0]["phase"] == "done"
    assert videos[0]["video"]["originalUrl"].startswith(
        "https://media.example.com/media/acme/m/e.mp4?"
    )
    assert videos[1:] == [
        {
            "state": "started",
            "phase": "downloading",
            "bytesDownloaded": 2048,
            "bytesTotal": 10_000,
            "systemName": "archive",
            "externalId": "ext-1",
        },
        {
            "state": "started",
            "phase": "storing",
            "bytesDownloaded": 4096,
            "bytesTotal": None,
            "systemName": "archive",
            "externalId": "ext-2",
        },
        {
            "state": "failed",
            "reason": "it failed",
            "code": "not_a_video",
            "systemName": "archive",
            "externalId": "ext-3",
            "phase": "done",
        },
        {
            "state": "started",
            "phase": "queued",
            "bytesTotal": None,
            "systemName": "archive",
            "externalId": "ext-4",
        },
    ]
    started = await status(api, token, job_id, state="started")
    assert [v["externalId"] for v in started["videos"]] == ["ext-1", "ext-2", "ext-4"]
    failed = await status(api, token, job_id, state="failed")
    assert [v["externalId"] for v in failed["videos"]] == ["ext-3"]

    # The downloading worker died: once its lease ran out, the video is queued again.
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE ingest_tasks SET lease_until = now() - interval '1 second' WHERE event_id = $1",
            f"{job_id}-1",
        )
    finally:
        await conn.close()
    again = await status(api, token, job_id, state="started")
    assert again["videos"][0] == {
        "state": "started",
        "phase": "queued",
        "bytesTotal": None,
        "systemName": "archive",
        "externalId": "ext-1",
    }


async def test_pages_follow_the_cursor_in_index_order(api: RunningApi, token: str) -> None:
    dsn = api.settings.database_url
    job_id = await submit_batch(api, token, batch(7))
    results = {i: ("failed", "timeout") for i in (0, 2, 3, 6)} | {
        1: ("skipped", None),
        4: ("success", None),
        5: ("success", None),
    }
    await project(dsn, job_id, "success", results, 7)

    def pages(**params: Any) -> Any:
        async def walk() -> list[list[str]]:
            seen: list[list[str]] = []
            cursor = None
            while True:
                page = await status(
                    api, token, job_id, **params, **({"cursor": cursor} if cursor else {})
                )
                assert page["finished"] is True and page["overview"]["total"] == 7
                seen.append([v["externalId"] for v in page["videos"]])
                cursor = page["nextCursor"]
                if cursor is None:
                    return seen

        return walk()

    assert await pages(limit=3) == [
        ["ext-0", "ext-1", "ext-2"],
        ["ext-3", "ext-4", "ext-5"],
        ["ext-6"],
    ]
    assert await pages(state="failed", limit=2) == [["ext-0", "ext-2"], ["ext-3", "ext-6"]]
    assert await pages(state="started") == [[]]
    document = await status(api, token, job_id)
    assert "nextCursor" not in document and len(document["videos"]) == 7
    assert all("phase" not in v for v in document["videos"])


async def test_a_job_not_projected_yet_pages_from_the_log(api: RunningApi, token: str) -> None:
    dsn = api.settings.database_url
    job_id = await submit_batch(api, token, batch(3))
    await queue(dsn, job_id, [(1, "downloading", 10, None, False)])
    first = await status(api, token, job_id, limit=2)
    assert first["state"] == "started" and first["progress"]["total"] == 3
    assert [(v["externalId"], v["phase"]) for v in first["videos"]] == [
        ("ext-0", "queued"),
        ("ext-1", "downloading"),
    ]
    assert first["videos"][1]["bytesDownloaded"] == 10
    second = await status(api, token, job_id, limit=2, cursor=first["nextCursor"])
    assert [v["externalId"] for v in second["videos"]] == ["ext-2"]
    assert second["nextCursor"] is None
    assert (await status(api, token, job_id, state="success"))["videos"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=queued", "state"),
        ("state=", "state"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=1&limit=2", "limit"),
        ("limit=1.5", "limit"),
        ("cursor=", "cursor"),
        ("cursor=zzzz", "cursor"),
    ],
)
async def test_a_bad_paging_parameter_is_a_400_naming_it(
    api: RunningApi, token: str, query: str, field: str
) -> None:
    job_id = await submit_batch(api, token, batch(1))
    response = await api.http.get(f"{STATUS_URL}?id={job_id}&{query}", headers=auth(token))
    assert response.status_code == 400, response.text
    assert_error_shape(response.json(), 400)
    assert [d["field"] for d in response.json()["error_details"]] == [field]


async def test_a_cursor_belongs_to_one_job_and_state(api: RunningApi, token: str) -> None:
    dsn = api.settings.database_url
    first, second = (
        await submit_batch(api, token, batch(3)),
        await submit_batch(api, token, batch(3)),
    )
    page = await status(api, token, first, limit=1)
    for job_id, params in ((second, {}), (first, {"state": "started"})):
        response = await api.http.get(
            STATUS_URL,
            params={"id": job_id, "cursor": page["nextCursor"], **params},
            headers=auth(token),
        )
        assert response.status_code == 400
        assert response.json()["error_details"][0]["field"] == "cursor"
    other = await project_with_token(dsn, "other")
    response = await api.http.get(STATUS_URL, params={"id": first, "limit": 5}, headers=auth(other))
    assert response.status_code == 404
    assert_error_shape(response.json(), 404)
