"""The Docker deployment under test, as the tests drive it: over HTTP on 127.0.0.1, and
with ``docker compose`` for the admin CLI and for recreating containers."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from testcontainers.compose import DockerCompose

from tests.polling import eventually

REPO = Path(__file__).resolve().parents[2]
PROJECT = "dockertier"
IMPORTS = "/api/2025-03/import/videos"
# Building the image and pulling the servers' images the first time takes minutes.
READY_SECONDS = 600.0
LOG_LINES = 60
ORIGIN_IN_NETWORK = "http://origin:8080"
"""The importing system (tests/docker/origin.py) as the services reach it."""


@dataclass(frozen=True)
class Deployment:
    compose: DockerCompose
    api_url: str
    origin_url: str
    """The importing system as the test on the host reaches it (its webhooks)."""
    token: str
    webhook_secret: str

    def on_api(self, url: str) -> str:
        """``url`` (a media link naming the configured public base URL) on our API port."""
        parts = urlsplit(url)
        return f"{self.api_url}{parts.path}?{parts.query}"

    def compose_run(self, *args: str) -> str:
        """``docker compose …`` of this deployment; its stdout."""
        result = subprocess.run(
            [*self.compose.docker_compose_command(), *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"docker compose {' '.join(args)}:\n{result.stderr}"
        return result.stdout

    def cli(self, *args: str) -> str:
        """The admin CLI in the API container, as an operator runs it."""
        return self.compose_run("exec", "-T", "api", "videoimport", *args).strip()

    async def wait_ready(self, client: httpx.AsyncClient) -> None:
        """Until the API is ready (PostgreSQL and S3 up) and the origin answers."""

        async def answers(url: str) -> bool:
            try:
                return (await client.get(url)).status_code == 200
            except httpx.TransportError:
                return False

        async def ready() -> bool:
            return await answers(f"{self.api_url}/health/ready") and await answers(
                f"{self.origin_url}/webhooks"
            )

        try:
            await eventually(ready, "the API's /health/ready and the origin", READY_SECONDS)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs_tail()}") from None

    def logs_tail(self) -> str:
        stdout, stderr = self.compose.get_logs()
        return "\n".join((stdout + stderr).splitlines()[-LOG_LINES:])

    async def import_videos(
        self, client: httpx.AsyncClient, videos: Sequence[tuple[str, str]], context: str
    ) -> str:
        """POST a batch of (external id, sample file) with a webhook; the job id."""
        body = {
            "systemName": "docker-tier",
            "webhook": f"{ORIGIN_IN_NETWORK}/webhooks",
            "context": {"run": context},
            "videos": [
                {"url": f"{ORIGIN_IN_NETWORK}/samples/{sample}", "id": video_id,
                 "fileName": video_id, "metadata": {}}
                for video_id, sample in videos
            ],
        }  # fmt: skip
        response = await client.post(f"{self.api_url}{IMPORTS}", json=body, headers=self.auth())
        assert response.status_code in (200, 202), response.text
        job_id: str = response.json()["id"]
        return job_id

    async def finished_status(self, client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
        status: dict[str, Any] = {}

        async def finished() -> bool:
            nonlocal status
            response = await client.get(
                f"{self.api_url}{IMPORTS}/status", params={"id": job_id}, headers=self.auth()
            )
            status = response.json() if response.status_code == 200 else {}
            return bool(status.get("finished"))

        await eventually(finished, f"job {job_id} to finish", within=120.0)
        return status

    async def webhook_for(self, client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
        """The first webhook the origin received for ``job_id`` (headers, base64 body)."""
        found: dict[str, Any] = {}

        async def arrived() -> bool:
            nonlocal found
            for webhook in (await client.get(f"{self.origin_url}/webhooks")).json():
                if json.loads(webhook_body(webhook)).get("id") == job_id:
                    found = webhook
                    return True
            return False

        await eventually(arrived, f"the webhook of job {job_id}", within=60.0)
        return found

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def webhook_body(webhook: dict[str, Any]) -> bytes:
    return base64.b64decode(webhook["body"])


@dataclass(frozen=True)
class ImportedJob:
    job_id: str
    status: dict[str, Any]
