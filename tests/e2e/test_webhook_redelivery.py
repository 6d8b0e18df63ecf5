"""A client sees its webhook in the status and has it sent again, through every service:
status → webhook delivered (1 attempt); POST redeliver → the same webhook-id again,
verified with the project's secret; status → 2 attempts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from standardwebhooks import Webhook

from .conftest import ClientSide, Deployment, service_logs
from .test_import_flow import API, auth, post_batch, video, wait_finished

pytestmark = pytest.mark.e2e


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def status_of(
    http: aiohttp.ClientSession, deployment: Deployment, job_id: str
) -> dict[str, Any]:
    async with http.get(
        f"{deployment.api_url}{API}/status", params={"id": job_id}, headers=auth(deployment.token)
    ) as response:
        assert response.status == 200, await response.text()
        document: dict[str, Any] = await response.json()
    return document


async def webhook_with(
    http: aiohttp.ClientSession, deployment: Deployment, job_id: str, attempts: int
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        webhook = (await status_of(http, deployment, job_id)).get("webhook")
        if webhook and webhook["state"] == "delivered" and webhook["attempts"] == attempts:
            return webhook
        assert asyncio.get_running_loop().time() < deadline, (
            f"webhook of {job_id} not delivered {attempts}x: {webhook}\n{service_logs(deployment)}"
        )
        await asyncio.sleep(0.2)


def posts_for(client_side: ClientSide, job_id: str) -> list[tuple[dict[str, str], bytes]]:
    return [(h, b) for h, b in client_side.webhooks if f'"id":"{job_id}"'.encode() in b]


async def test_the_status_shows_the_webhook_and_a_redelivery_sends_it_again(
    http: aiohttp.ClientSession, deployment: Deployment, client_side: ClientSide
) -> None:
    body = {
        "systemName": "redeliver",
        "webhook": client_side.url("/webhooks"),
        "context": {"myIdentifier": "again"},
        "videos": [video(client_side, "redeliver-1", "sample.mp4")],
    }
    job_id = await post_batch(http, deployment, body)
    await wait_finished(http, deployment, job_id)
    first = await webhook_with(http, deployment, job_id, 1)
    assert first["lastStatus"] == 204 and first["lastError"] is None
    assert first["nextAttemptAt"] is None and first["deliveredAt"] is not None
    [(headers, raw)] = posts_for(client_side, job_id)

    # A read token may look, not redeliver.
    url = f"{deployment.api_url}{API}/webhook/redeliver"
    async with http.post(
        url, params={"id": job_id}, headers=auth(deployment.readonly_token)
    ) as response:
        assert response.status == 403
    async with http.post(url, params={"id": job_id}, headers=auth(deployment.token)) as response:
        assert response.status == 202, await response.text()
        assert await response.json() == {"id": job_id}

    second = await webhook_with(http, deployment, job_id, 2)
    assert second["lastStatus"] == 204
    posts = posts_for(client_side, job_id)
    assert len(posts) == 2
    again_headers, again_raw = posts[1]
    assert again_headers["webhook-id"] == headers["webhook-id"]
    assert again_raw == raw
    Webhook(deployment.webhook_secret("newsroom")).verify(again_raw, again_headers)
