"""`make run`'s program: prints how to reach it, serves imports, keeps state across runs."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
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


def start(data_dir: Path, **settings: str) -> subprocess.Popen[str]:
    env = {**os.environ, "VIDEOIMPORT_DEVSTACK_DIR": str(data_dir), **settings}
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


class Trickle(http.server.BaseHTTPRequestHandler):
    """A video host that sends one byte a second: downloads stay in flight."""

    started = 0

    def do_GET(self) -> None:
        type(self).started += 1
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        try:
            for _ in range(120):
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(1.0)
        except OSError:
            return

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_run_imports_and_a_later_run_finds_everything(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    trickle = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    trickle.daemon_threads = True
    threading.Thread(target=trickle.serve_forever, daemon=True).start()
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

        # Ten downloads that would take two minutes each are in flight...
        slow = f"http://127.0.0.1:{trickle.server_address[1]}/slow"
        videos = [
            {
                "url": f"{slow}/{i}.mp4",
                "id": f"slow{i}",
                "fileName": "s",
                "metadata": {"title": "s"},
            }
            for i in range(10)
        ]
        call(api, banner["token"], {"systemName": "archive", "videos": videos})
        deadline = time.monotonic() + 60
        while Trickle.started < 6:
            assert time.monotonic() < deadline, f"{Trickle.started} slow downloads started"
            time.sleep(0.1)
    finally:
        # ...and SIGTERM still stops everything within 30 s.
        began = time.monotonic()
        assert stop(process) == 0
        assert time.monotonic() - began < 30
        trickle.shutdown()

    # An operator's VIDEOIMPORT_* setting reaches every service: with the address
    # guard switched on, the loopback sample URL is refused.
    process = start(data_dir, VIDEOIMPORT_ALLOW_PRIVATE_URLS="false")
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

        def guarded_batch(url: str) -> dict[str, Any]:
            video = {"url": url, "id": "g1", "fileName": "g", "metadata": {"title": "g"}}
            return {"systemName": "archive", "videos": [video]}

        # A loopback literal is refused at the door...
        try:
            call(api, again["token"], guarded_batch(again["samples"]))
        except urllib.error.HTTPError as refused:
            assert refused.code == 400
            assert json.load(refused)["error_details"] == [
                {"field": "videos[0].url", "reason": "forbidden address"}
            ]
        else:
            raise AssertionError("a loopback literal was accepted")
        # ...and a name leading to loopback fails when the ingester would connect.
        by_name = again["samples"].replace("127.0.0.1", "localhost")
        guarded = call(api, again["token"], guarded_batch(by_name))["id"]
        deadline = time.monotonic() + 90
        while not (status := call(f"{api}/status?id={guarded}", again["token"]))["finished"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status["videos"][0]["code"] == "forbidden_address", status
    finally:
        assert stop(process) == 0
