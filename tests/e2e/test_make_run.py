"""`make run`'s program: prints how to reach it, serves imports, keeps state across runs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]


def read_banner(out: IO[str], within: float = 240.0) -> dict[str, str]:
    """The `name: value` lines printed before the run settles."""
    banner: dict[str, str] = {}
    deadline = time.monotonic() + within
    while "logs" not in banner:
        assert time.monotonic() < deadline, f"no banner in time: {banner}"
        line = out.readline()
        assert line, f"make run exited early; printed {banner}"
        name, sep, value = line.partition(": ")
        if sep:
            banner[name.strip()] = value.strip()
    return banner


def call(url: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.load(response)
    return result


def start(data_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "VIDEOIMPORT_DEVSTACK_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "videoimport_devstack.run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO,
    )


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=90)


def test_run_imports_and_a_later_run_finds_everything(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    process = start(data_dir)
    try:
        assert process.stdout is not None
        banner = read_banner(process.stdout)
        assert banner["token"].startswith("vit_")
        assert ":" in banner["kafka"]
        api = banner["api"] + "/api/2025-03/import/videos"
        job = call(
            api,
            banner["token"],
            {
                "systemName": "archive",
                "videos": [
                    {
                        "url": banner["samples"],
                        "id": "123abc",
                        "fileName": "sample",
                        "metadata": {"title": "sample video", "credit": "LC"},
                    }
                ],
            },
        )["id"]
        deadline = time.monotonic() + 90
        while not (status := call(f"{api}/status?id={job}", banner["token"]))["finished"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status["state"] == "success", status
    finally:
        assert stop(process) == 0

    process = start(data_dir)
    try:
        assert process.stdout is not None
        again = read_banner(process.stdout)
        assert again["token"] == banner["token"]
        api = again["api"] + "/api/2025-03/import/videos"
        status = call(f"{api}/status?id={job}", again["token"])
        assert status["state"] == "success"
        with urllib.request.urlopen(status["videos"][0]["video"]["originalUrl"]) as response:
            stored = response.read()
        source = (REPO / "tests" / "fixtures" / "sample.mp4").read_bytes()
        assert hashlib.sha256(stored).digest() == hashlib.sha256(source).digest()
    finally:
        assert stop(process) == 0
