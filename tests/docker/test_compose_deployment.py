"""docker-compose.yml as deployed: an import from a video host on the compose network to
its signed webhook, and the data of PostgreSQL, Kafka and the S3 server kept when their
containers are recreated (new containers, the same named volumes)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.docker.deployment import REPO, Deployment, ImportedJob, webhook_body
from tests.docker.harness import docker_unavailable

# The one line a machine without Docker sees for the whole tier.
_UNAVAILABLE = docker_unavailable()
if _UNAVAILABLE:
    pytest.skip(_UNAVAILABLE, allow_module_level=True)

# Building the image and pulling the servers' images count against the first test.
pytestmark = pytest.mark.timeout(1800)

SAMPLES = REPO / "tests" / "fixtures"
# The stateful services of docker-compose.yml; the S3 server is Garage.
STATEFUL = ("postgres", "kafka", "garage")


async def stored_bytes(
    client: httpx.AsyncClient, deployment: Deployment, video: dict[str, Any]
) -> bytes:
    response = await client.get(deployment.on_api(video["video"]["originalUrl"]))
    assert response.status_code == 200, response.text
    return response.content


async def test_an_import_succeeds_and_its_webhook_arrives_signed(
    deployment: Deployment, first_import: ImportedJob
) -> None:
    status = first_import.status
    assert status["state"] == "success", status
    [video] = status["videos"]
    assert video["state"] == "success", video
    assert video["video"]["mimeType"] == "video/mp4"
    async with httpx.AsyncClient(timeout=10.0) as client:
        assert (
            await stored_bytes(client, deployment, video) == (SAMPLES / "sample.mp4").read_bytes()
        )
        webhook = await deployment.webhook_for(client, first_import.job_id)
    body = webhook_body(webhook)
    Webhook(deployment.webhook_secret).verify(body, webhook["headers"])
    payload = json.loads(body)
    assert payload["state"] == "success"
    assert payload["context"] == {"run": "first"}


async def test_recreated_stateful_containers_keep_their_data(
    deployment: Deployment, first_import: ImportedJob
) -> None:
    deployment.compose_run("up", "--detach", "--force-recreate", "--no-deps", *STATEFUL)
    async with httpx.AsyncClient(timeout=10.0) as client:
        # The services were not restarted: they reconnect by themselves.
        await deployment.wait_ready(client)

        again = await deployment.finished_status(client, first_import.job_id)
        [before], [after] = first_import.status["videos"], again["videos"]
        assert (again["state"], after["video"]["mediaId"]) == (
            "success",
            before["video"]["mediaId"],
        )
        assert (
            await stored_bytes(client, deployment, after) == (SAMPLES / "sample.mp4").read_bytes()
        )

        job_id = await deployment.import_videos(client, [("second", "sample.webm")], "second")
        status = await deployment.finished_status(client, job_id)
        assert status["state"] == "success", status
        await deployment.webhook_for(client, job_id)
