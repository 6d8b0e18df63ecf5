"""Many messages in flight, in order per key, offsets committed only below the oldest open one."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from videoimport_devstack import StackInfo
from videoimport_eventlog.consumer import KeyedConcurrentConsumer
from videoimport_eventlog.kafka import ensure_topics, make_producer
from videoimport_eventlog.retry import RetryPolicy

from tests.polling import eventually


async def test_keys_run_concurrently_in_order_and_commits_wait_for_the_oldest(
    stack: StackInfo, topic_prefix: str
) -> None:
    topic = topic_prefix + "keyed"
    await ensure_topics(stack.kafka_bootstrap, partitions=1, topics=[topic])
    producer = make_producer(stack.kafka_bootstrap, "test")
    await producer.start()
    try:
        for i in range(3):
            for key in (b"slow", b"fast"):
                await producer.send_and_wait(topic, key=key, value=f"{key.decode()}-{i}".encode())
    finally:
        await producer.stop()
    # Offsets: slow-0=0 fast-0=1 slow-1=2 fast-1=3 slow-2=4 fast-2=5

    release_slow = asyncio.Event()
    seen: dict[bytes, list[str]] = defaultdict(list)
    failures_left = {"fast-1": 1}

    async def handler(record: ConsumerRecord[bytes, bytes]) -> None:
        value = record.value.decode()
        if value == "slow-0":
            await release_slow.wait()
        if failures_left.get(value):
            failures_left[value] -= 1
            raise ConnectionError("transient")
        seen[record.key].append(value)

    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.kafka_bootstrap,
        group_id=topic_prefix + "g",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    keyed = KeyedConcurrentConsumer(
        consumer, handler, max_in_flight=8, policy=RetryPolicy(base=0.05, max_delay=0.1)
    )
    consumer.subscribe([topic], listener=keyed.listener())
    await consumer.start()
    tp = TopicPartition(topic, 0)
    runner = asyncio.create_task(keyed.run())
    try:

        async def fast_done() -> bool:
            return seen[b"fast"] == ["fast-0", "fast-1", "fast-2"]

        await eventually(fast_done)
        assert seen[b"slow"] == []
        # Nothing may be committed past slow-0 (offset 0) while it is open.
        assert (await consumer.committed(tp)) in (None, 0)
        release_slow.set()

        async def all_committed() -> bool:
            return await consumer.committed(tp) == 6

        await eventually(all_committed)
        assert seen[b"slow"] == ["slow-0", "slow-1", "slow-2"]
    finally:
        keyed.stop()
        await runner
        await consumer.stop()


async def test_in_flight_is_bounded(stack: StackInfo, topic_prefix: str) -> None:
    topic = topic_prefix + "bounded"
    await ensure_topics(stack.kafka_bootstrap, partitions=2, topics=[topic])
    producer = make_producer(stack.kafka_bootstrap, "test")
    await producer.start()
    try:
        for i in range(20):
            await producer.send_and_wait(topic, key=f"k{i}".encode(), value=b"v")
    finally:
        await producer.stop()

    running = 0
    peak = 0
    done = 0
    gate = asyncio.Event()

    async def handler(record: ConsumerRecord[bytes, bytes]) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        done += 1

    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.kafka_bootstrap,
        group_id=topic_prefix + "g",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    keyed = KeyedConcurrentConsumer(consumer, handler, max_in_flight=4)
    consumer.subscribe([topic], listener=keyed.listener())
    await consumer.start()
    runner = asyncio.create_task(keyed.run())
    try:

        async def four_running() -> bool:
            return running == 4

        await eventually(four_running)
        gate.set()

        async def all_done() -> bool:
            return done == 20

        await eventually(all_done)
        assert peak == 4
    finally:
        keyed.stop()
        await runner
        await consumer.stop()


async def test_a_message_that_keeps_failing_is_given_up_and_the_partition_moves_on(
    stack: StackInfo, topic_prefix: str
) -> None:
    topic = topic_prefix + "poison"
    await ensure_topics(stack.kafka_bootstrap, partitions=1, topics=[topic])
    producer = make_producer(stack.kafka_bootstrap, "test")
    await producer.start()
    try:
        for value in (b"good-0", b"poison", b"good-1"):
            # One key: without isolation the poison would hold good-1 back forever.
            await producer.send_and_wait(topic, key=b"same", value=value)
    finally:
        await producer.stop()

    handled: list[bytes] = []
    attempts = 0
    given_up: list[tuple[bytes, str, int]] = []

    async def handler(record: ConsumerRecord[bytes, bytes]) -> None:
        nonlocal attempts
        if record.value == b"poison":
            attempts += 1
            raise ValueError("cannot handle this")
        handled.append(record.value)

    async def give_up(record: ConsumerRecord[bytes, bytes], exc: BaseException, n: int) -> None:
        given_up.append((record.value, str(exc), n))

    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.kafka_bootstrap,
        group_id=topic_prefix + "g",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    policy = RetryPolicy(attempts=3, base=0.01, max_delay=0.05)
    keyed = KeyedConcurrentConsumer(consumer, handler, policy=policy, on_give_up=give_up)
    consumer.subscribe([topic], listener=keyed.listener())
    await consumer.start()
    tp = TopicPartition(topic, 0)
    runner = asyncio.create_task(keyed.run())
    try:

        async def all_committed() -> bool:
            return await consumer.committed(tp) == 3

        await eventually(all_committed, "the offset to pass the poison message")
        assert handled == [b"good-0", b"good-1"]
        assert attempts == 3
        assert given_up == [(b"poison", "cannot handle this", 3)]
    finally:
        keyed.stop()
        await runner
        await consumer.stop()


async def test_an_outage_is_waited_out_without_giving_up(
    stack: StackInfo, topic_prefix: str
) -> None:
    topic = topic_prefix + "outage"
    await ensure_topics(stack.kafka_bootstrap, partitions=1, topics=[topic])
    producer = make_producer(stack.kafka_bootstrap, "test")
    await producer.start()
    try:
        await producer.send_and_wait(topic, key=b"k", value=b"v")
    finally:
        await producer.stop()
    outage_left = 6
    given_up: list[bytes] = []
    handled: list[bytes] = []

    async def handler(record: ConsumerRecord[bytes, bytes]) -> None:
        nonlocal outage_left
        if outage_left:
            outage_left -= 1
            raise ConnectionRefusedError("database away")
        handled.append(record.value)

    async def give_up(record: ConsumerRecord[bytes, bytes], exc: BaseException, n: int) -> None:
        given_up.append(record.value)

    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.kafka_bootstrap,
        group_id=topic_prefix + "g",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    policy = RetryPolicy(attempts=2, base=0.01, max_delay=0.05)
    keyed = KeyedConcurrentConsumer(consumer, handler, policy=policy, on_give_up=give_up)
    consumer.subscribe([topic], listener=keyed.listener())
    await consumer.start()
    runner = asyncio.create_task(keyed.run())
    try:

        async def handled_once() -> bool:
            return handled == [b"v"]

        await eventually(handled_once, "the message to go through after the outage")
        assert given_up == []  # six outage failures, a budget of two: none counted
    finally:
        keyed.stop()
        await runner
        await consumer.stop()


async def test_offsets_are_committed_once_per_interval_and_at_once_on_stop(
    stack: StackInfo, topic_prefix: str
) -> None:
    topic = topic_prefix + "paced"
    await ensure_topics(stack.kafka_bootstrap, partitions=1, topics=[topic])
    producer = make_producer(stack.kafka_bootstrap, "test")
    await producer.start()
    handled: list[int] = []
    clock = [0.0]

    async def handler(record: ConsumerRecord[bytes, bytes]) -> None:
        handled.append(record.offset)

    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.kafka_bootstrap,
        group_id=topic_prefix + "paced-g",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    keyed = KeyedConcurrentConsumer(consumer, handler, commit_interval=10.0, clock=lambda: clock[0])
    consumer.subscribe([topic], listener=keyed.listener())
    await consumer.start()
    tp = TopicPartition(topic, 0)
    runner = asyncio.create_task(keyed.run())
    try:
        await producer.send_and_wait(topic, key=b"k", value=b"first")

        async def handled_through(count: int) -> bool:
            return len(handled) == count

        await eventually(lambda: handled_through(1))

        async def committed(offset: int) -> bool:
            return await consumer.committed(tp) == offset

        await eventually(lambda: committed(1))  # the first commit is not held back
        for value in (b"second", b"third"):
            await producer.send_and_wait(topic, key=b"k", value=value)
        await eventually(lambda: handled_through(3))
        # Within the interval nothing more is committed, however many loops run.
        # (There is no event for a commit that must not happen: several polls pass.)
        await asyncio.sleep(1.0)
        assert await consumer.committed(tp) == 1
        clock[0] += 10.0
        await eventually(lambda: committed(3))
        await producer.send_and_wait(topic, key=b"k", value=b"fourth")
        await eventually(lambda: handled_through(4))
    finally:
        await producer.stop()
        keyed.stop()
        await runner
    # A stop commits what is done, interval or not.
    assert await consumer.committed(tp) == 4
    await consumer.stop()
