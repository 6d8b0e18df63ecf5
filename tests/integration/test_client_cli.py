"""``videoimport import|status|jobs`` against the real API, in-process, on a real database.

There is no projector here: where a job has to finish, the test writes the status
rows the projector would (the e2e suite runs the real path).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from asyncio.subprocess import PIPE
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from videoimport_eventlog.retry import RetryPolicy
from videoimport_projects.client.api import ApiFailure, ImportApi

from .api_harness import STATUS_URL, VERSION, RunningApi, auth, project_with_token

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=47)]

CLIENT_ENVIRONMENT = ("VIDEOIMPORT_API_URL", "VIDEOIMPORT_TOKEN", "COLUMNS", "FORCE_COLOR")


class Cli:
    """Runs ``videoimport`` as its own process, as a user would, and keeps its output."""

    def __init__(self, api: RunningApi, token: str) -> None:
        self.api, self.token = api, token
        self.out = ""
        self.err = ""

    async def start(
        self, *args: str, token: str | None = None, api_url: str | None = None
    ) -> asyncio.subprocess.Process:
        self.out = self.err = ""
        env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENVIRONMENT}
        argv = [*args, "--api", api_url or self.api.base_url, "--token", token or self.token]
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "videoimport_projects.cli", *argv, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=PIPE, stderr=PIPE,
        )  # fmt: skip

    async def __call__(
        self, *args: str, token: str | None = None, api_url: str | None = None
    ) -> int:
        return await self.finish(await self.start(*args, token=token, api_url=api_url))

    async def finish(self, process: asyncio.subprocess.Process) -> int:
        out, err = await asyncio.wait_for(process.communicate(), 60)
        self.out, self.err = out.decode(), self.err + err.decode()
        assert process.returncode is not None
        return process.returncode

    async def read_err_until(self, process: asyncio.subprocess.Process, text: str) -> None:
        """Reads the progress lines on stderr until one holds ``text``."""
        assert process.stderr is not None
        while text not in self.err:
            line = await asyncio.wait_for(process.stderr.readline(), 30)
            assert line, f"stderr ended without {text!r}: {self.err}"
            self.err += line.decode()


@pytest.fixture
def cli(api: RunningApi, token: str) -> Cli:
    return Cli(api, token)


def csv_file(tmp_path: Path, ids: list[str]) -> Path:
    path = tmp_path / "videos.csv"
    rows = [f"https://videos.example.com/{i}.mp4,{i},File {i},Title {i}" for i in ids]
    path.write_text("url,id,fileName,metadata.title\n" + "\n".join(rows) + "\n")
    return path


def job_ids(out: str) -> list[str]:
    return [line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("job ")]


async def project_finished(
    dsn: str, job_id: str, videos: list[tuple[str, str, str | None]]
) -> None:
    """The status rows the projector writes for a finished job: (externalId, state, code)."""
    conn = await asyncpg.connect(dsn)
    try:
        count = {s: sum(1 for v in videos if v[1] == s) for s in ("success", "skipped", "failed")}
        now = datetime.now(UTC)
        await conn.execute(
            "INSERT INTO status_jobs (job_id, project, system_name, state, video_count,"
            " started_at, finished_at, success, skipped, failed)"
            " VALUES ($1, 'acme', 'archive', 'success', $2, $3, $3, $4, $5, $6)",
            job_id, len(videos), now, count["success"], count["skipped"], count["failed"],
        )  # fmt: skip
        await conn.executemany(
            "INSERT INTO status_videos (job_id, idx, system_name, external_id, state, reason,"
            " code, media_id, mime_type, storage_key) VALUES ($1, $2, 'archive', $3, $4, $5, $6,"
            " $7, $8, $9)",
            [
                (job_id, i, ext, state, "HTTP 404" if state == "failed" else None, code,
                 None if state == "failed" else f"m{i}",
                 None if state == "failed" else "video/mp4",
                 None if state == "failed" else f"acme/m{i}/e{i}.mp4")
                for i, (ext, state, code) in enumerate(videos)
            ],
        )  # fmt: skip
    finally:
        await conn.close()


async def project_started(dsn: str, job_id: str, system: str, minutes_ago: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO status_jobs (job_id, project, system_name, state, video_count,"
            " started_at) VALUES ($1, 'acme', $2, 'started', 1, now() - make_interval(mins => $3))",
            job_id, system, minutes_ago,
        )  # fmt: skip
    finally:
        await conn.close()


async def test_a_csv_becomes_jobs_and_running_it_again_imports_nothing_twice(
    cli: Cli, api: RunningApi, token: str, tmp_path: Path
) -> None:
    path = csv_file(tmp_path, [f"v{i}" for i in range(5)])
    assert await cli("import", str(path), "--system", "archive", "--batch-size", "2") == 0
    first = job_ids(cli.out)
    assert len(first) == 3 and "batch 3/3, 1 videos" in cli.out
    assert token not in cli.out + cli.err
    for job_id, size in zip(first, (2, 2, 1), strict=True):
        response = await api.http.get(STATUS_URL, params={"id": job_id}, headers=auth(token))
        assert response.json()["progress"]["total"] == size

    assert await cli("import", str(path), "--system", "archive", "--batch-size", "2") == 0
    assert job_ids(cli.out) == first
    assert cli.out.count("accepted before: not imported twice") == 3

    assert await cli("import", str(path), "--system", "archive", "--run", "again", "--json") == 0
    [again] = json.loads(cli.out)["jobs"]
    assert again["id"] not in first and again["videos"] == 5 and again["replayed"] is False


async def test_watch_follows_every_job_to_the_end_and_names_the_failures(
    cli: Cli, api: RunningApi, tmp_path: Path
) -> None:
    path = csv_file(tmp_path, ["ok-1", "gone-1", "ok-2"])
    command = ("import", str(path), "--system", "archive", "--batch-size", "2")
    assert await cli(*command) == 0
    one, two = job_ids(cli.out)
    dsn = api.settings.database_url
    await project_finished(dsn, one, [("ok-1", "success", None), ("gone-1", "failed", "http_404")])

    # The same command with --watch finds the same jobs and follows them.
    watching = await cli.start(*command, "--watch")
    await cli.read_err_until(watching, f"job {two}: 0/1 done, 0 failed")
    assert f"job {one} finished (success): 1 succeeded, 0 skipped, 1 failed of 2" in cli.err
    await project_finished(dsn, two, [("ok-2", "skipped", "already_exists")])
    assert await cli.finish(watching) == 1
    assert f"job {two} finished (success): 0 succeeded, 1 skipped, 0 failed of 1" in cli.err
    assert "2 jobs, 3 videos: 1 succeeded, 1 skipped, 1 failed" in cli.out
    assert "Failed videos (1)" in cli.out
    failure_row = next(line for line in cli.out.splitlines() if "gone-1" in line)
    assert one in failure_row and "http_404" in failure_row and "HTTP 404" in failure_row
    assert "\x1b" not in cli.out + cli.err

    assert await cli(*command, "--watch", "--json") == 1
    document = json.loads(cli.out)
    assert [j["overview"]["failed"] for j in document["jobs"]] == [1, 0]
    assert document["failed"] == [
        {"job": one, "externalId": "gone-1", "code": "http_404", "reason": "HTTP 404"}
    ]

    assert await cli("status", one) == 0
    assert f"job {one}: success" in cli.out and "gone-1" in cli.out
    assert "2 videos: 1 succeeded, 0 skipped, 1 failed" in cli.out
    assert await cli("status", two, "--json") == 0
    assert json.loads(cli.out)["overview"] == {"total": 1, "success": 0, "skipped": 1, "failed": 0}


async def test_all_good_exits_zero(cli: Cli, api: RunningApi, tmp_path: Path) -> None:
    body = {"systemName": "archive", "videos": [{"url": "https://videos.example.com/a.mp4",
            "id": "a", "fileName": "a", "metadata": {"title": "a"}}]}  # fmt: skip
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    assert await cli("import", str(path)) == 0
    [job_id] = job_ids(cli.out)
    await project_finished(api.settings.database_url, job_id, [("a", "success", None)])
    assert await cli("import", str(path), "--watch") == 0
    assert "1 job, 1 videos: 1 succeeded, 0 skipped, 0 failed" in cli.out
    assert "Failed videos" not in cli.out


async def test_refusals_and_bad_files_exit_two_with_the_reason(
    cli: Cli, api: RunningApi, tmp_path: Path
) -> None:
    path = csv_file(tmp_path, ["a"])
    secret = "vit_not-a-real-token"
    assert await cli("import", str(path), "--system", "s", token=secret) == 2
    assert "HTTP 401" in cli.err and "check the token" in cli.err
    assert secret not in cli.out + cli.err

    reader = await project_with_token(api.settings.database_url, "acme", ["public-api:read"])
    assert await cli("import", str(path), "--system", "s", token=reader) == 2
    assert "HTTP 403" in cli.err

    bad_url = tmp_path / "bad.csv"
    bad_url.write_text("url,id,fileName\nftp://videos.example.com/a.mp4,a,a\n")
    assert await cli("import", str(bad_url), "--system", "s") == 2
    assert "HTTP 400" in cli.err and "videos[0].url" in cli.err

    broken = tmp_path / "broken.csv"
    broken.write_text("url,id\nu,a\n")
    assert await cli("import", str(broken), "--system", "s") == 2
    assert f"{broken}: line 1: missing column 'fileName'" in cli.err

    assert await cli("import", str(tmp_path / "missing.csv"), "--system", "s") == 2
    assert "cannot read" in cli.err
    assert await cli("status", "nosuchjob123") == 2
    assert "HTTP 404" in cli.err


async def test_an_unreachable_api_exits_two(cli: Cli) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    assert await cli("status", "abc", api_url=f"http://127.0.0.1:{closed_port}") == 2
    assert "cannot reach the API" in cli.err


async def test_a_busy_api_is_retried_after_the_pause_it_asks_for() -> None:
    seen: list[str | None] = []

    async def busy_then_ok(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Idempotency-Key"))
        if len(seen) < 3:
            return web.json_response({"status": 503}, status=503, headers={"Retry-After": "2"})
        return web.json_response({"id": "job123"})

    app = web.Application()
    app.router.add_post(f"/api/{VERSION}/import/videos", busy_then_ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    waits: list[float] = []
    client = ImportApi(f"http://127.0.0.1:{port}", "t", policy=RetryPolicy(attempts=3),
                       sleep=waits.append)  # fmt: skip
    try:
        body: dict[str, Any] = {"systemName": "s", "videos": []}
        assert await asyncio.to_thread(client.submit, body, "key-1") == ("job123", False)
        assert waits == [2.0, 2.0] and seen == ["key-1"] * 3
        seen.clear()
        tired = ImportApi(str(client.http.base_url), "t", policy=RetryPolicy(attempts=2),
                          sleep=waits.append)  # fmt: skip
        with pytest.raises(ApiFailure) as refused:
            await asyncio.to_thread(tired.submit, body, "key-2")
        assert refused.value.status == 503 and len(seen) == 2
        tired.close()
    finally:
        client.close()
        await runner.cleanup()


async def test_jobs_lists_newest_first_and_follows_every_page(
    cli: Cli, api: RunningApi, tmp_path: Path
) -> None:
    made = []
    for i in range(3):
        assert await cli("import", str(csv_file(tmp_path, [f"l{i}"])), "--system", "listing") == 0
        made += job_ids(cli.out)
        # The listing shows projected jobs: write the row the projector would.
        await project_started(api.settings.database_url, made[-1], "listing", minutes_ago=10 - i)
    assert await cli("jobs", "--limit", "2", "--json") == 0
    page = json.loads(cli.out)
    assert [j["id"] for j in page["jobs"]] == made[::-1][:2] and page["nextCursor"]
    assert await cli("jobs", "--limit", "2", "--all", "--system", "listing", "--json") == 0
    assert [j["id"] for j in json.loads(cli.out)["jobs"]] == made[::-1]
    assert await cli("jobs", "--state", "started") == 0
    assert all(job_id in cli.out for job_id in made)
