"""Small asyncio helpers every service loop uses: pause until stopped, wait for
the first of several things, start something unless stopped first."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# A timeout parameter, not asyncio.timeout: reaching it is a normal return, not an error.
async def first_of(*waits: Awaitable[object], timeout: float | None = None) -> None:  # noqa: ASYNC109
    """Return when the first of ``waits`` finishes (or after ``timeout``); cancel the rest.

    An exception of a finished one is raised.
    """
    tasks = [asyncio.ensure_future(w) for w in waits]
    done, pending = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> tuple[bool, T | None]:
    """``(True, result)``, or ``(False, None)`` when ``stop`` came first (work cancelled).

    For what can take long before a loop starts: a consumer's group join waits out
    the session of a member that died without leaving, and SIGTERM must not.
    """
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False, None
    return True, task.result()
