"""A client's view: POST a batch, poll the status, receive the webhook, re-import.

Everything runs through the real path: API → event log → relay → Kafka →
ingester → S3 + log → projector → status; JobCompleted → notifier → webhook.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from standardwebhooks import Webhook, WebhookVerificationError
from videoimport_eventlog import audit_trail, store

from .conftest import FIXTURES, ClientSide, Deployment, service_logs

API = "/api/2025-03/import/videos"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post_batch(
    http: aiohttp.ClientSession, deployment: Deployment, body: dict[str, Any]
) -> str:
    async with http.post(
        deployment.api_url + API, json=body, headers=auth(deployment.token)
    ) as response:
        assert response.status == 200, await response.text()
        payload = await response.json()
    job_id: str = payload["id"]
    return job_id


async def wait_finished(
    http: aiohttp.ClientSession, deployment: Deployment, job_id: str, within: float = 90.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with http.get(
            f"{deployment.api_url}{API}/status",
            params={"id": job_id},
            headers=auth(deployment.token),
        ) as response:
            assert response.status == 200, await response.text()
            status: dict[str, Any] = await response.json()
        if status["finished"]:
            return status
        assert status == {**status, "finished": False, "state": "started", "id": job_id}
        assert asyncio.get_running_loop().time() < deadline, (
            f"job {job_id} not finished: {status}\n{service_logs(deployment)}"
        )
        await asyncio.sleep(0.2)


def video(
    client_side: ClientSide, external_id: str, name: str = "sample.mp4", **metadata: Any
) -> dict[str, Any]:
    return {
        "url": client_side.url(f"/samples/{name}"),
        "id": external_id,
        "fileName": external_id,
        "metadata": metadata or {"title": f"video {external_id}"},
    }


async def test_a_batch_is_imported_reported_and_notified(
    http: aiohttp.ClientSession, deployment: Deployment, client_side: ClientSide
) -> None:
    body = {
        "systemName": "archive",
        "webhook": client_side.url("/webhooks"),
        "context": {"myIdentifier": "batch-1"},
        "videos": [
            video(client_side, "mp4-1", "sample.mp4", title="An mp4", credit="LC"),
            video(client_side, "webm-1", "sample.webm"),
            video(client_side, "mov-1", "sample.mov"),
            {
                "url": client_side.url("/html-as-mp4"),
                "id": "html-1",
                "fileName": "page",
                "metadata": {"title": "not a video"},
            },
            video(client_side, "meta-1", "sample.mp4", credit="no title"),
        ],
    }
    job_id = await post_batch(http, deployment, body)
    status = await wait_finished(http, deployment, job_id)

    assert status["state"] == "success"
    assert status["id"] == job_id
    assert [v["externalId"] for v in status["videos"]] == [
        "mp4-1",
        "webm-1",
        "mov-1",
        "html-1",
        "meta-1",
    ]
    assert [v["state"] for v in status["videos"]] == [
        "success",
        "success",
        "success",
        "failed",
        "failed",
    ]
    assert {v["systemName"] for v in status["videos"]} == {"archive"}
    mime_types = [v["video"]["mimeType"] for v in status["videos"][:3]]
    assert mime_types == ["video/mp4", "video/webm", "video/quicktime"]
    html, meta = status["videos"][3], status["videos"][4]
    assert html["reason"].startswith("not a video") and "text/html" in html["reason"]
    assert meta["reason"] == "metadata.title: required"
    assert "video" not in html

    # originalUrl serves exactly the bytes the client's host served.
    for entry, name in zip(
        status["videos"][:3], ("sample.mp4", "sample.webm", "sample.mov"), strict=True
    ):
        async with http.get(entry["video"]["originalUrl"]) as response:
            assert response.status == 200
            stored = await response.read()
        assert (
            hashlib.sha256(stored).hexdigest()
            == hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest()
        )

    await asyncio.wait_for(client_side.webhook_arrived.wait(), 60)
    headers, raw = client_side.webhooks[-1]
    assert json.loads(raw) == {
        "id": job_id,
        "state": "success",
        "context": {"myIdentifier": "batch-1"},
        "overview": {"total": 5, "success": 3, "skipped": 0, "failed": 2},
    }
    # Verified as a receiver does it, with the project's own secret (and only that).
    Webhook(deployment.webhook_secret("newsroom")).verify(raw, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(deployment.webhook_secret("elsewhere")).verify(raw, headers)


async def test_reimport_updates_skips_and_never_duplicates(
    http: aiohttp.ClientSession, deployment: Deployment, client_side: ClientSide
) -> None:
    first = await wait_finished(
        http,
        deployment,
        await post_batch(
            http,
            deployment,
            {
                "systemName": "reimport",
                "videos": [
                    video(client_side, "a"),
                    video(client_side, "b"),
                    video(client_side, "c"),
                ],
            },
        ),
    )
    media = {v["externalId"]: v["video"]["mediaId"] for v in first["videos"]}
    downloads_before = client_side.requests.get("sample.mp4", 0)

    second = await wait_finished(
        http,
        deployment,
        await post_batch(
            http,
            deployment,
            {
                "systemName": "reimport",
                "videos": [
                    video(client_side, "a"),  # nothing changed
                    video(client_side, "b", title="a new title"),  # metadata only
                    video(client_side, "c", "sample.webm"),  # a new url
                ],
            },
        ),
    )
    a, b, c = second["videos"]
    assert a["state"] == "skipped" and a["reason"] == "already exists"
    assert b["state"] == "success" and c["state"] == "success"
    assert {v["externalId"]: v["video"]["mediaId"] for v in second["videos"]} == media
    assert c["video"]["mimeType"] == "video/webm"
    # Only the changed url was fetched again.
    assert client_side.requests.get("sample.mp4", 0) == downloads_before
    assert client_side.requests["sample.webm"] >= 1

    conn = await asyncpg.connect(deployment.stack.postgres_dsn)
    try:
        rows = await conn.fetchval(
            "SELECT count(*) FROM media WHERE project = 'newsroom' AND system_name = 'reimport'"
        )
    finally:
        await conn.close()
    assert rows == 3


async def test_all_failed_means_the_job_failed(
    http: aiohttp.ClientSession, deployment: Deployment, client_side: ClientSide
) -> None:
    status = await wait_finished(
        http,
        deployment,
        await post_batch(
            http,
            deployment,
            {
                "systemName": "broken",
                "videos": [
                    {
                        "url": client_side.url("/samples/missing.mp4"),
                        "id": "gone",
                        "fileName": "gone",
                        "metadata": {"title": "gone"},
                    }
                ],
            },
        ),
    )
    assert status["state"] == "failed"
    assert status["videos"][0]["state"] == "failed"
    assert "404" in status["videos"][0]["reason"]


async def test_bad_requests_are_answered_and_write_nothing(
    http: aiohttp.ClientSession, deployment: Deployment, client_side: ClientSide
) -> None:
    conn = await asyncpg.connect(deployment.stack.postgres_dsn)
    try:
        before = await conn.fetchval("SELECT count(*) FROM events")
        bad = {
            "systemName": "x",
            "videos": [video(client_side, "1"), {**video(client_side, "2"), "url": "ftp://a/b"}],
        }
        async with http.post(
            deployment.api_url + API, json=bad, headers=auth(deployment.token)
        ) as response:
            assert response.status == 400
            error = await response.json()
        assert any(d["field"] == "videos[1].url" for d in error["error_details"])
        async with http.post(deployment.api_url + API, json=bad) as response:
            assert response.status == 401
        async with http.post(
            deployment.api_url + API, json=bad, headers=auth(deployment.readonly_token)
        ) as response:
            assert response.status == 403
        async with http.post(
            deployment.api_url + "/api/1999-01/import/videos",
            json=bad,
            headers=auth(deployment.token),
        ) as response:
            assert response.status == 404
        assert await conn.fetchval("SELECT count(*) FROM events") == before
    finally:
        await conn.close()


async def test_another_projects_job_is_not_found(
    http: aiohttp.ClientSession, deployment: Deployment, client_side: ClientSide
) -> None:
    job_id = await post_batch(
        http, deployment, {"systemName": "private", "videos": [video(client_side, "p1")]}
    )
    async with http.get(
        f"{deployment.api_url}{API}/status",
        params={"id": job_id},
        headers=auth(deployment.other_token),
    ) as response:
        assert response.status == 404


async def test_the_log_tells_an_auditor_what_happened_and_kafka_carries_it(
    http: aiohttp.ClientSession, deployment: Deployment, client_side: ClientSide
) -> None:
    job_id = await post_batch(
        http,
        deployment,
        {"systemName": "audit", "videos": [video(client_side, "x1"), video(client_side, "x2")]},
    )
    await wait_finished(http, deployment, job_id)

    conn = await asyncpg.connect(deployment.stack.postgres_dsn)
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            history = await store.read_correlated(conn, job_id)
            if any(e.event_type == "JobCompleted" for e in history):
                break
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
        assert await audit_trail.verify_chain(conn) > 0
    finally:
        await conn.close()
    types = [e.event_type for e in history]
    assert types[:3] == ["ImportRequested", "VideoImportRequested", "VideoImportRequested"]
    assert sorted(types[3:5]) == ["VideoImported", "VideoImported"]
    assert types[5:] == ["JobCompleted"]
    requested = {e.event_id for e in history if e.event_type == "VideoImportRequested"}
    assert {e.causation_id for e in history if e.event_type == "VideoImported"} == {
        str(i) for i in requested
    }

    # Subscribers see the same events on Kafka, with the documented headers.
    consumer = AIOKafkaConsumer(
        deployment.topic_prefix + "videoimport.jobs",
        bootstrap_servers=deployment.stack.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=deployment.topic_prefix + "auditor",
    )
    await consumer.start()
    try:
        found: dict[str, dict[str, bytes]] = {}
        deadline = asyncio.get_running_loop().time() + 30
        while len(found) < 2:
            assert asyncio.get_running_loop().time() < deadline, found
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    envelope = json.loads(record.value)
                    if envelope["correlation_id"] == job_id:
                        found[envelope["type"]] = dict(record.headers)
                        assert record.key == job_id.encode()
    finally:
        await consumer.stop()
    assert set(found) == {"ImportRequested", "JobCompleted"}
    assert found["JobCompleted"]["event-type"] == b"JobCompleted"
