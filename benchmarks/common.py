"""What every benchmark shares: results, fresh databases and buckets, a local HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import secrets
import statistics
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiobotocore.session import get_session
from aiohttp import web
from videoimport_devstack import StackInfo

REPO = Path(__file__).resolve().parent.parent
RESULTS_FILE = REPO / ".data" / "bench" / "results.json"
MB = 1_000_000
MIB = 1024 * 1024


@dataclass
class Result:
    """One measured number next to its baseline from the same run."""

    name: str
    unit: str
    value: float
    baseline: float
    baseline_name: str
    details: dict[str, Any] = field(default_factory=dict)
    goal: str = ""
    """The issue's goal for this figure, as printed (e.g. ``ratio ≥ 0.5``); empty: none."""
    met: bool | None = None
    """Whether this run reached ``goal`` (None: no goal)."""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else math.nan

    def line(self) -> str:
        baseline = (
            f"baseline ({self.baseline_name}) {_num(self.baseline)} {self.unit}"
            if self.baseline
            else f"baseline {self.baseline_name or '—'}"
        )
        ratio = "—" if math.isnan(self.ratio) else f"{self.ratio:.2f}"
        goal = f" (goal {self.goal}: {'met' if self.met else 'NOT met'})" if self.goal else ""
        return f"{self.name}: {_num(self.value)} {self.unit} | {baseline} | ratio {ratio}{goal}"

    def to_json(self) -> dict[str, Any]:
        # No NaN in the file: strict JSON readers refuse it.
        ratio = None if math.isnan(self.ratio) else self.ratio
        return {**dataclasses.asdict(self), "ratio": ratio}


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def report(result: Result, results: list[Result]) -> None:
    results.append(result)
    print(result.line(), flush=True)
    extras = {k: v for k, v in result.details.items() if not isinstance(v, (list, dict))}
    if extras:
        print("    " + ", ".join(f"{k}={_detail(v)}" for k, v in extras.items()), flush=True)


def _detail(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: every value reported was measured)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def with_database(dsn: str, database: str) -> str:
    return dsn.rpartition("/")[0] + "/" + database


@contextlib.asynccontextmanager
async def fresh_database(stack: StackInfo, prefix: str) -> AsyncIterator[str]:
    """A new, empty database; dropped afterwards. Yields its DSN."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(stack.postgres_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(stack.postgres_dsn, name)
    finally:
        admin = await asyncpg.connect(stack.postgres_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def fresh_bucket(stack: StackInfo, prefix: str) -> str:
    name = f"{prefix}{secrets.token_hex(6)}"
    async with get_session().create_client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.s3_access_key,
        aws_secret_access_key=stack.s3_secret_key,
        region_name=stack.s3_region,
    ) as client:
        await client.create_bucket(Bucket=name)
    return name


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1 (a free port); yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def cli(dsn: str, *args: str) -> str:
    """Run the ``videoimport`` admin CLI against ``dsn``; returns what it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "videoimport_projects.cli",
        *args,
        "--database-url",
        dsn,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"videoimport {' '.join(args)} failed: {err.decode()}")
    return out.decode().strip()
