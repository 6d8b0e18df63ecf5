"""The bytes of upload part buffers the whole ingester may hold at once.

Each running video holds up to ``parts_in_flight + 1`` parts (one filling, the rest
uploading); with several large videos at once that is what the process's memory is
made of. A part reserves its bytes before it starts filling and gives them back when
its upload is over, so the sum over every video stays under the budget: a video
whose next part does not fit waits (and so stops reading its source, which counts
as waiting for S3, not for the source). A part never waits half filled, so videos
cannot hold each other's budget hostage.
"""

from __future__ import annotations

import asyncio


class BufferBudget:
    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("the buffer budget must be positive")
        self.limit = limit
        self.used = 0
        self._freed = asyncio.Condition()

    async def reserve(self, size: int) -> int:
        """Wait until ``size`` bytes fit (a part larger than the whole budget waits for
        all of it); returns what was reserved, to ``release`` later."""
        size = min(size, self.limit)
        async with self._freed:
            await self._freed.wait_for(lambda: self.used + size <= self.limit)
            self.used += size
        return size

    async def release(self, size: int) -> None:
        async with self._freed:
            self.used -= size
            self._freed.notify_all()
