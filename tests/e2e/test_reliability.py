"""The short subset of ``make reliability``: a kill loop and a server restart under load.

Its own stage (stack, services, origin, receiver) in a temporary directory; every
invariant of ``reliability.invariants`` is checked after each scenario.
"""

from __future__ import annotations

from reliability.runner import run
from reliability.scenarios import Plan


async def test_a_kill_loop_and_an_s3_restart_lose_and_duplicate_nothing() -> None:
    plan = Plan(kills=5, server_restarts=1)
    outcomes = await run(["kill-ingester", "s3-kill"], plan, settle=300.0)

    assert [o.name for o in outcomes] == ["kill-ingester", "s3-kill"]
    for outcome in outcomes:
        assert outcome.passed, f"{outcome.line()}: {outcome.problems()}"
        assert outcome.videos >= 50, outcome.line()
    assert [o.injected.faults for o in outcomes] == [5, 1]
