"""POST /api/{version}/import/videos/webhook/redeliver and ``videoimport webhook redeliver``
against a real database: the answers, and the WebhookRedeliveryRequested they append."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from videoimport_eventlog import store
from videoimport_events import JobCompleted, Overview, WebhookRedeliveryRequested

from .api_harness import (
    IMPORT_URL,
    RunningApi,
    assert_error_shape,
    auth,
    batch,
    project_with_token,
)
from .test_cli_tokens import videoimport

pytestmark = pytest.mark.integration
REDELIVER_URL = IMPORT_URL + "/webhook/redeliver"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def submit(api: RunningApi, token: str, **top: str) -> str:
    response = await api.http.post(IMPORT_URL, json=batch(1, **top), headers=auth(token))
    assert response.status_code == 200, response.text
    job_id: str = response.json()["id"]
    return job_id


async def complete(dsn: str, job_id: str, webhook: str | None) -> store.RecordedEvent:
    """The JobCompleted the projector would append once the job is finished."""
    event = JobCompleted(
        job_id=job_id,
        project="acme",
        state="success",
        overview=Overview(total=1, success=1, skipped=0, failed=0),
        started_at=T0,
        finished_at=T0,
        webhook=webhook,
    )
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await store.append(conn, [store.NewEvent(event, f"job-{job_id}", 1, job_id, "acme")])
        return (await store.read_stream(conn, f"job-{job_id}"))[-1]
    finally:
        await conn.close()


async def requests_of(dsn: str, job_id: str) -> list[store.RecordedEvent]:
    conn = await asyncpg.connect(dsn)
    try:
        recorded = await store.read_correlated(conn, job_id)
    finally:
        await conn.close()
    return [r for r in recorded if isinstance(r.event, WebhookRedeliveryRequested)]


async def test_redeliver_appends_a_request_per_call_on_its_own_stream(
    api: RunningApi, pg_dsn: str
) -> None:
    token = await project_with_token(pg_dsn, "acme")
    job_id = await submit(api, token, webhook="https://hooks.example.com/in")
    completed = await complete(pg_dsn, job_id, "https://hooks.example.com/in")
    for _ in range(2):
        response = await api.http.post(REDELIVER_URL, params={"id": job_id}, headers=auth(token))
        assert response.status_code == 202, response.text
        assert response.json() == {"id": job_id}

    first, second = await requests_of(pg_dsn, job_id)
    for request in (first, second):
        assert request.event == WebhookRedeliveryRequested(
            job_id=job_id, project="acme", requested_by="api"
        )
        assert request.stream_id.startswith(f"job-{job_id}/redelivery-")
        assert request.stream_version == 0
        assert (request.correlation_id, request.causation_id, request.project) == (
            job_id,
            str(completed.event_id),
            "acme",
        )
        assert request.position > completed.position
    assert first.stream_id != second.stream_id


async def test_unknown_and_other_projects_jobs_are_404(api: RunningApi, pg_dsn: str) -> None:
    token = await project_with_token(pg_dsn, "acme")
    other = await project_with_token(pg_dsn, "elsewhere")
    job_id = await submit(api, token, webhook="https://hooks.example.com/in")
    await complete(pg_dsn, job_id, "https://hooks.example.com/in")
    for job, bearer in (("nosuchjob000", token), (job_id, other)):
        response = await api.http.post(REDELIVER_URL, params={"id": job}, headers=auth(bearer))
        assert response.status_code == 404, response.text
        assert_error_shape(response.json(), 404)
    assert await requests_of(pg_dsn, job_id) == []


async def test_an_unfinished_job_or_one_without_webhook_is_409(
    api: RunningApi, pg_dsn: str
) -> None:
    token = await project_with_token(pg_dsn, "acme")
    running = await submit(api, token, webhook="https://hooks.example.com/in")
    response = await api.http.post(REDELIVER_URL, params={"id": running}, headers=auth(token))
    assert response.status_code == 409, response.text
    body = response.json()
    assert_error_shape(body, 409)
    assert body["error"] == f"import job {running} has not finished yet"
    assert body["error_details"] == [{"field": "id", "reason": body["error"]}]

    silent = await submit(api, token)
    await complete(pg_dsn, silent, None)
    response = await api.http.post(REDELIVER_URL, params={"id": silent}, headers=auth(token))
    assert response.status_code == 409, response.text
    assert response.json()["error"] == f"import job {silent} has no webhook"
    assert await requests_of(pg_dsn, running) == await requests_of(pg_dsn, silent) == []


async def test_a_read_token_may_not_redeliver(api: RunningApi, pg_dsn: str) -> None:
    token = await project_with_token(pg_dsn, "acme")
    reader = await project_with_token(pg_dsn, "acme", ["public-api:read"])
    job_id = await submit(api, token, webhook="https://hooks.example.com/in")
    await complete(pg_dsn, job_id, "https://hooks.example.com/in")
    response = await api.http.post(REDELIVER_URL, params={"id": job_id}, headers=auth(reader))
    assert response.status_code == 403, response.text
    assert_error_shape(response.json(), 403)
    response = await api.http.post(REDELIVER_URL, params={"id": job_id})
    assert response.status_code == 401
    response = await api.http.post(REDELIVER_URL, headers=auth(token))
    assert response.status_code == 400
    assert await requests_of(pg_dsn, job_id) == []


async def test_cli_webhook_redeliver_appends_the_same_event(api: RunningApi, pg_dsn: str) -> None:
    token = await project_with_token(pg_dsn, "acme")
    job_id = await submit(api, token, webhook="https://hooks.example.com/in")
    code, _, err = await videoimport("webhook", "redeliver", job_id, dsn=pg_dsn)
    assert code == 1 and err.strip().endswith(f"import job {job_id} has not finished yet")
    code, _, err = await videoimport("webhook", "redeliver", "nosuchjob000", dsn=pg_dsn)
    assert code == 1 and err.strip().endswith("no import job nosuchjob000")

    completed = await complete(pg_dsn, job_id, "https://hooks.example.com/in")
    code, out, err = await videoimport("webhook", "redeliver", job_id, dsn=pg_dsn)
    assert code == 0, err
    assert f"webhook redelivery of job {job_id} requested" in out
    [request] = await requests_of(pg_dsn, job_id)
    assert request.event == WebhookRedeliveryRequested(
        job_id=job_id, project="acme", requested_by="operator"
    )
    assert request.stream_id.startswith(f"job-{job_id}/redelivery-")
    assert (request.stream_version, request.causation_id) == (0, str(completed.event_id))
