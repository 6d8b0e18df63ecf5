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
    # Without a signing key it makes one up, and says what that costs.
    assert b"VIDEOIMPORT_MEDIA_SIGNING_KEY is not set" in stderr


@pytest.mark.parametrize(
    ("setting", "value", "complaint"),
    [
        ("VIDEOIMPORT_MEDIA_SIGNING_KEY", "c2hvcnQ=", b"media_signing_key must be at least 32"),
        ("VIDEOIMPORT_MEDIA_SIGNING_KEY", "not a key!", b"media_signing_key must be base64 or hex"),
        ("VIDEOIMPORT_MEDIA_LINK_TTL", "0", b"media_link_ttl must be a positive"),
    ],
)
async def test_a_weak_signing_key_or_no_ttl_is_refused_at_start(
    pg_dsn: str, setting: str, value: str, complaint: bytes
) -> None:
    env = {
        **os.environ,
        "VIDEOIMPORT_DATABASE_URL": pg_dsn,
        "VIDEOIMPORT_PORT": str(free_port()),
        setting: value,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "videoimport_api",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=DEADLINE_SECONDS)
    assert process.returncode != 0
    assert complaint in stderr, stderr.decode()[-2000:]
    assert value.encode() not in stderr or setting.endswith("TTL")  # the key is never echoed
