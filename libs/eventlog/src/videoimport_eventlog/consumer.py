"""Consume a Kafka topic with many messages in flight, in order per key.

Slow handlers (downloads) must not block the poll loop, yet two messages with
the same key (the same video) must be handled in the order they were written.
Each key gets its own queue; different keys run concurrently up to
``max_in_flight``. The committed offset of a partition only ever moves to just
below its oldest unfinished message, so a crash re-delivers every message whose
effect may not have committed (handlers are idempotent through the inbox).

Failures follow the shared ``RetryPolicy``: an outage (database or broker away)
is waited out with capped, jittered backoff and does not count against the
message; any other failure counts, and after ``policy.attempts`` of them the
message is handed to ``on_give_up`` (which isolates it: a dead letter, a
terminal failure event) and the partition moves on. A rebalance or a stop
waits at most ``drain_timeout`` for handlers, then cancels them: their offsets
stay uncommitted, so the next owner handles them again.

Offsets are committed at most once per ``commit_interval`` while consuming (and
always on a rebalance or a stop): a commit per fetch was a broker request per few
events, and a crash only makes the new owner redo that interval's messages, which
the handlers' inbox turns into no-ops.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from videoimport_eventlog.faults import is_outage
from videoimport_eventlog.retry import RetryPolicy

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Handler = Callable[[Record], Awaitable[None]]
GiveUp = Callable[[Record, BaseException, int], Awaitable[None]]
"""Called with the record, the last error and the attempts made; isolates the record."""
log = structlog.get_logger(__name__)

COMMIT_INTERVAL = 0.5
"""Seconds between two offset commits while consuming."""


def source_of(record: Record) -> str:
    """Where a record came from, for logs and dead letters."""
    return f"kafka:{record.topic}/{record.partition}@{record.offset}"


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
        policy: RetryPolicy | None = None,
        on_give_up: GiveUp | None = None,
        drain_timeout: float = 10.0,
        commit_interval: float = COMMIT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._handler = handler
        self._max_in_flight = max_in_flight
        self._policy = policy or RetryPolicy()
        self._on_give_up = on_give_up
        self._drain_timeout = drain_timeout
        self._commit_interval = commit_interval
        self._clock = clock
        self._committed_at = -math.inf
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

    async def _handle_until_done(self, record: Record) -> None:
        """Handle, retry per the policy, and isolate the record once it is used up."""
        policy, counted, waits = self._policy, 0, 0
        while True:
            try:
                await self._handler(record)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                waits += 1
                outage = is_outage(exc)
                if not outage:
                    counted += 1
                if not outage and policy.exhausted(counted):
                    await self._give_up(record, exc, counted)
                    return
                delay = policy.delay(min(waits, 32), random.random())
                log.warning(
                    "handler failed, retrying",
                    source=source_of(record),
                    outage=outage,
                    attempt=counted,
                    retry_in=round(delay, 2),
                    exc_info=exc,
                )
                await asyncio.sleep(delay)

    async def _give_up(self, record: Record, exc: BaseException, attempts: int) -> None:
        if self._on_give_up is None:
            log.error("handler gave up; message skipped", source=source_of(record), exc_info=exc)
            return
        waits = 0
        while True:
            try:
                await self._on_give_up(record, exc, attempts)
                return
            except asyncio.CancelledError:
                raise
            except Exception as failure:
                # Isolating needs the database: wait for it, never drop the record.
                waits += 1
                delay = self._policy.delay(min(waits, 32), random.random())
                log.warning(
                    "could not isolate a failing message; retrying",
                    source=source_of(record),
                    retry_in=round(delay, 2),
                    exc_info=failure,
                )
                await asyncio.sleep(delay)

    async def _commit(self, *, now: bool = False) -> None:
        """Commit what is safe to; unless ``now``, not sooner than ``commit_interval``
        after the last commit (what is held back goes with the next one)."""
        if not now and self._clock() - self._committed_at < self._commit_interval:
            return
        offsets = {
            tp: OffsetAndMetadata(p.committable, "")
            for tp, p in self._progress.items()
            if p.committable is not None
        }
        if not offsets:
            return
        self._committed_at = self._clock()
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took the partitions: the group rejoins on the next poll
            # and the new owner redoes what was not committed (handlers dedupe).
            log.warning("offset commit failed; rejoining the group", error=str(exc))
            self._progress.clear()
            return
        except KafkaError as exc:
            # Transient (a coordinator moving): the offsets stay and go with the next commit.
            log.warning("offset commit failed; retrying with the next commit", error=str(exc))
            return
        # Handlers may have finished more while the commit was in flight: keep that.
        for tp, committed in offsets.items():
            progress = self._progress.get(tp)
            if progress is not None and progress.committable == committed.offset:
                progress.committable = None

    async def _drain(self) -> None:
        """Finish what is in flight (at most ``drain_timeout``), commit it, forget the rest.

        Bounded so a rebalance completes within the group's timeout whatever a
        handler is doing; what is cancelled stays uncommitted and is redone.
        """
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._drain_timeout)
            if pending:
                log.warning("cancelling handlers still running after the drain", count=len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._commit(now=True)
        self._progress.clear()
        self._queues.clear()
        self._in_flight = 0
