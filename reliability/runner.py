"""Run scenarios on one stage and report: an ``Outcome`` (figures line) per scenario,
and the table of ``docs/reliability.md``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import invariants
from .scenarios import SCENARIOS, Injected, Plan
from .stage import REPO, Stage, close_stage, open_stage
from .workload import Workload

DOCS = REPO / "docs" / "reliability.md"
TABLE_START = "<!-- figures: start -->"
TABLE_END = "<!-- figures: end -->"


@dataclass
class Outcome:
    name: str
    videos: int
    injected: Injected
    findings: invariants.Findings
    settled: bool
    seconds: float

    @property
    def lost(self) -> int:
        return sum(self.findings.lost.values())

    @property
    def duplicates(self) -> int:
        return sum(self.findings.duplicates.values()) + sum(
            abs(v) for v in self.injected.new_effects.values()
        )

    @property
    def passed(self) -> bool:
        return (
            self.settled
            and self.lost == 0
            and self.duplicates == 0
            and self.projection_equal
            and not self.injected.unreported_outage
        )

    @property
    def projection_equal(self) -> bool:
        return self.findings.projection_equal

    def line(self) -> str:
        projection = "=" if self.projection_equal else "≠"
        return (
            f"{self.name}: {self.videos} videos, {self.injected.faults} faults,"
            f" lost {self.lost}, duplicate effects {self.duplicates},"
            f" projection {projection} rebuild ({self.seconds:.0f} s)"
        )

    def problems(self) -> str:
        found = [self.findings.describe()] if not self.findings.clean else []
        found += [f"new {k}: {v}" for k, v in self.injected.new_effects.items()]
        if not self.settled:
            found.append("did not settle in time")
        if self.injected.unreported_outage:
            names = ", ".join(self.injected.unreported_outage)
            found.append(f"readiness did not report the outage: {names}")
        return "; ".join(found)


async def run_scenario(
    name: str, stage: Stage, workload: Workload, plan: Plan, settle: float
) -> Outcome:
    _, scenario = SCENARIOS[name]
    began = time.monotonic()
    videos_before = workload.videos
    injected = await scenario(stage, workload, plan)
    settled = await invariants.wait_settled(stage, workload, within=settle)
    findings = await invariants.check(stage, workload)
    dead = stage.dead()
    if dead:
        findings.add("lost", f"processes that died on their own ({dead})", len(dead))
    return Outcome(
        name,
        workload.videos - videos_before,
        injected,
        findings,
        settled,
        time.monotonic() - began,
    )


async def run(
    names: list[str],
    plan: Plan,
    *,
    batch: int = 10,
    settle: float = 600.0,
    keep: bool = False,
    settings: Mapping[str, str] | None = None,
) -> list[Outcome]:
    """Every scenario in ``names`` on one fresh stage (``settings``: service settings
    over the stage's); the stage's directory (logs) is kept when asked to or when a
    scenario failed."""
    stage = await open_stage(settings=settings)
    outcomes: list[Outcome] = []
    broke = True
    try:
        workload = Workload(stage.api_url, stage.token, stage.client, batch=batch)
        for name in names:
            print(f"{name}: {SCENARIOS[name][0]} ...", flush=True)
            outcome = await run_scenario(name, stage, workload, plan, settle)
            outcomes.append(outcome)
            print(outcome.line(), flush=True)
            if outcome.injected.note:
                print(f"  {outcome.injected.note}", flush=True)
            if not outcome.passed:
                print(f"  {outcome.problems()}", flush=True)
        broke = False
    finally:
        failed = broke or any(not o.passed for o in outcomes)
        await close_stage(stage, keep=keep or failed)
        if keep or failed:
            print(f"logs kept in {stage.work_dir / 'logs'}", flush=True)
    return outcomes


HEADER = (
    "| scenario | what happens | videos | faults | lost | duplicate effects | projection"
    " | notes | measured |\n|---|---|---|---|---|---|---|---|---|"
)


def row(outcome: Outcome, day: str) -> str:
    o = outcome
    projection = "= rebuild" if o.projection_equal else "≠ rebuild"
    return (
        f"| `{o.name}` | {SCENARIOS[o.name][0]} | {o.videos} | {o.injected.faults}"
        f" | {o.lost} | {o.duplicates} | {projection} | {o.injected.note} | {day} |"
    )


def table(outcomes: list[Outcome], previous: str = "", day: str = "") -> str:
    """The figures table: a row per scenario, in ``SCENARIOS`` order; the rows of
    scenarios this run did not include are kept from ``previous``."""
    rows: dict[str, str] = {}
    for line in previous.splitlines():
        name = line.split("`")[1] if line.startswith("| `") else ""
        if name in SCENARIOS:
            rows[name] = line
    for outcome in outcomes:
        rows[outcome.name] = row(outcome, day or time.strftime("%Y-%m-%d"))
    return "\n".join([HEADER, *(rows[name] for name in SCENARIOS if name in rows)])


def write_docs(outcomes: list[Outcome], path: Path = DOCS) -> None:
    text = path.read_text()
    head, _, rest = text.partition(TABLE_START)
    previous, _, tail = rest.partition(TABLE_END)
    path.write_text(f"{head}{TABLE_START}\n{table(outcomes, previous)}\n{TABLE_END}{tail}")
