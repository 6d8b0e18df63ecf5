"""The short subset of ``make reliability``: a kill loop and a server restart under load.

Its own stage (stack, services, origin, receiver) in a temporary directory; every
invariant of ``reliability.invariants`` is checked after each scenario.

Shorter than the full run, as every video costs a download, an upload and two
media tool runs: two kills (each a restart under load) and a batch every 3 s (not
1.5 s), which still makes at least 50 videos in each scenario. The ingester's lease
is 8 s, not the stage's 20 s: the videos a killed ingester held count against the
project's limit until their leases run out. Retries after an outage (S3 away) wait
at most 5 s, not 60 s.
"""

from __future__ import annotations

import pytest

from reliability.runner import run
from reliability.scenarios import Plan

pytestmark = pytest.mark.long(seconds=95)

SETTINGS = {
    "VIDEOIMPORT_INGESTER_LEASE_SECONDS": "8",
    "VIDEOIMPORT_INGESTER_RETRY_MAX_DELAY": "5",
}


async def test_a_kill_loop_and_an_s3_restart_lose_and_duplicate_nothing() -> None:
    plan = Plan(kills=2, server_restarts=1, interval=3.0)
    outcomes = await run(["kill-ingester", "s3-kill"], plan, settle=300.0, settings=SETTINGS)

    assert [o.name for o in outcomes] == ["kill-ingester", "s3-kill"]
    for outcome in outcomes:
        assert outcome.passed, f"{outcome.line()}: {outcome.problems()}"
        assert outcome.videos >= 50, outcome.line()
    assert [o.injected.faults for o in outcomes] == [2, 1]
