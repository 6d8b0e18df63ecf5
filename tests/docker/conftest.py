"""The Docker deployment under test: docker-compose.yml plus compose.override.yml, built
and started through testcontainers' DockerCompose under a project name of its own, with
fresh random secrets, and removed with its volumes at the end of the session.

Nothing here needs the local stack; ``make test`` does not collect this directory
(pyproject ``norecursedirs``), ``make test-docker`` runs it. The test module skips itself
with one line when there is no Docker daemon (``harness.docker_unavailable``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from testcontainers.compose import DockerCompose

from tests.docker.deployment import PROJECT, REPO, Deployment, ImportedJob
from tests.docker.harness import compose_env, docker_unavailable, write_env_file

COMPOSE_FILES = ["docker-compose.yml", "tests/docker/compose.override.yml"]
# The image the tier builds and runs: never the tag a deployment on this machine runs.
IMAGE_TAG = "docker-tier"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Skipped as a whole (no Docker), the tier collects no test; that is a pass, not the
    # "no tests collected" error.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and docker_unavailable():
        session.exitstatus = pytest.ExitCode.OK


@pytest.fixture(scope="session")
async def deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    example = REPO / ".env.example"
    values = compose_env(example.read_text() if example.is_file() else "")
    values["VIDEOIMPORT_IMAGE_TAG"] = IMAGE_TAG
    env_file = tmp_path_factory.mktemp("docker-tier") / "compose.env"
    write_env_file(env_file, values)
    compose = DockerCompose(
        context=REPO, compose_file_name=COMPOSE_FILES, env_file=str(env_file), build=True,
        wait=False,
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        # A project of its own: `down --volumes` at the end must never reach the volumes
        # of a deployment on this machine (the compose file names its project).
        patch.setenv("COMPOSE_PROJECT_NAME", f"videoimport-test-{secrets.token_hex(4)}")
        try:
            await asyncio.to_thread(compose.start)
            api_port = compose.get_service_port("api", 8000)
            origin_port = compose.get_service_port("origin", 8080)
            started = Deployment(
                compose, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{origin_port}", "", ""
            )
            async with httpx.AsyncClient(timeout=10.0) as client:
                await started.wait_ready(client)
            started.cli("project", "create", PROJECT)
            yield dataclasses.replace(
                started,
                token=started.cli("token", "create", "--project", PROJECT),
                webhook_secret=started.cli("webhook-secret", "show", "--project", PROJECT),
            )
        finally:
            await asyncio.to_thread(compose.stop)


@pytest.fixture(scope="session")
async def first_import(deployment: Deployment) -> ImportedJob:
    """One video imported (and finished) before anything was restarted."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        job_id = await deployment.import_videos(client, [("first", "sample.mp4")], "first")
        return ImportedJob(job_id, await deployment.finished_status(client, job_id))
