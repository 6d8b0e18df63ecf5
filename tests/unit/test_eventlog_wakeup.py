"""Waking a log reader: at once after a quiet spell, a little later in a burst."""

from __future__ import annotations

import asyncio
import time

from videoimport_eventlog.subscription import LogWakeup

LONG = 30.0
"""A bound no passing test comes near (a loaded machine stays far below it)."""


async def timed(wait: asyncio.Future[None] | asyncio.Task[None]) -> float:
    began = time.monotonic()
    await wait
    return time.monotonic() - began


async def test_without_an_append_it_returns_after_the_poll_interval_not_a_burst() -> None:
    wakeup = LogWakeup(poll_interval=0.05, burst_wait=LONG)
    assert await timed(asyncio.ensure_future(wakeup.wait())) < LONG / 2


async def test_a_lone_append_after_a_quiet_spell_is_read_at_once() -> None:
    wakeup = LogWakeup(poll_interval=LONG, burst_wait=LONG)
    wakeup.appended(1)
    assert await timed(asyncio.ensure_future(wakeup.wait(after=0, enough=3))) < LONG / 2


async def test_in_a_burst_it_waits_for_more_up_to_burst_wait() -> None:
    wakeup = LogWakeup(poll_interval=LONG, burst_wait=0.2)
    wakeup.appended(1)
    wakeup.appended(2)  # right after the first: a burst
    assert await timed(asyncio.ensure_future(wakeup.wait(after=0, enough=3))) >= 0.2


async def test_it_returns_once_enough_events_are_there() -> None:
    wakeup = LogWakeup(poll_interval=LONG, burst_wait=LONG)
    wakeup.appended(3)
    wakeup.appended(4)
    waiting = asyncio.ensure_future(wakeup.wait(after=2, enough=3))
    await asyncio.sleep(0)
    assert not waiting.done()
    wakeup.appended(5)
    assert await timed(waiting) < LONG / 2
    assert wakeup.head == 5


async def test_enough_already_announced_skips_the_burst_wait() -> None:
    wakeup = LogWakeup(poll_interval=LONG, burst_wait=LONG)
    wakeup.appended(499)
    wakeup.appended(500)
    assert await timed(asyncio.ensure_future(wakeup.wait(after=0, enough=500))) < LONG / 2


async def test_a_wait_consumes_the_wakeup_and_the_next_waits_for_a_new_append() -> None:
    wakeup = LogWakeup(poll_interval=0.2, burst_wait=0.0)
    wakeup.appended(1)
    assert await timed(asyncio.ensure_future(wakeup.wait())) < 0.2
    assert await timed(asyncio.ensure_future(wakeup.wait())) >= 0.2


async def test_an_unknown_payload_still_wakes_and_the_head_never_goes_back() -> None:
    wakeup = LogWakeup(poll_interval=LONG, burst_wait=0.0)
    wakeup.appended(7)
    wakeup._notified(None, 1, "videoimport_events", "not a position")
    await asyncio.wait_for(wakeup.wait(), LONG / 2)
    assert wakeup.head == 7
