"""Ingester transfer: source URL → S3 through the ingester's real streaming path.

The transfer is the ingester's own, built by ``bootstrap.build_transfer`` with
the default settings. The baseline moves the same bytes the simplest
way: one aiohttp GET read whole into memory, then one PutObject with the same
S3 client. Peak Python memory (tracemalloc) is measured in separate runs,
because tracing slows allocation down.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from videoimport_devstack import StackInfo
from videoimport_ingester import bootstrap
from videoimport_ingester.adapters.http_fetch import make_session
from videoimport_ingester.settings import Settings

from .common import MB, MIB, Result, fresh_bucket, median, report, serve

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

SPEED_SIZE = 64 * MIB
MEMORY_SIZES = (16 * MIB, 64 * MIB, 256 * MIB)
"""16 MiB is only two parts, below the buffer bound; 256 MiB shows the peak stays flat."""
ROUNDS = 3
# ISO BMFF "ftyp" box, brand isom: what the ingester sniffs as video/mp4.
FTYP = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"

Copy = Callable[["SourceFile"], Awaitable[int]]
"""Moves a source file into the bucket; returns the number of bytes stored."""


@dataclass(frozen=True)
class SourceFile:
    url: str
    size: int
    sha256: str


def write_video(path: Path, size: int) -> str:
    """Random bytes behind an mp4 header; returns their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        remaining = size
        block = FTYP + os.urandom(MIB - len(FTYP))
        while remaining > 0:
            piece = block[:remaining]
            out.write(piece)
            digest.update(piece)
            remaining -= len(piece)
            block = os.urandom(MIB)
    return digest.hexdigest()


def ingester_settings(stack: StackInfo, bucket: str) -> Settings:
    return Settings(
        s3_endpoint=stack.s3_endpoint,
        s3_access_key=stack.s3_access_key,
        s3_secret_key=stack.s3_secret_key,
        s3_bucket=bucket,
        s3_region=stack.s3_region,
        allow_private_urls=True,  # the source server is on loopback
    )


def _ingester_key(extension: str) -> str:
    return f"bench/ingester/{uuid.uuid4()}{extension}"


@contextlib.asynccontextmanager
async def ingester_copy(settings: Settings, s3: S3Client) -> AsyncIterator[Copy]:
    """The ingester's download-and-upload path, wired the way ``bootstrap`` wires it."""
    async with make_session(allow_private=settings.allow_private_urls) as session:
        transfer, _ = bootstrap.build_transfer(settings, session, s3)

        async def copy(source: SourceFile) -> int:
            stored = await transfer.copy(source.url, _ingester_key)
            await s3.delete_object(Bucket=settings.s3_bucket, Key=stored.storage_key)
            if stored.sha256 != source.sha256 or stored.mime_type != "video/mp4":
                raise RuntimeError(f"stored something else than {source.url}: {stored}")
            return stored.size

        yield copy


@contextlib.asynccontextmanager
async def baseline_copy(bucket: str, s3: S3Client, phases: dict[str, float]) -> AsyncIterator[Copy]:
    """Download whole into memory, then one PutObject; adds each phase's seconds to ``phases``."""
    async with aiohttp.ClientSession() as session:

        async def copy(source: SourceFile) -> int:
            began = time.perf_counter()
            async with session.get(source.url) as response:
                response.raise_for_status()
                data = await response.read()
            downloaded = time.perf_counter()
            key = f"bench/baseline/{uuid.uuid4()}.mp4"
            await s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="video/mp4")
            phases["download"] = phases.get("download", 0.0) + downloaded - began
            phases["put"] = phases.get("put", 0.0) + time.perf_counter() - downloaded
            await s3.delete_object(Bucket=bucket, Key=key)
            return len(data)

        yield copy


async def _timed(copy: Copy, source: SourceFile) -> float:
    began = time.perf_counter()
    size = await copy(source)
    seconds = time.perf_counter() - began
    if size != source.size:
        raise RuntimeError(f"stored {size} bytes of {source.size}")
    return source.size / seconds / MB


async def _peak_bytes(copy: Copy, source: SourceFile) -> int:
    """Peak Python heap growth while ``copy`` runs (tracemalloc must be tracing)."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    await copy(source)
    return tracemalloc.get_traced_memory()[1] - before


async def run(stack: StackInfo, results: list[Result], work_dir: Path, *, quick: bool) -> None:
    rounds = 1 if quick else ROUNDS
    bucket = await fresh_bucket(stack, "bench-transfer-")
    settings = ingester_settings(stack, bucket)
    files = work_dir / "transfer"
    files.mkdir(parents=True, exist_ok=True)
    sizes = sorted({SPEED_SIZE, *MEMORY_SIZES})
    digests = {size: write_video(files / f"{size // MIB}mib.mp4", size) for size in sizes}
    app = web.Application()
    # Served with sendfile: the source costs this process next to nothing.
    app.router.add_static("/files/", files)
    phases: dict[str, float] = {}
    async with (
        serve(app) as base_url,
        bootstrap.s3_client(settings) as s3,
        ingester_copy(settings, s3) as ingester,
        baseline_copy(bucket, s3, phases) as baseline,
    ):
        source = {
            size: SourceFile(f"{base_url}/files/{size // MIB}mib.mp4", size, digests[size])
            for size in sizes
        }
        speed = source[SPEED_SIZE]
        await _timed(ingester, source[min(sizes)])  # warm-up: connections, first imports
        await _timed(baseline, source[min(sizes)])
        phases.clear()
        ingester_rates: list[float] = []
        baseline_rates: list[float] = []
        for index in range(rounds):
            order = [(ingester, ingester_rates), (baseline, baseline_rates)]
            for copy, rates in order if index % 2 == 0 else reversed(order):
                rates.append(await _timed(copy, speed))
        moved = rounds * speed.size / MB
        report(
            Result(
                name=f"ingester.transfer {speed.size // MIB} MiB",
                unit="MB/s",
                value=median(ingester_rates),
                baseline=median(baseline_rates),
                baseline_name="GET into memory, then one PutObject",
                details={
                    "part_size_mib": settings.s3_part_size / MIB,
                    "parts_in_flight": settings.s3_parts_in_flight,
                    "baseline_download_mb_s": moved / phases["download"],
                    "baseline_put_mb_s": moved / phases["put"],
                    "rounds": rounds,
                    "ingester_rates": ingester_rates,
                    "baseline_rates": baseline_rates,
                },
            ),
            results,
        )
        tracemalloc.start()
        try:
            peaks = {size: await _peak_bytes(ingester, source[size]) for size in MEMORY_SIZES}
            baseline_peak = await _peak_bytes(baseline, source[MEMORY_SIZES[1]])
        finally:
            tracemalloc.stop()
    bound = (settings.s3_parts_in_flight + 1) * settings.s3_part_size
    for small, large in itertools.pairwise(MEMORY_SIZES):
        report(
            Result(
                name=f"ingester.transfer peak memory, {large // MIB} MiB file",
                unit="MiB",
                value=peaks[large] / MIB,
                baseline=peaks[small] / MIB,
                baseline_name=f"the same transfer of a {small // MIB} MiB file",
                details={
                    "bound_mib": bound / MIB,
                    "peak_over_bound": peaks[large] / bound,
                    "peaks_mib": {size // MIB: peak / MIB for size, peak in peaks.items()},
                    "baseline_copy_peak_mib": baseline_peak / MIB,
                },
            ),
            results,
        )
    print(
        f"    (parts_in_flight + 1) x part_size = {bound / MIB:g} MiB; for contrast, the"
        f" baseline copy of {MEMORY_SIZES[1] // MIB} MiB peaked at {baseline_peak / MIB:.1f} MiB",
        flush=True,
    )
