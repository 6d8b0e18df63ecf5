"""``python -m videoimport_api`` as a process: configured by env, serves, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time

import httpx
import pytest

from .api_harness import IMPORT_URL, auth, batch, project_with_token

pytestmark = pytest.mark.integration

DEADLINE_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_the_service_runs_from_env_and_exits_0_on_sigterm(pg_dsn: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "VIDEOIMPORT_DATABASE_URL": pg_dsn,
        "VIDEOIMPORT_HOST": "127.0.0.1",
        "VIDEOIMPORT_PORT": str(port),
        "VIDEOIMPORT_LOG_JSON": "true",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "videoimport_api",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            deadline = time.monotonic() + DEADLINE_SECONDS
            while True:
                assert process.returncode is None, "the API exited during startup"
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the API did not become healthy"
                await asyncio.sleep(0.1)

            # The service applied its DDL itself: projects exist and a job can be recorded.
            token = await project_with_token(pg_dsn, "acme")
            response = await http.post(IMPORT_URL, json=batch(2), headers=auth(token))
            assert response.status_code == 200, response.text
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=DEADLINE_SECONDS)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert b'"event": "import requested"' in stderr
