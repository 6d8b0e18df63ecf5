"""``python -m benchmarks``: start a local stack, run the benchmarks, write results.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from videoimport_devstack import LocalStack, StackInfo

from . import (
    bulk,
    e2e,
    eventlog,
    fairness,
    large,
    latency,
    rebuild,
    scale_out,
    status_reads,
    transfer,
)
from .common import MB, RESULTS_FILE, Result

BENCHMARKS = (
    "eventlog",
    "transfer",
    "e2e",
    "fairness",
    "rebuild",
    "bulk",
    "latency",
    "status",
    "large",
    "scaleout",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Start a local stack, run the benchmarks against it, write results JSON.",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        help="run only this benchmark (repeatable; default: all)",
    )
    parser.add_argument("--videos", type=int, default=200, help="videos per e2e batch")
    parser.add_argument(
        "--latency-ms",
        type=int,
        action="append",
        help=(
            "source latency per request: e2e runs one pair of runs each (default: 50 and 0),"
            " fairness uses the first (default: 50)"
        ),
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=1000,
        help="videos of the big project's backlog in the fairness benchmark (--quick: 200)",
    )
    parser.add_argument(
        "--rebuild-events",
        type=int,
        default=50_000,
        help="events in the log the rebuild benchmark rebuilds from (--quick: 5000)",
    )
    parser.add_argument(
        "--bulk-videos",
        type=int,
        action="append",
        help="videos of one bulk run (repeatable; default: 200 and 2000; --quick: 50 and 100)",
    )
    parser.add_argument(
        "--large-bytes",
        type=int,
        default=1_000_000_000,
        help="bytes of each video of the large benchmark (--quick: 64 MB)",
    )
    parser.add_argument(
        "--large-videos",
        type=int,
        default=4,
        help="videos of the large benchmark's job (--quick: 2)",
    )
    parser.add_argument(
        "--scale-videos",
        type=int,
        default=2000,
        help="videos of each scale-out run, 1 and 2 ingesters (--quick: 200)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (a smoke run)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="results JSON file")
    args = parser.parse_args(argv)
    if args.videos < 1:
        parser.error("--videos must be at least 1")
    if args.backlog < 1:
        parser.error("--backlog must be at least 1")
    if args.rebuild_events < 1:
        parser.error("--rebuild-events must be at least 1")
    if args.large_bytes < 1_000_000:
        parser.error("--large-bytes must be at least 1000000")
    if args.large_videos < 1 or args.scale_videos < 1:
        parser.error("--large-videos and --scale-videos must be at least 1")
    if any(count < 1 for count in args.bulk_videos or []):
        parser.error("--bulk-videos must be at least 1")
    return args


async def run_all(
    stack: StackInfo, args: argparse.Namespace, work_dir: Path, results: list[Result]
) -> None:
    selected = args.only or list(BENCHMARKS)
    if "eventlog" in selected:
        await eventlog.run(stack, results, quick=args.quick)
    if "transfer" in selected:
        await transfer.run(stack, results, work_dir, quick=args.quick)
    if "e2e" in selected:
        latencies = args.latency_ms if args.latency_ms is not None else [50, 0]
        await e2e.run(
            stack,
            results,
            work_dir,
            videos=20 if args.quick else args.videos,
            latencies_ms=latencies[:1] if args.quick else latencies,
        )
    if "fairness" in selected:
        await fairness.run(
            stack,
            results,
            work_dir,
            backlog=min(args.backlog, 200) if args.quick else args.backlog,
            latency_ms=args.latency_ms[0] if args.latency_ms else 50,
        )
    if "rebuild" in selected:
        await rebuild.run(
            stack,
            results,
            events=min(args.rebuild_events, 5000) if args.quick else args.rebuild_events,
            quick=args.quick,
        )
    if "bulk" in selected:
        default_counts = [50, 100] if args.quick else [200, 2000]
        await bulk.run(stack, results, work_dir, video_counts=args.bulk_videos or default_counts)
    if "latency" in selected:
        await latency.run(stack, results, work_dir, quick=args.quick)
    if "status" in selected:
        await status_reads.run(stack, results, work_dir, quick=args.quick)
    if "large" in selected:
        await large.run(
            stack,
            results,
            work_dir,
            videos=min(args.large_videos, 2) if args.quick else args.large_videos,
            size=min(args.large_bytes, 64 * MB) if args.quick else args.large_bytes,
        )
    if "scaleout" in selected:
        await scale_out.run(
            stack,
            results,
            work_dir,
            videos=min(args.scale_videos, 200) if args.quick else args.scale_videos,
        )


def write_results(
    path: Path, args: argparse.Namespace, results: list[Result], seconds: float, error: str | None
) -> None:
    document: dict[str, Any] = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "error": error,
        "results": _kept(path, args, results) + [r.to_json() for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def _kept(path: Path, args: argparse.Namespace, results: list[Result]) -> list[dict[str, Any]]:
    """With ``--only``: the earlier results of the file that this run did not measure
    again (each marked with the run it came from), so the page keeps every scenario."""
    if not args.only or not path.exists():
        return []
    try:
        earlier = json.loads(path.read_text())
    except ValueError:
        return []
    measured = {r.name for r in results}
    return [
        {**r, "from_run": r.get("from_run") or earlier.get("finished_at")}
        for r in earlier.get("results", [])
        if r.get("name") not in measured
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    began = time.monotonic()
    results: list[Result] = []
    error: str | None = None
    work_dir = Path(tempfile.mkdtemp(prefix="videoimport-bench-"))
    local = LocalStack(work_dir / "stack")
    try:
        print("starting the local stack ...", flush=True)
        local.install()
        stack = local.start()
        print(f"stack ready after {time.monotonic() - began:.0f} s", flush=True)
        asyncio.run(run_all(stack, args, work_dir, results))
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        local.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
        seconds = time.monotonic() - began
        write_results(args.output, args, results, seconds, error)
        print(f"{len(results)} results in {seconds:.0f} s written to {args.output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
