"""The ingester's process-wide budget for upload part buffers (pure asyncio)."""

from __future__ import annotations

import asyncio

import pytest
from videoimport_ingester.adapters.buffer_budget import BufferBudget


async def test_a_reservation_waits_until_enough_is_released() -> None:
    budget = BufferBudget(10)
    assert await budget.reserve(6) == 6
    waiting = asyncio.create_task(budget.reserve(6))
    await asyncio.sleep(0)
    assert not waiting.done() and budget.used == 6
    await budget.release(6)
    assert await asyncio.wait_for(waiting, 1) == 6
    assert budget.used == 6


async def test_more_than_the_whole_budget_waits_for_all_of_it() -> None:
    budget = BufferBudget(10)
    await budget.reserve(3)
    larger = asyncio.create_task(budget.reserve(50))
    await asyncio.sleep(0)
    assert not larger.done()
    await budget.release(3)
    assert await asyncio.wait_for(larger, 1) == 10  # capped: it can never fit otherwise
    assert budget.used == 10


async def test_the_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BufferBudget(0)
