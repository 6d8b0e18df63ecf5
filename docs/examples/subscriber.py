"""A subscriber of the video import events: consume, skip, decode, deduplicate, handle.

Needs only the contract package and a Kafka client::

    pip install videoimport-events aiokafka        # in this repository: uv run
    python docs/examples/subscriber.py --bootstrap 127.0.0.1:9092 --group my-cms

It prints one line per finished video and job. See docs/subscribers.md for what
the topics guarantee; the comments say which guarantee each step relies on.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable

import msgspec
from aiokafka import AIOKafkaConsumer
from videoimport_events import (
    EVENT_TYPES,
    TOPICS,
    Envelope,
    JobCompleted,
    VideoImported,
    VideoImportFailed,
    VideoImportSkipped,
    decode_envelope,
)

log = logging.getLogger("subscriber")


class SeenEvents:
    """The ids of the last ``size`` events handled.

    Delivery is at least once, so the same event (same id) can come again: after
    a relay restart, a rebalance, or a republish. A real subscriber records the
    id in the same transaction as its effect (an inbox table); memory is enough
    for printing.
    """

    def __init__(self, size: int = 100_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def first_time(self, event_id: str) -> bool:
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True


def known_type(headers: Iterable[tuple[str, bytes]]) -> bool:
    """Whether this version of ``videoimport_events`` knows the message's type.

    New event types may be added at any time (an additive change): a subscriber
    skips those it does not know, by the ``event-type`` header, without decoding.
    """
    event_type = dict(headers).get("event-type", b"").decode()
    return event_type in EVENT_TYPES


def describe(envelope: Envelope) -> str | None:
    """What this subscriber does with an event: a line for the ones it cares about."""
    match envelope.data:
        case VideoImported(external_id=external_id, media_id=media_id, outcome=outcome):
            return f"{envelope.project}: video {external_id} {outcome} as {media_id}"
        case VideoImportSkipped(external_id=external_id, media_id=media_id):
            return f"{envelope.project}: video {external_id} unchanged ({media_id})"
        case VideoImportFailed(external_id=external_id, code=code, reason=reason):
            return f"{envelope.project}: video {external_id} failed: {code} ({reason})"
        case JobCompleted(job_id=job_id, state=state, overview=overview):
            return f"{envelope.project}: job {job_id} {state}, {overview.total} videos"
        case _:
            return None  # events this subscriber does not use


async def consume(bootstrap: str, group: str, topics: list[str]) -> None:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,  # commit after handling: a crash redelivers, never skips
        auto_offset_reset="earliest",  # a new group starts at the oldest retained event
    )
    seen = SeenEvents()
    await consumer.start()
    try:
        async for record in consumer:
            if record.value is not None and known_type(record.headers):
                try:
                    envelope = decode_envelope(record.value)  # upcasts older schema versions
                except msgspec.ValidationError as exc:  # e.g. an enum value added later
                    log.error("cannot decode %s@%s: %s", record.topic, record.offset, exc)
                    raise  # upgrade videoimport-events, then start again from the same offset
                if seen.first_time(envelope.id):
                    line = describe(envelope)
                    if line is not None:
                        print(line, flush=True)
            await consumer.commit()
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    parser.add_argument("--group", default="example-subscriber", help="consumer group id")
    parser.add_argument("--topic-prefix", default="", help="the deployment's topic prefix")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    topics = [args.topic_prefix + TOPICS[family] for family in ("videos", "jobs")]
    asyncio.run(consume(args.bootstrap, args.group, topics))


if __name__ == "__main__":
    main()
