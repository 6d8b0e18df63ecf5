"""The faults: each scenario runs a steady workload, breaks something, lets it heal.

A scenario returns what it injected; the runner then waits until the system has
settled and checks the invariants (``invariants.check``).
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from videoimport_events import TOPICS

from . import invariants
from .stage import WATCHERS, WEBHOOK_TIME_SCALE, Stage
from .workload import Workload

THREE_DAYS = 3 * 24 * 3600.0


@dataclass
class Injected:
    faults: int
    new_effects: dict[str, int] = field(default_factory=dict)
    """Effects that must not exist, found by comparing before and after (a replay)."""
    note: str = ""
    unreported_outage: list[str] = field(default_factory=list)
    """Services whose readiness did not report a server's outage."""


@dataclass
class Plan:
    kills: int = 20
    """Kills per service in a kill loop."""
    server_restarts: int = 3
    interval: float = 1.5
    """Seconds between batches of the steady workload."""
    rng: random.Random = field(default_factory=lambda: random.Random(11))


Scenario = Callable[[Stage, Workload, Plan], Awaitable[Injected]]


def under_load(fault: Scenario) -> Scenario:
    """``fault`` while batches are posted every ``plan.interval`` (from a little before)."""

    async def run(stage: Stage, workload: Workload, plan: Plan) -> Injected:
        stop = asyncio.Event()
        load = asyncio.create_task(workload.run(stop, plan.interval))
        try:
            await asyncio.sleep(3 * plan.interval)  # work in flight before the first fault
            injected = await fault(stage, workload, plan)
        finally:
            stop.set()
        await load
        return injected

    return run


Busy = Callable[[Stage], bool]


def _downloading(stage: Stage) -> bool:
    return stage.client.downloads_in_flight > 0


BUSY: dict[str, Busy] = {"ingester": _downloading}
"""When a restarted service is back at work, for those whose restart takes a while
(the ingester rejoins its consumer group and waits for leases before it downloads)."""


async def _until(busy: Busy, stage: Stage, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if busy(stage):
            return
        await asyncio.sleep(0.05)


def kill_loop(service: str) -> Scenario:
    """SIGKILL ``service`` ``plan.kills`` times at random moments, restart it each time."""

    async def run(stage: Stage, workload: Workload, plan: Plan) -> Injected:
        landed: Counter[str] = Counter()
        busy = BUSY.get(service)
        for _ in range(plan.kills):
            # Once ready (and back at work), let it work a random while: the kill
            # lands anywhere.
            await stage.wait_ready(service)
            if busy is not None:
                await _until(busy, stage)
            await asyncio.sleep(plan.rng.uniform(0.5, 3.0))
            landed.update(await stage.in_flight(workload.posts_in_flight))
            stage.kill_service(service)
            await asyncio.sleep(plan.rng.uniform(0.0, 1.0))
            stage.start_service(service)
        await stage.wait_ready(service)
        return Injected(plan.kills, note=f"under way at the kills: {_tally(landed, plan.kills)}")

    return run


def _tally(landed: Counter[str], out_of: int) -> str:
    return ", ".join(f"{phase} {n}/{out_of}" for phase, n in landed.most_common()) or "nothing"


def server_restart(server: str, sig: int = signal.SIGKILL) -> Scenario:
    """Stop ``server`` with ``sig`` mid-load, leave it down a few seconds, restart it."""

    async def run(stage: Stage, workload: Workload, plan: Plan) -> Injected:
        silent: set[str] = set()
        landed: Counter[str] = Counter()
        for _ in range(plan.server_restarts):
            await asyncio.sleep(plan.rng.uniform(2.0, 5.0))
            landed.update(await stage.in_flight(workload.posts_in_flight))
            stage.kill_server(server, sig)
            began = time.monotonic()
            # Readiness must say so while the server is away.
            silent.update(await stage.unreported_outage(server))
            await asyncio.sleep(max(0.0, plan.rng.uniform(2.0, 5.0) - (time.monotonic() - began)))
            await stage.restart_server(server)
            for name in WATCHERS[server]:
                await stage.wait_ready(name)
        return Injected(
            plan.server_restarts,
            note=f"under way when it went: {_tally(landed, plan.server_restarts)}",
            unreported_outage=sorted(silent),
        )

    return run


async def receiver_down_three_days(stage: Stage, workload: Workload, plan: Plan) -> Injected:
    """The webhook receiver answers 503 for three days (on the compressed schedule)
    while jobs finish, then comes back."""
    stage.client.down = True
    refused_before = stage.client.refused
    down_for = THREE_DAYS * WEBHOOK_TIME_SCALE
    began = time.monotonic()
    stop = asyncio.Event()
    load = asyncio.create_task(workload.run(stop, plan.interval))
    await asyncio.sleep(min(10.0, down_for / 2))
    stop.set()
    await load
    await asyncio.sleep(max(0.0, down_for - (time.monotonic() - began)))
    stage.client.down = False
    refused = stage.client.refused - refused_before
    return Injected(refused, note=f"{refused} webhook attempts refused over {down_for:.0f} s")


async def _effects(stage: Stage) -> dict[str, int]:
    conn = await asyncpg.connect(stage.dsn)
    try:
        events = int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()
    return {
        "events": events,
        "objects": await invariants.object_count(stage),
        "webhook POSTs": sum(len(d) for d in stage.client.deliveries.values()),
        "origin GETs": stage.client.origin_requests,
    }


async def replay_from_earliest(stage: Stage, workload: Workload, plan: Plan) -> Injected:
    """Reset the ingester's and the notifier's consumer groups to the earliest offset:
    every message they ever got is delivered again; nothing may happen twice."""
    await under_load(_pause)(stage, workload, plan)
    if not await invariants.wait_settled(stage, workload, within=300):
        raise RuntimeError("the workload did not settle before the replay")
    before = await _effects(stage)
    replayed = await _reset_and_consume(stage)
    # Consumed means queued (or found handled): give handling time to do anything twice.
    await asyncio.sleep(5)
    await invariants.wait_settled(stage, workload, within=120)
    after = await _effects(stage)
    changed = {k: after[k] - before[k] for k in before if after[k] != before[k]}
    return Injected(replayed, changed, note=f"{replayed} messages delivered again")


async def _pause(stage: Stage, workload: Workload, plan: Plan) -> Injected:
    await asyncio.sleep(5)
    return Injected(0)


async def _group_lag(
    admin: AIOKafkaAdminClient, group: str, ends: dict[TopicPartition, int]
) -> int:
    committed = await admin.list_consumer_group_offsets(group)
    return sum(end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items())


async def _wait_empty(admin: AIOKafkaAdminClient, group: str, within: float = 120.0) -> None:
    """Until the broker has dropped the killed members (their session timed out)."""
    deadline = time.monotonic() + within
    while True:
        responses = await admin.describe_consumer_groups([group])
        states = [g["state"] for r in responses for g in r.to_object()["groups"]]
        if all(state in ("Empty", "Dead") for state in states):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"group {group} still has members after {within:.0f} s: {states}")
        await asyncio.sleep(1.0)


async def _reset_and_consume(stage: Stage) -> int:
    groups = {"ingester": TOPICS["videos"], "notifier": TOPICS["jobs"]}
    for service in groups:
        stage.kill_service(service)
    bootstrap = stage.info.kafka_bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        ends: dict[str, dict[TopicPartition, int]] = {}
        for group, topic in groups.items():
            described = await admin.describe_topics([topic])
            numbers = sorted(p["partition"] for t in described for p in t["partitions"])
            if not numbers:
                raise RuntimeError(f"topic {topic} has no partitions to reset")
            partitions = [TopicPartition(topic, p) for p in numbers]
            await _wait_empty(admin, group)
            consumer = AIOKafkaConsumer(
                bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
            )
            await consumer.start()
            try:
                consumer.assign(partitions)
                ends[group] = await consumer.end_offsets(partitions)
                # The group has no member now, so a consumer outside it may commit for it.
                await consumer.commit({tp: OffsetAndMetadata(0, "") for tp in partitions})
            finally:
                await consumer.stop()
        for service in groups:
            stage.start_service(service)
        deadline = time.monotonic() + 300
        while any([await _group_lag(admin, g, e) for g, e in ends.items()]):
            if time.monotonic() > deadline:
                raise RuntimeError("the replayed messages were not consumed within 300 s")
            await asyncio.sleep(1.0)
    finally:
        await admin.close()
    return sum(sum(e.values()) for e in ends.values())


SCENARIOS: dict[str, tuple[str, Scenario]] = {
    **{
        f"kill-{service}": (
            f"kill -9 of the {service} in a loop under load, restarted each time",
            under_load(kill_loop(service)),
        )
        for service in ("ingester", "relay", "projector", "notifier", "api")
    },
    "kafka-kill": (
        "the Kafka broker killed (-9) under load and restarted",
        under_load(server_restart("kafka")),
    ),
    "postgres-fast": (
        "PostgreSQL stopped fast (SIGINT) under load and restarted",
        under_load(server_restart("postgres", signal.SIGINT)),
    ),
    "postgres-immediate": (
        "PostgreSQL stopped immediately (SIGQUIT: crash recovery) under load and restarted",
        under_load(server_restart("postgres", signal.SIGQUIT)),
    ),
    "s3-kill": (
        "the S3 server killed (-9) mid-upload and restarted",
        under_load(server_restart("s3")),
    ),
    "replay": (
        "the ingester's and notifier's consumer groups reset to the earliest offset",
        replay_from_earliest,
    ),
    "receiver-down": (
        "the webhook receiver down (503) for three compressed days, then up",
        receiver_down_three_days,
    ),
}
"""name -> (what it does, how), in the order ``make reliability`` runs them."""
