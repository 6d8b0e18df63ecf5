"""``python -m benchmarks.performance_doc [results.json] [--output PAGE]``: the perf page.

From a benchmark run's results (default ``.data/bench/results.json``): the
machine and date, one table per scenario (figure, baseline, ratio, goal, met?)
and one PNG chart per scenario in ``docs/img/perf-<scenario>.png``. The part of
the page between the findings markers is written by hand (profile findings,
before/after) and kept as it is when the page is regenerated.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from .common import REPO, RESULTS_FILE

DOC = REPO / "docs" / "performance.md"
FINDINGS_START = "<!-- findings -->"
FINDINGS_END = "<!-- /findings -->"
DEFAULT_FINDINGS = (
    "## Findings\n\nWhere a video's milliseconds go (profile before/after) is written here"
    " by hand; regenerating the page keeps this section.\n"
)
TITLES = {
    "bulk": "Bulk import (first POST → every job finished)",
    "latency": "POST latency during imports, POST → webhook",
    "status": "Status reads of a finished job",
    "e2e": "End-to-end import, concurrency 8 vs 1",
    "eventlog": "Event log append",
    "ingester": "Ingester transfer",
    "fairness": "Fairness: a small job behind a backlog",
    "projector": "Projection rebuild",
    "large": "Large videos (one POST → every video imported)",
    "scaleout": "Two ingester processes against one (bulk import)",
}
MEASURED, BASELINE, GOAL = "#3b6ea5", "#b0b0b0", "#c0392b"


def number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def ratio(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.2f}"


def scenario_of(result: dict[str, Any]) -> str:
    return str(result["name"]).split(".", 1)[0].split(" ", 1)[0]


def grouped(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        groups.setdefault(scenario_of(result), []).append(result)
    return groups


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = ["| measured | figure | baseline | ratio | goal | met? |", "|---|---|---|---|---|---|"]
    for r in results:
        unit = r["unit"]
        baseline = (
            f"{number(r['baseline'])} {unit} ({r['baseline_name']})" if r["baseline"] else "—"
        )
        met = "—" if r.get("met") is None else ("yes" if r["met"] else "**no**")
        lines.append(
            f"| {r['name']} | {number(r['value'])} {unit} | {baseline}"
            f" | {ratio(r.get('ratio'))} | {r.get('goal') or '—'} | {met} |"
        )
    return lines


def notes(scenario: str, results: list[dict[str, Any]]) -> list[str]:
    """The details a reader needs to judge the figures of one scenario."""
    lines = []
    for r in results:
        d = r.get("details", {})
        if r.get("from_run"):
            lines.append(f"- {r['name']}: measured by an earlier run, {r['from_run']}")
        if scenario == "bulk":
            lines.append(
                f"- N={d['videos']}: {d['seconds']:.1f} s; first half of the videos"
                f" {number(d['first_half_videos_per_s'])}/s, second half"
                f" {number(d['second_half_videos_per_s'])}/s; bare copy halves on their own:"
                f" GET only {number(d['get_only_per_s'])}/s, S3 PutObject only"
                f" {number(d['put_only_per_s'])}/s"
            )
        elif scenario == "large":
            lines.append(_large_note(r))
        elif scenario == "scaleout":
            lines.append(
                f"- N={d['videos']} in {d['jobs']} job(s): one ingester {d['seconds_one']:.1f} s,"
                f" two {d['seconds_two']:.1f} s; the second process handled"
                f" {d['second_ingester_share']:.0%} of the videos. Both runs use the default"
                " limits, which hold across instances (6 videos of one project or job at once)"
            )
        elif "p99_ms" in d:
            base = (
                f", baseline p99 {number(d['baseline_p99_ms'])} ms"
                if "baseline_p99_ms" in d
                else ""
            )
            lines.append(
                f"- {r['name']}: p50 {number(d['p50_ms'])} ms, p99 {number(d['p99_ms'])} ms{base}"
            )
    return lines


def _large_note(r: dict[str, Any]) -> str:
    d = r["details"]
    if r["unit"] == "MB":
        return (
            f"- Ingester peak RSS (`VmHWM`) {number(r['value'])} MB: about"
            f" {number(d['rss_growth_per_video_mb'])} MB more per video at once"
            f" ({d['videos_at_once']} at once) than after the warm-up; the upload buffer"
            f" bound is {number(d['upload_buffer_bound_mb_per_video'])} MB per video"
        )
    log = ", ".join(
        f"{what} {d[key]:.1f} s"
        for what, key in (
            ("first video done", "first_video_after_post_s"),
            ("last", "last_video_after_post_s"),
            ("JobCompleted", "completed_after_post_s"),
        )
        if key in d
    )
    return (
        f"- {d['videos']} distinct videos of {number(d['video_bytes'] / 1e6)} MB, streamed by"
        f" the origin: {d['seconds']:.1f} s from the POST (log: {log}); {d['in_flight']}"
        f" at once, {number(d['part_size_mib'])} MiB parts, {d['parts_in_flight']} in flight"
        f" per video. Bare copy halves on their own: GET only {number(d['get_only_mb_s'])} MB/s,"
        f" multipart upload only {number(d['multipart_only_mb_s'])} MB/s. Nothing changed"
        " for the run: the default `max_video_bytes` (5 GiB) admits the videos"
    )


def _bars(ax: Any, labels: list[str], series: dict[str, tuple[list[float], str]]) -> None:
    width = 0.8 / len(series)
    for offset, (name, (values, colour)) in enumerate(series.items()):
        xs = [i + (offset - (len(series) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, values, width, label=name, color=colour)
    ax.set_xticks(range(len(labels)), labels)


def chart_bulk(results: list[dict[str, Any]], path: Path) -> None:
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    labels = [f"N={r['details']['videos']}" for r in results]
    _bars(
        ax,
        labels,
        {
            "pipeline": ([r["value"] for r in results], MEASURED),
            "bare GET → PutObject": ([r["baseline"] for r in results], BASELINE),
            "S3 PutObject only": ([r["details"]["put_only_per_s"] for r in results], "#7f7f7f"),
        },
    )
    goals = [0.5 * r["baseline"] for r in results]
    ax.hlines(goals, [i - 0.45 for i in range(len(goals))], [i + 0.45 for i in range(len(goals))],
              colors=GOAL, linestyles="dashed", label="goal (half the bare copy)")  # fmt: skip
    ax.set_ylabel("videos/s")
    ax.set_title("Bulk import of 100 KB videos")
    ax.legend(fontsize="small")
    _save(fig, path)


def chart_large(results: list[dict[str, Any]], path: Path) -> None:
    speed = next(r for r in results if r["unit"] == "MB/s")
    memory = [r for r in results if r["unit"] == "MB"]
    d = speed["details"]
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    # GET only (the origin, often ten times faster) is in the notes: it would flatten the bars.
    axes[0].bar(
        ["pipeline", "bare copy", "S3 upload only"],
        [speed["value"], speed["baseline"], d["multipart_only_mb_s"]],
        color=[MEASURED, BASELINE, "#7f7f7f"],
    )
    axes[0].axhline(0.8 * speed["baseline"], color=GOAL, linestyle="dashed",
                    label="goal (0.8 x the bare copy)")  # fmt: skip
    axes[0].set_ylabel("MB/s")
    axes[0].set_title(speed["name"].split(" ", 1)[-1])
    for r in memory:
        axes[1].bar(["after warm-up", "peak"], [r["baseline"], r["value"]],
                    color=[BASELINE, MEASURED])  # fmt: skip
        axes[1].axhline(200, color=GOAL, linestyle="dashed", label="goal ≤ 200 MB")
    axes[1].set_ylabel("MB")
    axes[1].set_title("Ingester RSS")
    for ax in axes:
        ax.legend(fontsize="small")
    _save(fig, path)


def chart_scaleout(results: list[dict[str, Any]], path: Path) -> None:
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    labels = [f"N={r['details']['videos']}" for r in results]
    _bars(ax, labels, {
        "1 ingester": ([r["baseline"] for r in results], BASELINE),
        "2 ingesters": ([r["value"] for r in results], MEASURED),
    })  # fmt: skip
    ax.set_ylabel("videos/s")
    ax.set_title("Bulk import of 100 KB videos")
    ax.legend(fontsize="small")
    _save(fig, path)


def chart_latency(results: list[dict[str, Any]], path: Path) -> None:
    posts = [r for r in results if "POST" in r["name"] and "baseline_p99_ms" in r["details"]]
    hooks = [r for r in results if "webhook" in r["name"]]
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for r in posts:
        d = r["details"]
        _bars(axes[0], ["p50", "p99"], {
            "POST of 10 videos": ([d["p50_ms"], d["p99_ms"]], MEASURED),
            "11-row transaction": ([d["baseline_p50_ms"], d["baseline_p99_ms"]], BASELINE),
        })  # fmt: skip
        axes[0].axhline(50, color=GOAL, linestyle="dashed", label="goal p99 ≤ 50 ms")
    axes[0].set_title("POST during imports")
    labels = [r["name"].rpartition("MB ")[2] for r in hooks]
    _bars(axes[1], labels, {
        "p50": ([r["details"]["p50_ms"] for r in hooks], MEASURED),
        "p99": ([r["details"]["p99_ms"] for r in hooks], "#1f3a5f"),
    })  # fmt: skip
    axes[1].axhline(300, color=GOAL, linestyle="dashed", label="goal p50 ≤ 300 ms")
    axes[1].axhline(2000, color=GOAL, linestyle="dotted", label="goal p99 ≤ 2 s (under load)")
    axes[1].set_title("1-video 1 MB job: POST → webhook")
    for ax in axes:
        ax.set_ylabel("ms")
        ax.legend(fontsize="small")
    _save(fig, path)


def chart_generic(results: list[dict[str, Any]], path: Path) -> None:
    fig = Figure(figsize=(3.2 * len(results) + 1, 4))
    axes = fig.subplots(1, len(results), squeeze=False)
    for ax, r in zip(axes[0], results, strict=True):
        labels, values = ["measured"], [r["value"]]
        if r["baseline"]:
            labels.append("baseline")
            values.append(r["baseline"])
        ax.bar(labels, values, color=[MEASURED, BASELINE][: len(values)])
        ax.set_ylabel(r["unit"])
        ax.set_title(r["name"].split(" ", 1)[-1], fontsize="small", wrap=True)
    _save(fig, path)


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


CHARTS = {
    "bulk": chart_bulk,
    "latency": chart_latency,
    "large": chart_large,
    "scaleout": chart_scaleout,
}


def kept_findings(existing: str) -> str:
    start, end = existing.find(FINDINGS_START), existing.find(FINDINGS_END)
    if start == -1 or end < start:
        return f"{FINDINGS_START}\n{DEFAULT_FINDINGS}{FINDINGS_END}"
    return existing[start : end + len(FINDINGS_END)]


def render(document: dict[str, Any], findings: str, images: Path) -> str:
    machine, args = document.get("machine", {}), document.get("arguments", {})
    lines = [
        "# Performance",
        "",
        "Written by `make bench` (`python -m benchmarks`, then"
        " `python -m benchmarks.performance_doc`) from `.data/bench/results.json`. Every"
        " figure comes with a baseline measured in the same run on the same servers; the"
        " ratio is figure / baseline. Only the findings section is written by hand.",
        "",
        f"- Machine: {machine.get('cpus')} CPUs, {machine.get('platform')},"
        f" Python {machine.get('python')}",
        f"- Run finished {document.get('finished_at')}, took {document.get('seconds')} s",
    ]
    if args.get("quick"):
        lines.append("- **A smoke run (`--quick`)**: small counts, not the issue's scenarios.")
    if document.get("error"):
        lines.append(f"- **The run failed**: {document['error']}")
    for scenario, results in grouped(document.get("results", [])).items():
        image = images / f"perf-{scenario}.png"
        CHARTS.get(scenario, chart_generic)(results, image)
        lines += ["", f"## {TITLES.get(scenario, scenario)}", "", *table(results)]
        extra = notes(scenario, results)
        lines += ["", *extra] if extra else []
        lines += ["", f"![{scenario}](img/{image.name})"]
    return "\n".join([*lines, "", findings, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.performance_doc",
        description="Write the performance page and its charts from a benchmark run.",
    )
    parser.add_argument("results", type=Path, nargs="?", default=RESULTS_FILE)
    parser.add_argument(
        "--output", type=Path, default=DOC, help="the page; charts go to img/ next to it"
    )
    args = parser.parse_args(argv)
    document = json.loads(args.results.read_text())
    existing = args.output.read_text() if args.output.exists() else ""
    page = render(document, kept_findings(existing), args.output.parent / "img")
    args.output.write_text(page)
    print(f"wrote {args.output} from {args.results}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
