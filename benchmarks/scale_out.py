"""Scale-out: the bulk import with two ingester processes against one.

The bulk scenario (``bulk.pipeline``: N distinct 100 KB videos in jobs of at
most 1,000, first POST → every ``JobCompleted``) runs twice in the same run, on
fresh deployments with default settings: once with one ingester process, then
with two on the same database and topics (one consumer group, one queue). The
figure is videos/s with two, the baseline videos/s with one. There is no goal:
on a 2-core machine the second process mostly competes for the same CPUs, and
the per-project and per-job limits (6 videos at once, across every instance)
stay the same, so the ratio says what a second process buys here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videoimport_devstack import StackInfo

from . import bulk
from .common import Result, report, serve

RESULT_LINE = "video import result"
"""What an ingester logs once per video it handled (warm-up videos included)."""


def videos_by_ingester(log_dir: Path) -> dict[str, int]:
    """How many videos each ingester process handled, from its log."""
    return {
        path.stem: path.read_text(errors="replace").count(RESULT_LINE)
        for path in sorted(log_dir.glob("ingester*.log"))
    }


async def run(stack: StackInfo, results: list[Result], work_dir: Path, *, videos: int) -> None:
    source = bulk.GeneratedSource()
    runs: dict[int, dict[str, Any]] = {}
    async with serve(source.app) as source_url:
        for ingesters in (1, 2):
            log_dir = work_dir / f"scaleout-{ingesters}"
            measured = await bulk.pipeline(stack, source_url, log_dir, videos, ingesters=ingesters)
            runs[ingesters] = {**measured, "videos_by_ingester": videos_by_ingester(log_dir)}
    one, two = runs[1], runs[2]
    split = two["videos_by_ingester"]
    report(
        Result(
            name=f"scaleout.import N={videos} x 100 KB, 2 ingesters",
            unit="videos/s",
            value=two["videos_per_s"],
            baseline=one["videos_per_s"],
            baseline_name="1 ingester process",
            details={
                "videos": videos,
                "jobs": two["jobs"],
                "seconds_two": two["seconds"],
                "seconds_one": one["seconds"],
                "second_ingester_share": split.get("ingester-2", 0) / max(sum(split.values()), 1),
                "videos_by_ingester": split,
                "runs": {"one": one, "two": two},
            },
        ),
        results,
    )
