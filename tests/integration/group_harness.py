"""Consumer groups as the tests see them: who is in one, and a member that was
killed without leaving it (as a SIGKILLed service leaves its group)."""

from __future__ import annotations

import asyncio
import signal
import sys

from aiokafka.admin import AIOKafkaAdminClient
from videoimport_devstack import StackInfo

# A member of the group in a process of its own, with a long session (30 s): killed,
# it stays in the group until the session expires, as a killed service does.
MEMBER = """
import asyncio, sys
from aiokafka import AIOKafkaConsumer

async def main():
    consumer = AIOKafkaConsumer(
        bootstrap_servers=sys.argv[1], group_id=sys.argv[2], client_id="killed-member",
        session_timeout_ms=30000, heartbeat_interval_ms=1000,
    )
    consumer.subscribe([sys.argv[3]])
    await consumer.start()
    print("joined", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def group_members(stack: StackInfo, group: str) -> tuple[str, list[str]]:
    """The group's state and its member ids (an evicted member comes back with a new id)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    [described] = response.to_object()["groups"]
    return described["state"], sorted(m["member_id"] for m in described["members"])


async def kill_a_joined_member(stack: StackInfo, group: str, topic: str) -> str:
    """Join ``group`` from another process, SIGKILL it; returns its member id."""
    member = await asyncio.create_subprocess_exec(
        sys.executable, "-c", MEMBER, stack.kafka_bootstrap, group, topic,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert member.stdout is not None
        assert await asyncio.wait_for(member.stdout.readline(), 60) == b"joined\n"
    finally:
        member.send_signal(signal.SIGKILL)
        await member.wait()
    state, members = await group_members(stack, group)
    assert state == "Stable" and len(members) == 1
    return members[0]
