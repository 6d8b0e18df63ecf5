"""``python -m benchmarks.profile``: where a bulk import's CPU goes, service by service.

Starts a local stack and every service as a process (``ServiceSet``), imports a warm-up
batch, then ``--videos`` distinct ~100 KB videos in POSTs of at most 1000 from an origin on
127.0.0.1 without latency, while ``py-spy record`` samples every service (on-CPU only: no
``--idle``, so samples/rate ≈ CPU seconds). It reports per process (services, PostgreSQL,
Kafka, s3rver, this process, py-spy, the rest of the machine) the CPU seconds spent from the
first POST until every job finished, per service the self and cumulative frames grouped by
library, and every database statement per video (``pg_stat_statements``, loaded for the
run). Writes ``summary.md``, ``summary.json`` and the raw py-spy stacks into ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from videoimport_devstack import LocalStack, StackInfo
from videoimport_devstack.postgres import SUPERUSER
from videoimport_devstack.services import SERVICES, ServiceSet

from .common import REPO, cli, fresh_bucket, fresh_database, serve, with_database
from .e2e import API, PROJECT_CONFIG
from .media import video_head
from .profile_measures import (
    cpu_seconds,
    machine_busy,
    own_cpu,
    sample_sessions,
    start_py_spy,
    statements,
    stop_py_spy,
    summarise_stacks,
    table_writes,
)

BATCH = 1000  # the API's largest batch
VIDEO_BYTES = 100_000
POLL_INTERVAL = 0.5


class Origin:
    """Serves a distinct decodable ~100 KB video for every URL, at once."""

    def __init__(self) -> None:
        self._tail = os.urandom(VIDEO_BYTES)
        self.app = web.Application()
        self.app.router.add_get("/videos/{name}", self._video)

    async def _video(self, request: web.Request) -> web.Response:
        head = video_head(request.match_info["name"], VIDEO_BYTES)
        body = head + self._tail[: VIDEO_BYTES - len(head)]
        return web.Response(body=body, content_type="video/mp4")


def batch(origin: str, tag: str, count: int) -> dict[str, Any]:
    return {
        "systemName": "profile",
        "videos": [
            {"url": f"{origin}/videos/{tag}-{i}.mp4", "id": f"{tag}-{i}", "fileName": f"{tag}-{i}",
             "metadata": {"title": f"profile video {i}"}}
            for i in range(count)
        ],
    }  # fmt: skip


async def post(http: aiohttp.ClientSession, api: str, token: str, body: dict[str, Any]) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.post(api + API, json=body, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"POST answered {response.status}: {await response.text()}")
        job_id: str = (await response.json())["id"]
        return job_id


async def wait_finished(
    http: aiohttp.ClientSession, api: str, token: str, jobs: dict[str, int], deadline: float
) -> int:
    """Poll every job's status until all finished and every video succeeded; returns polls."""
    headers, pending, polls = {"Authorization": f"Bearer {token}"}, dict(jobs), 0
    while pending:
        for job_id, videos in list(pending.items()):
            url = f"{api}{API}/status"
            async with http.get(url, params={"id": job_id}, headers=headers) as response:
                status: dict[str, Any] = await response.json()
            polls += 1
            if status.get("finished"):
                if status["overview"]["success"] != videos:
                    raise RuntimeError(f"job {job_id}: not every video succeeded: {status}")
                del pending[job_id]
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs not finished in time: {sorted(pending)}")
        await asyncio.sleep(POLL_INTERVAL)
    return polls


async def profile(stack: StackInfo, local: LocalStack, args: argparse.Namespace) -> dict[str, Any]:
    superuser = as_superuser(stack.postgres_dsn)
    origin = Origin()
    async with serve(origin.app) as origin_url, fresh_database(stack, "bench_profile") as dsn:
        admin = await asyncpg.connect(with_database(superuser, dsn.rpartition("/")[2]))
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await admin.close()
        own = dataclasses.replace(
            stack, postgres_dsn=dsn, s3_bucket=await fresh_bucket(stack, "profile-")
        )
        services = ServiceSet(own, args.out / "logs", topic_prefix=f"prof{secrets.token_hex(4)}.")
        services.start()
        try:
            await cli(dsn, "project", "create", "profile", "--config", str(PROJECT_CONFIG))
            token = await cli(dsn, "token", "create", "--project", "profile")
            api = services.api_url
            async with aiohttp.ClientSession() as http:
                warm = await post(http, api, token, batch(origin_url, "warm", 8))
                await wait_finished(http, api, token, {warm: 8}, time.monotonic() + 60)
                reset = await asyncpg.connect(with_database(superuser, dsn.rpartition("/")[2]))
                await reset.execute("SELECT pg_stat_statements_reset(), pg_stat_reset()")
                await reset.close()
                roots = {n: services.children[n].pid for n in SERVICES}
                roots |= {n: c.pid for n, c in local.children().items()}
                spies = {
                    n: start_py_spy(services.children[n].pid, args.out / f"{n}.txt", args.seconds)
                    for n in SERVICES
                }
                sampling, sampled = asyncio.Event(), {n: services.children[n].pid for n in SERVICES}
                sampler = asyncio.create_task(sample_sessions(dsn, sampled, sampling))
                before, busy, mine, began = (
                    cpu_seconds(roots),
                    machine_busy(),
                    own_cpu(),
                    time.monotonic(),
                )
                jobs, post_seconds = {}, []
                for first in range(0, args.videos, BATCH):
                    count, posted = min(BATCH, args.videos - first), time.monotonic()
                    jobs[await post(http, api, token, batch(origin_url, f"v{first}", count))] = (
                        count
                    )
                    post_seconds.append(time.monotonic() - posted)
                polls = await wait_finished(http, api, token, jobs, began + args.seconds)
                wall = time.monotonic() - began
                after, busy, mine = cpu_seconds(roots), machine_busy() - busy, own_cpu() - mine
                sampling.set()
                sessions, rounds = await sampler
            spy_cpu = sum(stop_py_spy(spy) for spy in spies.values())
            if services.dead():
                raise RuntimeError(f"a service died: {services.dead()}")
        finally:
            services.stop()
        cpu = {n: after[n] - before[n] for n in roots} | {
            "benchmark (origin, poller)": mine,
            "py-spy": spy_cpu,
        }
        cpu["rest of the machine"] = busy - sum(cpu.values())
        as_owner = with_database(superuser, dsn.rpartition("/")[2])
        return {
            "videos": args.videos,
            "wall_s": wall,
            "post_s": post_seconds,
            "status_polls": polls,
            "cores": os.cpu_count(),
            "cpu_s": cpu,
            "stacks": {n: summarise_stacks(args.out / f"{n}.txt") for n in SERVICES},
            "statements": await statements(as_owner, args.videos),
            "table_writes": await table_writes(dsn),
            "sessions": sorted(
                ([who, what, n / rounds] for (who, what), n in sessions.items()),
                key=lambda row: (row[0], -row[2]),
            ),
        }


def markdown(result: dict[str, Any]) -> str:
    videos, wall, cores = result["videos"], result["wall_s"], result["cores"]
    posts = ", ".join(f"{s:.2f} s" for s in result["post_s"])
    lines = [
        f"# Profile: {videos} videos in {wall:.1f} s ({videos / wall:.1f} videos/s)",
        f"POSTs {posts}, {result['status_polls']} status polls",
        "",
        f"| process | CPU s | ms/video | share of {cores} cores |",
        "|---|---|---|---|",
    ]
    for name, seconds in sorted(result["cpu_s"].items(), key=lambda kv: -kv[1]):
        per_video, share = seconds * 1000 / videos, seconds / wall / cores
        lines.append(f"| {name} | {seconds:.1f} | {per_video:.2f} | {share:.0%} |")
    for name, stacks in result["stacks"].items():
        samples = stacks["samples"] or 1
        by_library = ", ".join(f"{lib} {n / samples:.0%}" for lib, n in stacks["by_library"][:14])
        lines += [
            "",
            f"## {name}: {stacks['samples']} samples",
            "",
            f"self by library: {by_library}",
            "",
            "top self:",
            *(f"    {n / samples:5.1%}  {frame}" for frame, n in stacks["top_self"][:15]),
            "",
            "top cumulative:",
            *(f"    {n / samples:5.1%}  {frame}" for frame, n in stacks["top_cumulative"][:30]),
        ]
    lines += ["", "## statements per video (pg_stat_statements)", ""]
    lines += ["| per video | calls | ms total | query |", "|---|---|---|---|"]
    for s in result["statements"][:45]:
        lines.append(f"| {s['per_video']:.2f} | {s['calls']} | {s['ms']} | `{s['query'][:140]}` |")
    total = sum(s["per_video"] for s in result["statements"])
    lines += ["", f"all statements: {total:.1f} per video", ""]
    lines += ["## database sessions (mean number, sampled every 50 ms)", ""]
    lines += [f"    {who:10} {n:6.2f}  {what}" for who, what, n in result["sessions"] if n >= 0.01]
    lines += ["", "## table writes", ""]
    lines += [json.dumps(row, default=str) for row in result["table_writes"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--videos", type=int, default=2000, help="videos, in POSTs of 1000")
    parser.add_argument("--seconds", type=int, default=600, help="give up (and stop py-spy) after")
    parser.add_argument("--out", type=Path, default=REPO / ".data" / "bench" / "profile")
    args = parser.parse_args(argv)
    if shutil.which("py-spy") is None:
        parser.error("py-spy is not installed (uv sync installs the dev dependencies)")
    args.out.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="videoimport-profile-"))
    local = LocalStack(work_dir / "stack")
    try:
        stack = local.start()
        # Load pg_stat_statements: settings the stack's command line leaves to the config.
        asyncio.run(_alter_system(as_superuser(stack.postgres_dsn)))
        local.restart("postgres")
        result = asyncio.run(profile(stack, local, args))
    finally:
        local.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    (args.out / "summary.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    report = markdown(result)
    (args.out / "summary.md").write_text(report)
    print(report, flush=True)
    return 0


def as_superuser(dsn: str) -> str:
    scheme, _, rest = dsn.partition("//")
    return f"{scheme}//{SUPERUSER}@{rest.partition('@')[2]}"


async def _alter_system(superuser: str) -> None:
    conn = await asyncpg.connect(superuser)
    try:
        await conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
