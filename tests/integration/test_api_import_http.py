"""POST /api/{version}/import/videos over real HTTP against a real event log."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from videoimport_eventlog import audit_trail, store
from videoimport_events import ImportRequested, VideoImportRequested

from .api_harness import (
    IMPORT_URL,
    STATUS_URL,
    RunningApi,
    assert_error_shape,
    auth,
    batch,
    project_with_token,
    running_api,
)

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=25)]


@pytest.fixture
async def api(pg_dsn: str) -> AsyncIterator[RunningApi]:
    async with running_api(pg_dsn, max_batch=20) as running:
        yield running


async def event_count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()


async def test_a_batch_is_recorded_as_one_job_and_one_request_per_video(
    api: RunningApi, token: str
) -> None:
    body = batch(3, webhook="https://hooks.example.com/done", context={"ticket": 42})
    response = await api.http.post(IMPORT_URL, json=body, headers=auth(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    job_id = response.json()["id"]
    assert set(response.json()) == {"id"}

    conn = await asyncpg.connect(api.settings.database_url)
    try:
        events = await store.read_correlated(conn, job_id)
        assert await audit_trail.verify_chain(conn) == 4
    finally:
        await conn.close()
    assert [(e.stream_id, e.stream_version) for e in events] == [
        (f"job-{job_id}", 0),
        (f"job-{job_id}/video-0", 0),
        (f"job-{job_id}/video-1", 0),
        (f"job-{job_id}/video-2", 0),
    ]
    first = events[0]
    assert first.event == ImportRequested(
        job_id=job_id,
        project="acme",
        system_name="archive",
        api_version="2025-03",
        video_count=3,
        webhook="https://hooks.example.com/done",
        context={"ticket": 42},
    )
    assert first.causation_id is None
    for index, recorded in enumerate(events[1:]):
        assert recorded.event == VideoImportRequested(
            job_id=job_id,
            project="acme",
            index=index,
            system_name="archive",
            external_id=f"ext-{index}",
            url=f"https://videos.example.com/{index}.mp4",
            file_name=f"Video {index}",
            metadata={"title": f"Title {index}"},
        )
        assert recorded.causation_id == str(first.event_id)
    assert {e.correlation_id for e in events} == {job_id}
    assert {e.project for e in events} == {"acme"}
    # All in one transaction: consecutive positions.
    assert [e.position for e in events] == list(range(events[0].position, events[0].position + 4))


async def test_one_bad_video_rejects_the_batch_and_writes_nothing(
    api: RunningApi, token: str
) -> None:
    body = batch(5)
    body["videos"][3]["url"] = "ftp://videos.example.com/3.mp4"
    response = await api.http.post(IMPORT_URL, json=body, headers=auth(token))
    assert response.status_code == 400
    payload = response.json()
    assert_error_shape(payload, 400)
    assert payload["error_details"] == [
        {"field": "videos[3].url", "reason": "must be an http or https URL (scheme is 'ftp')"}
    ]
    assert await event_count(api.settings.database_url) == 0


async def test_the_seed_curl_body_gets_a_400_naming_the_position(
    api: RunningApi, token: str
) -> None:
    broken = (
        b'{\n"systemName": "s",\n"videos": [\n{\n"url": "https://a.example/v.mp4",\n'
        b'"id": "123abc",\n"fileName": "sample",\n"metadata": {\n'
        b'"title": "sample video"\n"credit": "LC"\n}\n}\n]\n}'
    )
    response = await api.http.post(
        IMPORT_URL,
        content=broken,
        headers={**auth(token), "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 400
    [detail] = response.json()["error_details"]
    assert detail["field"] == "body"
    assert "expected ',' or '}' at line 10, column 1" in detail["reason"]
    assert await event_count(api.settings.database_url) == 0


async def test_too_large_and_non_json_bodies(api: RunningApi, token: str) -> None:
    too_big = json.dumps(batch(1, padding="x" * api.settings.max_body_bytes)).encode()
    response = await api.http.post(IMPORT_URL, content=too_big, headers=auth(token))
    assert response.status_code == 413
    assert_error_shape(response.json(), 413)
    assert response.json()["error_details"][0]["field"] == "body"

    response = await api.http.post(
        IMPORT_URL,
        content=json.dumps(batch(1)),
        headers={**auth(token), "Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert_error_shape(response.json(), 415)

    response = await api.http.post(IMPORT_URL, json=batch(21), headers=auth(token))
    assert response.status_code == 400
    assert response.json()["error_details"] == [
        {"field": "videos", "reason": "must contain at most 20 videos, got 21"}
    ]
    assert await event_count(api.settings.database_url) == 0


@pytest.mark.parametrize("url", [IMPORT_URL, STATUS_URL + "?id=abc"])
async def test_a_token_is_required(api: RunningApi, url: str) -> None:
    for headers in ({}, auth("vit_not-a-token"), {"Authorization": "Basic dXNlcjpwdw=="}):
        if url == IMPORT_URL:
            response = await api.http.post(url, json=batch(1), headers=headers)
        else:
            response = await api.http.get(url, headers=headers)
        assert response.status_code == 401
        assert_error_shape(response.json(), 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert await event_count(api.settings.database_url) == 0


async def test_importing_needs_the_write_scope(api: RunningApi) -> None:
    read_only = await project_with_token(api.settings.database_url, "acme", ["public-api:read"])
    response = await api.http.post(IMPORT_URL, json=batch(1), headers=auth(read_only))
    assert response.status_code == 403
    assert_error_shape(response.json(), 403)
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    # The same token reads statuses (an unknown job is a 404, not a 403).
    response = await api.http.get(STATUS_URL, params={"id": "abc"}, headers=auth(read_only))
    assert response.status_code == 404
    assert await event_count(api.settings.database_url) == 0


PRIVATE_LITERALS = [
    "http://127.0.0.1:8080/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:10.0.0.1]/hook",
    "http://2130706433/hook",
]


@pytest.mark.parametrize("literal", PRIVATE_LITERALS)
async def test_a_private_address_literal_is_refused_at_the_door(
    api: RunningApi, token: str, literal: str
) -> None:
    body = batch(2, webhook=literal)
    body["videos"][1]["url"] = literal
    response = await api.http.post(IMPORT_URL, json=body, headers=auth(token))
    assert response.status_code == 400
    payload = response.json()
    assert_error_shape(payload, 400)
    assert payload["error_details"] == [
        {"field": "webhook", "reason": "forbidden address"},
        {"field": "videos[1].url", "reason": "forbidden address"},
    ]
    host = urlsplit(literal).hostname
    assert host and host not in response.text  # the answer never echoes the address
    assert await event_count(api.settings.database_url) == 0
    # A name is not resolved at the door: the fetchers check where it leads on connect.
    named = batch(1, webhook="http://localhost:8080/hook")
    assert (await api.http.post(IMPORT_URL, json=named, headers=auth(token))).status_code == 200


async def test_private_literals_are_accepted_when_allowed(pg_dsn: str) -> None:
    async with running_api(pg_dsn, allow_private_urls=True) as api:
        token = await project_with_token(pg_dsn, "acme")
        for literal in PRIVATE_LITERALS:
            body = batch(1, webhook=literal)
            body["videos"][0]["url"] = literal
            response = await api.http.post(IMPORT_URL, json=body, headers=auth(token))
            assert response.status_code == 200, response.text


async def test_unknown_and_retired_versions(api: RunningApi, token: str) -> None:
    response = await api.http.post("/api/1999-01/import/videos", json=batch(), headers=auth(token))
    assert response.status_code == 404
    assert_error_shape(response.json(), 404)
    assert response.json()["error_details"][0]["field"] == "apiVersion"
    response = await api.http.get("/api/1999-01/import/videos/status?id=x", headers=auth(token))
    assert response.status_code == 404

    response = await api.http.post("/api/2024-01/import/videos", json=batch(), headers=auth(token))
    assert response.status_code == 410
    assert_error_shape(response.json(), 410)
    # Names what to use instead: the versions answered, not the retired one.
    assert response.json()["error_details"][0]["reason"] == "supported: 2025-03"

    response = await api.http.get("/no/such/route")
    assert response.status_code == 404
    assert_error_shape(response.json(), 404)
    response = await api.http.delete(IMPORT_URL, headers=auth(token))
    assert response.status_code == 405
    assert_error_shape(response.json(), 405)
    assert await event_count(api.settings.database_url) == 0


async def test_an_idempotency_key_replays_the_same_job(api: RunningApi, token: str) -> None:
    key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
    first = await api.http.post(IMPORT_URL, json=batch(2), headers={**auth(token), **key})
    assert first.status_code == 200
    job_id = first.json()["id"]
    # The same request, keys in another order: still the same request.
    reordered = dict(reversed(list(batch(2).items())))
    again = await api.http.post(IMPORT_URL, json=reordered, headers={**auth(token), **key})
    assert again.status_code == 200
    assert again.json() == {"id": job_id}
    assert again.headers["idempotent-replayed"] == "true"
    assert await event_count(api.settings.database_url) == 3

    changed = await api.http.post(
        IMPORT_URL, json=batch(2, system="other"), headers={**auth(token), **key}
    )
    assert changed.status_code == 422
    assert_error_shape(changed.json(), 422)
    assert changed.json()["error_details"][0]["field"] == "Idempotency-Key"

    # Keys belong to a project: another project's same key is a new job.
    other = await project_with_token(api.settings.database_url, "other")
    theirs = await api.http.post(IMPORT_URL, json=batch(2), headers={**auth(other), **key})
    assert theirs.status_code == 200
    assert theirs.json()["id"] != job_id
    assert await event_count(api.settings.database_url) == 6

    without_key = await api.http.post(IMPORT_URL, json=batch(2), headers=auth(token))
    assert without_key.json()["id"] not in (job_id, theirs.json()["id"])


async def test_concurrent_first_uses_of_a_key_make_one_job(api: RunningApi, token: str) -> None:
    headers = {**auth(token), "Idempotency-Key": "concurrent"}
    responses = await asyncio.gather(
        *(api.http.post(IMPORT_URL, json=batch(3), headers=headers) for _ in range(8))
    )
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.json()["id"] for r in responses}) == 1
    assert await event_count(api.settings.database_url) == 4


async def test_request_metrics_are_not_on_the_api_port_by_default(
    api: RunningApi, token: str
) -> None:
    assert (await api.http.get("/health")).json() == {"status": "ok"}
    response = await api.http.get("/metrics")
    assert response.status_code == 404
    assert_error_shape(response.json(), 404)


async def test_metrics_on_the_api_port_when_asked_for(pg_dsn: str) -> None:
    async with running_api(pg_dsn, public_metrics=True) as api:
        token = await project_with_token(pg_dsn, "acme")
        health = await api.http.get("/health")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        await api.http.post(IMPORT_URL, json=batch(2), headers=auth(token))
        await api.http.post(IMPORT_URL, json={}, headers=auth(token))
        metrics = await api.http.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert_request_counts(metrics.text)


def assert_request_counts(text: str) -> None:
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    route = "/api/{api_version}/import/videos"
    for status in ("200", "400"):
        labels = (("method", "POST"), ("route", route), ("status", status))
        assert samples[("videoimport_api_requests_total", labels)] == 1.0
        assert samples[("videoimport_api_request_duration_seconds_count", labels)] == 1.0
    health_labels = (("method", "GET"), ("route", "/health"), ("status", "200"))
    assert samples[("videoimport_api_requests_total", health_labels)] == 1.0
    assert samples[("videoimport_api_videos_accepted_total", ())] == 2.0
    assert samples[("videoimport_api_jobs_accepted_total", ())] == 1.0
