"""`make run`'s program: prints how to reach it, serves imports, keeps running
through crashes, stops within 30 s and keeps state across runs.

The tests share one first run (each run starts every server and service, seconds
of CPU), in file order: the last one stops it and starts the second run.
"""

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.long(seconds=66)


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


@dataclass(frozen=True)
class Run:
    data_dir: Path
    process: subprocess.Popen[str]
    banner: dict[str, str]

    @property
    def api(self) -> str:
        return self.banner["api"] + "/api/2025-03/import/videos"


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """`make run` on a fresh data dir."""
    data_dir = tmp_path_factory.mktemp("make-run") / "data"
    process = start(data_dir)
    try:
        assert process.stdout is not None
        yield Run(data_dir, process, read_banner(process.stdout))
    finally:
        if process.poll() is None:
            stop(process)


def children_running(parent: int, module: str) -> list[int]:
    """Pids of ``parent``'s children whose command line runs ``-m module``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == parent and module.encode() in cmdline:
            found.append(int(entry.name))
    return found


def wait_for(what: str, check: Any, within: float = 90.0) -> Any:
    deadline = time.monotonic() + within
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return result


def finished(api: str, token: str, job: str, within: float = 120.0) -> dict[str, Any]:
    status: dict[str, Any] = {}

    def done() -> bool:
        nonlocal status
        status = call(f"{api}/status?id={job}", token)
        return bool(status["finished"])

    wait_for(f"job {job} to finish ({status})", done, within)
    return status


def batch(samples: str, tag: str, count: int) -> dict[str, Any]:
    return {
        "systemName": "archive",
        "videos": [
            {"url": f"{samples}?{tag}={i}", "id": f"{tag}{i}", "fileName": "s",
             "metadata": {"title": "t"}}
            for i in range(count)
        ],
    }  # fmt: skip


def _try_post(api: str, token: str, body: dict[str, Any]) -> str | None:
    try:
        job: str = call(api, token, body)["id"]
    except OSError:  # urllib's HTTPError and connection errors
        return None
    return job


def test_a_killed_service_and_a_killed_server_come_back_by_themselves(first_run: Run) -> None:
    process, data_dir, banner = first_run.process, first_run.data_dir, first_run.banner
    api, token = first_run.api, banner["token"]

    # kill -9 of PostgreSQL (its whole process group, as a crash would).
    pids = json.loads((data_dir / "stack.json").read_text())["pids"]
    os.killpg(pids["postgres"], signal.SIGKILL)

    def postgres_back() -> bool:
        current = json.loads((data_dir / "stack.json").read_text())["pids"]
        return bool(current["postgres"] != pids["postgres"])

    wait_for("PostgreSQL to be restarted", postgres_back)
    # The services reconnect by themselves: a new job goes through.
    job = wait_for(
        "the API to accept a job again",
        lambda: _try_post(api, token, batch(banner["samples"], "b", 3)),
    )
    status = finished(api, token, job)
    assert status["overview"]["success"] == 3, status

    # kill -9 of the ingester in the middle of a batch. After the outage, not before:
    # an ingester that lived through it has workers backing off for up to a minute,
    # and the test below needs every worker to start its downloads at once.
    [ingester] = children_running(process.pid, "videoimport_ingester")
    job = call(api, token, batch(banner["samples"], "a", 12))["id"]
    os.kill(ingester, signal.SIGKILL)
    restarted = wait_for(
        "a new ingester",
        lambda: [p for p in children_running(process.pid, "videoimport_ingester") if p != ingester],
    )
    assert restarted
    status = finished(api, token, job)
    assert status["overview"]["success"] == 12, status


def test_run_imports_and_a_later_run_finds_everything(first_run: Run) -> None:
    """On the first run (whose stop within 30 s also comes after the crashes above,
    when they ran), then on a second run on the same data dir."""
    process, data_dir, banner = first_run.process, first_run.data_dir, first_run.banner
    trickle = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    trickle.daemon_threads = True
    threading.Thread(target=trickle.serve_forever, daemon=True).start()
    try:
        assert banner["token"].startswith("vit_")
        assert ":" in banner["kafka"]
        api = first_run.api
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
