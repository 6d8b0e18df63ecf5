"""What must hold after any fault, checked from outside: the API, the log, S3, the receiver.

- every acknowledged request is exactly one job, and that job is terminal;
- each requested video has exactly one terminal event;
- one media id per (project, systemName, externalId);
- no orphan object in the bucket, no referenced object missing, no incomplete
  multipart upload;
- every finished job's webhook arrived at least once, always with the same
  ``webhook-id``;
- the live projection equals a rebuild from the log.

Each check counts what it finds as *lost* (acknowledged work that did not
happen) or *duplicate* (an effect that happened twice); the scenario's figures
line is the sum.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from .stage import PROJECT, Stage
from .workload import API_VERSION, Workload

TERMINAL = ("VideoImported", "VideoImportSkipped", "VideoImportFailed")


@dataclass
class Findings:
    lost: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    projection_equal: bool = False

    @property
    def clean(self) -> bool:
        return not any(self.lost.values()) and not any(self.duplicates.values())

    def add(self, kind: str, what: str, count: int) -> None:
        target = self.lost if kind == "lost" else self.duplicates
        target[what] = target.get(what, 0) + count

    def describe(self) -> str:
        found = {**{f"lost {k}": v for k, v in self.lost.items() if v}}
        found.update({f"duplicate {k}": v for k, v in self.duplicates.items() if v})
        return ", ".join(f"{k}: {v}" for k, v in found.items()) or "nothing wrong"


async def wait_settled(stage: Stage, workload: Workload, within: float) -> bool:
    """Until every acknowledged job is finished, its webhook delivered and the bucket
    holds no object or upload in flight; False if that did not happen in time."""
    deadline = time.monotonic() + within
    finished: set[str] = set()
    while time.monotonic() < deadline:
        # The API is asked once every webhook is in (they follow the jobs' ends), and
        # only about jobs not seen finished yet: a finished job stays finished.
        if not _undelivered(stage, workload):
            asked = [a.job_id for a in workload.acknowledged if a.job_id not in finished]
            unfinished = await _unfinished(stage, asked)
            finished.update(set(asked) - set(unfinished))
            if not unfinished and await _bucket_problems(stage) == (0, 0, 0):
                return True
        await asyncio.sleep(1.0)
    return False


async def check(stage: Stage, workload: Workload) -> Findings:
    findings = Findings()
    acknowledged = [a.job_id for a in workload.acknowledged]
    findings.add("lost", "unfinished jobs", len(await _unfinished(stage, acknowledged)))
    conn = await asyncpg.connect(stage.dsn)
    try:
        await _check_jobs(conn, workload, findings)
        await _check_videos(conn, findings)
    finally:
        await conn.close()
    orphans, missing, uploads = await _bucket_problems(stage)
    findings.add("duplicates", "orphan objects", orphans)
    findings.add("duplicates", "incomplete multipart uploads", uploads)
    findings.add("lost", "stored objects", missing)
    _check_webhooks(stage, workload, findings)
    findings.projection_equal = await projection_equals_rebuild(stage)
    return findings


async def _unfinished(stage: Stage, job_ids: list[str]) -> list[str]:
    """The jobs of ``job_ids`` the API does not say are finished."""
    pending: list[str] = []
    headers = {"Authorization": f"Bearer {stage.token}"}
    url = f"{stage.api_url}/api/{API_VERSION}/import/videos/status"
    async with aiohttp.ClientSession(headers=headers) as http:
        for job_id in job_ids:
            try:
                async with http.get(url, params={"id": job_id}) as response:
                    body: dict[str, Any] = await response.json() if response.ok else {}
            except aiohttp.ClientError:
                body = {}
            if not body.get("finished"):
                pending.append(job_id)
    return pending


def _undelivered(stage: Stage, workload: Workload) -> list[str]:
    return [a.job_id for a in workload.acknowledged if not stage.client.deliveries.get(a.job_id)]


async def _check_jobs(conn: asyncpg.Connection, workload: Workload, findings: Findings) -> None:
    jobs = await conn.fetch(
        "SELECT correlation_id, count(*) AS n FROM events"
        " WHERE event_type = 'ImportRequested' AND project = $1 GROUP BY correlation_id",
        PROJECT,
    )
    acked = {a.job_id for a in workload.acknowledged}
    made = {r["correlation_id"]: r["n"] for r in jobs}
    findings.add("lost", "acknowledged jobs", len(acked - made.keys()))
    # Every POST carries a key and is retried until acknowledged: a job nobody
    # acknowledged is a second job for one request.
    findings.add("duplicates", "jobs", len(made.keys() - acked))
    keyed = await conn.fetch("SELECT key, job_id FROM idempotency_keys WHERE project = $1", PROJECT)
    by_key = {r["key"]: r["job_id"] for r in keyed}
    findings.add(
        "duplicates",
        "jobs per idempotency key",
        sum(1 for a in workload.acknowledged if by_key.get(a.key, a.job_id) != a.job_id),
    )
    completed = await conn.fetch(
        "SELECT correlation_id, count(*) AS n FROM events WHERE event_type = 'JobCompleted'"
        " AND project = $1 GROUP BY correlation_id",
        PROJECT,
    )
    done = {r["correlation_id"]: r["n"] for r in completed}
    findings.add("lost", "JobCompleted", len(acked - done.keys()))
    findings.add("duplicates", "JobCompleted", sum(n - 1 for n in done.values()))


async def _check_videos(conn: asyncpg.Connection, findings: Findings) -> None:
    per_video = await conn.fetch(
        "SELECT r.stream_id, count(t.position) AS n FROM events r"
        " LEFT JOIN events t ON t.stream_id = r.stream_id AND t.event_type = ANY($1::text[])"
        " WHERE r.event_type = 'VideoImportRequested' AND r.project = $2 GROUP BY r.stream_id",
        list(TERMINAL),
        PROJECT,
    )
    findings.add("lost", "terminal events", sum(1 for r in per_video if r["n"] == 0))
    findings.add("duplicates", "terminal events", sum(r["n"] - 1 for r in per_video if r["n"] > 1))
    media_ids = await conn.fetch(
        "SELECT count(DISTINCT data->>'media_id') AS n FROM events"
        " WHERE event_type IN ('VideoImported', 'VideoImportSkipped') AND project = $1"
        " GROUP BY data->>'system_name', data->>'external_id'",
        PROJECT,
    )
    findings.add("duplicates", "media ids", sum(r["n"] - 1 for r in media_ids))
    registry = await conn.fetchval(
        "SELECT count(*) FROM media m WHERE m.project = $1 AND EXISTS ("
        " SELECT 1 FROM events e WHERE e.project = m.project"
        " AND e.event_type IN ('VideoImported', 'VideoImportSkipped')"
        " AND e.data->>'system_name' = m.system_name AND e.data->>'external_id' = m.external_id"
        " AND e.data->>'media_id' <> m.media_id)",
        PROJECT,
    )
    findings.add("duplicates", "registry ids differing from the log", registry)


def _check_webhooks(stage: Stage, workload: Workload, findings: Findings) -> None:
    for ack in workload.acknowledged:
        deliveries = stage.client.deliveries.get(ack.job_id, [])
        if not deliveries:
            findings.add("lost", "webhooks", 1)
        ids = {d.webhook_id for d in deliveries}
        findings.add("duplicates", "webhook ids", max(0, len(ids) - 1))


async def _bucket(stage: Stage) -> tuple[set[str], int]:
    """The keys in the bucket and the number of incomplete multipart uploads."""
    for attempt in range(5):
        try:
            return await _list_bucket(stage)
        except ClientError:
            # A server restarting under a scenario (or an s3rver without the listing
            # fix of deploy/s3/server.js) may fail one listing: ask again.
            if attempt == 4:
                raise
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


async def _list_bucket(stage: Stage) -> tuple[set[str], int]:
    info = stage.info
    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=info.s3_endpoint,
        aws_access_key_id=info.s3_access_key,
        aws_secret_access_key=info.s3_secret_key,
        region_name=info.s3_region,
    ) as s3:
        keys: set[str] = set()
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=info.s3_bucket):
            keys.update(item["Key"] for item in page.get("Contents", []))
        try:
            listed = await s3.list_multipart_uploads(Bucket=info.s3_bucket)
            uploads = len(listed.get("Uploads", []))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NotImplemented":
                raise
            uploads = _s3rver_uploads(stage.s3_dir / info.s3_bucket)
    return keys, uploads


async def object_count(stage: Stage) -> int:
    return len((await _bucket(stage))[0])


async def _bucket_problems(stage: Stage) -> tuple[int, int, int]:
    """(orphan objects, referenced objects missing, incomplete multipart uploads)."""
    keys, uploads = await _bucket(stage)
    conn = await asyncpg.connect(stage.dsn)
    try:
        # A video and its poster frame are both referenced by the registry row.
        current = {
            key
            for row in await conn.fetch("SELECT storage_key, poster_key FROM media")
            for key in row
            if key is not None
        }
        superseded = {r[0] for r in await conn.fetch("SELECT storage_key FROM superseded_objects")}
    finally:
        await conn.close()
    return len(keys - current - superseded), len(current - keys), uploads


def _s3rver_uploads(bucket_dir: Path) -> int:
    """s3rver answers NotImplemented to ListMultipartUploads; it keeps each upload's
    parts in a directory of its own until completed or aborted."""
    uploads = bucket_dir / "._S3rver_uploads"
    return sum(1 for entry in uploads.iterdir() if entry.is_dir()) if uploads.is_dir() else 0


async def projection_equals_rebuild(stage: Stage, within: float = 300.0) -> bool:
    """``python -m videoimport_projector rebuild --check``: replays the whole log into
    shadow tables and compares them with the live ones at one log position (under
    the projector's lock, the live tables caught up to it), while everything keeps
    running; it changes nothing. Differences are printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "videoimport_projector",
        "rebuild",
        "--check",
        env={**os.environ, **stage.services.environment("projector")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        print(f"rebuild --check did not finish within {within:.0f} s", file=sys.stderr)
        return False
    if process.returncode != 0:
        report = (out + err).decode(errors="replace")
        print(f"rebuild --check (exit {process.returncode}):\n{report[-4000:]}", file=sys.stderr)
    return process.returncode == 0
