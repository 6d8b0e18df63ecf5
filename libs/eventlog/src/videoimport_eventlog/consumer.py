"""Consume a Kafka topic with many messages in flight, in order per key.

Slow handlers (downloads) must not block the poll loop, yet two messages with
the same key (the same video) must be handled in the order they were written.
Each key gets its own queue; different keys run concurrently up to
``max_in_flight``. The committed offset of a partition only ever moves to just
below its oldest unfinished message, so a crash re-delivers every message whose
effect may not have committed (handlers are idempotent through the inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

Handler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]]
log = structlog.get_logger(__name__)


class _PartitionProgress:
    """Offsets fetched but not yet safe to commit, in fetch order."""

    def __init__(self) -> None:
        self.outstanding: deque[int] = deque()
        self.done: set[int] = set()
        self.committable: int | None = None

    def fetched(self, offset: int) -> None:
        self.outstanding.append(offset)

    def finished(self, offset: int) -> None:
        self.done.add(offset)
        while self.outstanding and self.outstanding[0] in self.done:
            first = self.outstanding.popleft()
            self.done.discard(first)
            self.committable = first + 1


class KeyedConcurrentConsumer:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        handler: Handler,
        *,
        max_in_flight: int = 8,
        retry_backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self._consumer = consumer
        self._handler = handler
        self._max_in_flight = max_in_flight
        self._backoff = retry_backoff
        self._progress: dict[TopicPartition, _PartitionProgress] = {}
        self._queues: dict[tuple[TopicPartition, bytes | None], deque[Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()

    def listener(self) -> ConsumerRebalanceListener:
        owner = self

        class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await owner._drain()

            async def on_partitions_assigned(self, assigned: Any) -> None:
                return None

        return _Listener()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                assignment = self._consumer.assignment()
                if self._in_flight >= self._max_in_flight:
                    # Full: wake up the moment a handler finishes, not at the next
                    # fetch timeout (that tick once capped throughput at
                    # max_in_flight / 0.2 s). The empty poll keeps the group alive.
                    self._consumer.pause(*assignment)
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 1.0)
                    await self._consumer.getmany(timeout_ms=0)
                    await self._commit()
                    continue
                self._consumer.resume(*assignment)
                batches = await self._consumer.getmany(
                    timeout_ms=200, max_records=self._max_in_flight - self._in_flight
                )
                for tp, records in batches.items():
                    for record in records:
                        self._dispatch(tp, record)
                await self._commit()
        finally:
            await self._drain()

    def _dispatch(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        self._progress.setdefault(tp, _PartitionProgress()).fetched(record.offset)
        self._in_flight += 1
        key = (tp, record.key)
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(record)
            return
        self._queues[key] = deque([record])
        task = asyncio.create_task(self._work_through(tp, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _work_through(
        self, tp: TopicPartition, key: tuple[TopicPartition, bytes | None]
    ) -> None:
        queue = self._queues[key]
        while queue:
            record = queue[0]
            await self._handle_until_done(record)
            queue.popleft()
            self._in_flight -= 1
            self._changed.set()
            progress = self._progress.get(tp)
            if progress is not None:
                progress.finished(record.offset)
        del self._queues[key]

    async def _handle_until_done(self, record: ConsumerRecord[bytes, bytes]) -> None:
        delay, cap = self._backoff
        while True:
            try:
                await self._handler(record)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                # The handler turns every permanent problem into a result event;
                # what reaches here is transient (a database or S3 outage).
                log.exception(
                    "handler failed, retrying",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    retry_in=delay,
                )
                await asyncio.sleep(delay)
                delay = min(cap, delay * 2)

    async def _commit(self) -> None:
        offsets = {
            tp: OffsetAndMetadata(p.committable, "")
            for tp, p in self._progress.items()
            if p.committable is not None
        }
        if not offsets:
            return
        await self._consumer.commit(offsets)
        # Handlers may have finished more while the commit was in flight: keep that.
        for tp, committed in offsets.items():
            progress = self._progress.get(tp)
            if progress is not None and progress.committable == committed.offset:
                progress.committable = None

    async def _drain(self) -> None:
        """Finish what is in flight, commit it, forget partition state."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._commit()
        self._progress.clear()
