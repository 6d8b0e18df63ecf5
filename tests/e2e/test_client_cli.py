"""``videoimport import FILE --watch`` as a user runs it, against every service.

The CSV's videos come from the test's origin on 127.0.0.1 (small real MP4s, and a
404 for a file that is not there); the command follows the jobs to the end.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from .conftest import ClientSide, Deployment, service_logs

pytestmark = pytest.mark.e2e

WATCH_SECONDS = 120


async def videoimport(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIDEOIMPORT_TOKEN", "COLUMNS")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "videoimport_projects.cli", *args, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), WATCH_SECONDS)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def csv_file(tmp_path: Path, client_side: ClientSide, rows: list[tuple[str, str]]) -> Path:
    """(externalId, file on the origin) per row; every video gets a title."""
    lines = ["url,id,fileName,metadata.title,metadata.credit"]
    lines += [
        f"{client_side.url('/samples/' + name)},{ext},{ext},Title {ext},CLI" for ext, name in rows
    ]
    path = tmp_path / "videos.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_watch_exits_one_and_names_the_videos_that_failed(
    deployment: Deployment, client_side: ClientSide, tmp_path: Path
) -> None:
    path = csv_file(
        tmp_path,
        client_side,
        [("cli-ok-1", "sample.mp4"), ("cli-gone-1", "missing.mp4"), ("cli-ok-2", "sample.webm"),
         ("cli-gone-2", "nothing-here.mp4")],
    )  # fmt: skip
    code, out, err = await videoimport(
        "import", str(path), "--system", "cli", "--batch-size", "3", "--watch",
        "--api", deployment.api_url, "--token", deployment.token,
    )  # fmt: skip
    assert code == 1, f"{out}\n{err}\n{service_logs(deployment)}"
    jobs = [line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("job ")]
    assert len(jobs) == 2
    assert "2 jobs, 4 videos: 2 succeeded, 0 skipped, 2 failed" in out
    table = out[out.index("Failed videos (2)") :]
    for external_id in ("cli-gone-1", "cli-gone-2"):
        row = next(line for line in table.splitlines() if external_id in line)
        assert "404" in row
    assert "cli-ok-1" not in table and "cli-ok-2" not in table
    assert "\x1b" not in out + err  # not a terminal: plain lines
    assert all(f"job {job_id} finished" in err for job_id in jobs)
    assert deployment.token not in out + err


async def test_watch_exits_zero_when_every_video_is_imported(
    deployment: Deployment, client_side: ClientSide, tmp_path: Path
) -> None:
    path = csv_file(
        tmp_path, client_side, [("cli-good-1", "sample.mp4"), ("cli-good-2", "sample.mov")]
    )
    code, out, err = await videoimport(
        "import", str(path), "--system", "cli-good", "--watch",
        "--api", deployment.api_url, "--token", deployment.token,
    )  # fmt: skip
    assert code == 0, f"{out}\n{err}\n{service_logs(deployment)}"
    assert "1 job, 2 videos: 2 succeeded, 0 skipped, 0 failed" in out
    assert "Failed videos" not in out


async def test_a_bad_token_exits_two(
    deployment: Deployment, client_side: ClientSide, tmp_path: Path
) -> None:
    path = csv_file(tmp_path, client_side, [("cli-never", "sample.mp4")])
    code, out, err = await videoimport(
        "import", str(path), "--system", "cli", "--watch",
        "--api", deployment.api_url, "--token", "vit_wrong",
    )  # fmt: skip
    assert code == 2
    assert "HTTP 401" in err and "vit_wrong" not in out + err
    assert out == ""
