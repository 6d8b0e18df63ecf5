"""POST …/cancel and POST …/retry over real HTTP against a real database: the answers,
the refusals, and the events they append (the log is what the other services act on)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from videoimport_api.domain.auth import READ_SCOPE
from videoimport_eventlog import store
from videoimport_eventlog.store import NewEvent
from videoimport_events import (
    ImportRequested,
    JobCancelled,
    JobCompleted,
    Overview,
    VideoImportFailed,
    VideoImportRequested,
    VideoImportSkipped,
    job_stream,
    video_stream,
)

from tests.polling import eventually

from .api_harness import (
    CANCEL_URL,
    RETRY_URL,
    RunningApi,
    append_to_log,
    assert_error_shape,
    auth,
    batch,
    project_with_token,
    submit_batch,
)

pytestmark = pytest.mark.integration
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def result(job_id: str, index: int, failed: bool = True) -> NewEvent:
    """A video's result as the ingester records it."""
    identity: dict[str, Any] = {
        "job_id": job_id,
        "project": "acme",
        "index": index,
        "system_name": "archive",
        "external_id": f"ext-{index}",
    }
    event: VideoImportFailed | VideoImportSkipped = (
        VideoImportFailed(**identity, reason="HTTP 404", code="download_failed")
        if failed
        else VideoImportSkipped(
            **identity, media_id="m", mime_type="video/mp4", storage_key="k", size=1, sha256="0"
        )
    )
    return NewEvent(event, video_stream(job_id, index), 1, job_id, "acme")


def completed(job_id: str, count: int) -> NewEvent:
    event = JobCompleted(
        job_id=job_id,
        project="acme",
        state="success",
        overview=Overview(total=count, success=0, skipped=1, failed=count - 1),
        started_at=T0,
        finished_at=T0,
    )
    return NewEvent(event, job_stream(job_id), 1, job_id, "acme")


async def log_of(dsn: str, job_id: str) -> list[store.RecordedEvent]:
    conn = await asyncpg.connect(dsn)
    try:
        return await store.read_correlated(conn, job_id)
    finally:
        await conn.close()


async def test_cancel_fails_the_open_videos_in_one_append(api: RunningApi, token: str) -> None:
    dsn = api.settings.database_url
    job_id = await submit_batch(api, token, batch(3))
    await append_to_log(dsn, [result(job_id, 1, failed=False)])

    response = await api.http.post(CANCEL_URL, params={"id": job_id}, headers=auth(token))
    assert response.status_code == 202, response.text
    assert response.json() == {"id": job_id, "cancelled": 2}

    recorded = await log_of(dsn, job_id)
    [cancellation] = [r for r in recorded if isinstance(r.event, JobCancelled)]
    assert cancellation.event == JobCancelled(
        job_id=job_id, project="acme", requested_by="api", cancelled=2
    )
    assert cancellation.stream_id == f"job-{job_id}/cancellation"
    failures = [r for r in recorded if isinstance(r.event, VideoImportFailed)]
    assert [(f.stream_id, f.stream_version) for f in failures] == [
        (video_stream(job_id, 0), 1),
        (video_stream(job_id, 2), 1),
    ]
    for failure in failures:
        assert isinstance(failure.event, VideoImportFailed)
        assert (failure.event.code, failure.event.reason) == (
            "cancelled",
            "cancelled by the client",
        )
        assert failure.causation_id == str(cancellation.event_id)
        assert failure.position > cancellation.position
    # One append: consecutive positions.
    assert [f.position for f in failures] == [cancellation.position + 1, cancellation.position + 2]
    registry = api.deps.metrics.registry
    assert registry.get_sample_value("videoimport_api_jobs_cancelled_total") == 1
    assert registry.get_sample_value("videoimport_api_videos_cancelled_total") == 2

    again = await api.http.post(CANCEL_URL, params={"id": job_id}, headers=auth(token))
    assert again.status_code == 409
    assert_error_shape(again.json(), 409)
    assert "already cancelled" in again.json()["error"]


async def test_cancel_refuses_finished_unknown_and_foreign_jobs(
    api: RunningApi, token: str
) -> None:
    dsn = api.settings.database_url
    done = await submit_batch(api, token, batch(1))
    await append_to_log(dsn, [result(done, 0, failed=False), completed(done, 1)])
    resulted = await submit_batch(api, token, batch(1))
    await append_to_log(dsn, [result(resulted, 0)])  # every video has a result, not completed
    for job_id in (done, resulted):
        response = await api.http.post(CANCEL_URL, params={"id": job_id}, headers=auth(token))
        assert response.status_code == 409, response.text
        assert_error_shape(response.json(), 409)
        assert "already finished" in response.json()["error"]

    other = await project_with_token(dsn, "other")
    running = await submit_batch(api, token, batch(1))
    for job_id, caller in (("nosuchjob", token), (running, other)):
        response = await api.http.post(CANCEL_URL, params={"id": job_id}, headers=auth(caller))
        assert response.status_code == 404
        assert_error_shape(response.json(), 404)

    reader = await project_with_token(dsn, "acme", [READ_SCOPE])
    response = await api.http.post(CANCEL_URL, params={"id": running}, headers=auth(reader))
    assert response.status_code == 403
    response = await api.http.post(CANCEL_URL, headers=auth(token))
    assert response.status_code == 400
    assert response.json()["error_details"] == [{"field": "id", "reason": "required"}]
    assert not [r for r in await log_of(dsn, running) if isinstance(r.event, JobCancelled)]


async def test_a_result_that_wins_the_race_is_kept_and_the_cancel_recomputes(
    api: RunningApi, token: str
) -> None:
    """The result's transaction holds the append lock while the cancel has read the
    video as open; once it commits, the cancel's append conflicts and is redone."""
    dsn = api.settings.database_url
    job_id = await submit_batch(api, token, batch(2))
    racer = await asyncpg.connect(dsn)
    observer = await asyncpg.connect(dsn)
    try:
        transaction = racer.transaction()
        await transaction.start()
        await store.append(racer, [result(job_id, 0)])

        cancelling = asyncio.create_task(
            api.http.post(CANCEL_URL, params={"id": job_id}, headers=auth(token))
        )

        async def waiting_for_the_lock() -> bool:
            return bool(
                await observer.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                )
            )

        await eventually(waiting_for_the_lock, "the cancel to wait for the append lock")
        await transaction.commit()
        response = await cancelling
    finally:
        await racer.close()
        await observer.close()
    assert response.status_code == 202, response.text
    assert response.json() == {"id": job_id, "cancelled": 1}
    results = {
        r.stream_id: r.event
        for r in await log_of(dsn, job_id)
        if isinstance(r.event, VideoImportFailed)
    }
    first, second = results[video_stream(job_id, 0)], results[video_stream(job_id, 1)]
    assert isinstance(first, VideoImportFailed) and first.code == "download_failed"
    assert isinstance(second, VideoImportFailed) and second.code == "cancelled"


async def test_retry_imports_the_failed_videos_again_as_a_new_job(
    api: RunningApi, token: str
) -> None:
    dsn = api.settings.database_url
    body = batch(3, webhook="https://hooks.example.com/in", context={"myIdentifier": "batch-17"})
    body["videos"][2]["metadata"] = {"title": "Third", "credit": {"who": ["LC", 1]}}
    old = await submit_batch(api, token, body)

    early = await api.http.post(RETRY_URL, params={"id": old}, headers=auth(token))
    assert early.status_code == 409
    assert_error_shape(early.json(), 409)
    assert "not finished" in early.json()["error"]

    await append_to_log(
        dsn,
        [result(old, 0), result(old, 1, failed=False), result(old, 2), completed(old, 3)],
    )
    response = await api.http.post(RETRY_URL, params={"id": old}, headers=auth(token))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer == {"id": answer["id"], "retryOf": old, "videos": 2}
    assert answer["id"] != old

    recorded = await log_of(dsn, answer["id"])
    requested = recorded[0].event
    assert isinstance(requested, ImportRequested)
    assert requested.retry_of == old and requested.video_count == 2
    assert requested.system_name == "archive"
    assert requested.webhook == "https://hooks.example.com/in"
    assert requested.context == {"myIdentifier": "batch-17"}
    videos = [r.event for r in recorded[1:]]
    assert all(isinstance(v, VideoImportRequested) for v in videos)
    assert [(v.index, v.external_id, v.url, v.file_name, v.metadata) for v in videos] == [  # type: ignore[union-attr]
        (0, "ext-0", body["videos"][0]["url"], "Video 0", {"title": "Title 0"}),
        (
            1,
            "ext-2",
            body["videos"][2]["url"],
            "Video 2",
            {"title": "Third", "credit": {"who": ["LC", 1]}},
        ),
    ]
    registry = api.deps.metrics.registry
    assert registry.get_sample_value("videoimport_api_jobs_retried_total") == 1
    assert registry.get_sample_value("videoimport_api_jobs_accepted_total") == 2


async def test_retry_replays_with_its_idempotency_key_and_refuses_what_it_cannot(
    api: RunningApi, token: str
) -> None:
    dsn = api.settings.database_url
    old = await submit_batch(api, token, batch(1))
    await append_to_log(dsn, [result(old, 0), completed(old, 1)])
    key = {"Idempotency-Key": "retry-1"}
    first = await api.http.post(RETRY_URL, params={"id": old}, headers={**auth(token), **key})
    again = await api.http.post(RETRY_URL, params={"id": old}, headers={**auth(token), **key})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers

    # The same key on an import of exactly the failed video is another request.
    same_videos = await api.http.post(
        f"{RETRY_URL.removesuffix('/retry')}", json=batch(1), headers={**auth(token), **key}
    )
    assert same_videos.status_code == 422
    assert_error_shape(same_videos.json(), 422)

    # Retrying the retry once it finished without failures: nothing to retry.
    retried = first.json()["id"]
    await append_to_log(
        dsn,
        [
            NewEvent(
                VideoImportSkipped(
                    job_id=retried,
                    project="acme",
                    index=0,
                    system_name="archive",
                    external_id="ext-0",
                    media_id="m",
                    mime_type="video/mp4",
                    storage_key="k",
                    size=1,
                    sha256="0",
                ),
                video_stream(retried, 0),
                1,
                retried,
                "acme",
            ),
            completed(retried, 1),
        ],
    )
    response = await api.http.post(RETRY_URL, params={"id": retried}, headers=auth(token))
    assert response.status_code == 409
    assert "no failed videos" in response.json()["error"]

    other = await project_with_token(dsn, "other")
    for job_id, caller in (("nosuchjob", token), (old, other)):
        response = await api.http.post(RETRY_URL, params={"id": job_id}, headers=auth(caller))
        assert response.status_code == 404
        assert_error_shape(response.json(), 404)
    reader = await project_with_token(dsn, "acme", [READ_SCOPE])
    response = await api.http.post(RETRY_URL, params={"id": old}, headers=auth(reader))
    assert response.status_code == 403
    bad_key = {"Idempotency-Key": "x" * 300}
    response = await api.http.post(
        RETRY_URL, params={"id": old}, headers={**auth(token), **bad_key}
    )
    assert response.status_code == 400
    assert response.json()["error_details"][0]["field"] == "Idempotency-Key"


async def test_ids_no_job_has_are_refused_before_any_query(api: RunningApi, token: str) -> None:
    for url in (CANCEL_URL, RETRY_URL):
        for job_id in ("a\x00b", "x" * 256):
            response = await api.http.post(url, params={"id": job_id}, headers=auth(token))
            assert response.status_code == 400, response.text
            assert_error_shape(response.json(), 400)
            assert [d["field"] for d in response.json()["error_details"]] == ["id"]
