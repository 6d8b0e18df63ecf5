"""`make run` keeps running through crashes: a killed service or server comes back by
itself, and the import in flight finishes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from .test_make_run import call, read_banner, start, stop


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


def test_a_killed_service_and_a_killed_server_come_back_by_themselves(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    process = start(data_dir)
    try:
        assert process.stdout is not None
        banner = read_banner(process.stdout)
        api, token = banner["api"] + "/api/2025-03/import/videos", banner["token"]

        # kill -9 of the ingester in the middle of a batch.
        [ingester] = children_running(process.pid, "videoimport_ingester")
        job = call(api, token, batch(banner["samples"], "a", 30))["id"]
        os.kill(ingester, signal.SIGKILL)
        restarted = wait_for(
            "a new ingester",
            lambda: [
                p for p in children_running(process.pid, "videoimport_ingester") if p != ingester
            ],
        )
        assert restarted
        status = finished(api, token, job)
        assert status["overview"]["success"] == 30, status

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
    finally:
        began = time.monotonic()
        assert stop(process) == 0
        assert time.monotonic() - began < 30


def _try_post(api: str, token: str, body: dict[str, Any]) -> str | None:
    try:
        job: str = call(api, token, body)["id"]
    except OSError:  # urllib's HTTPError and connection errors
        return None
    return job
