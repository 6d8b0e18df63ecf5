"""``videoimport deadletters`` and ``videoimport republish`` as an operator runs them."""

from __future__ import annotations

import asyncpg
import pytest
from videoimport_eventlog import deadletters, schema, store, tracking

from tests.requests import requested_job

from .test_cli_tokens import videoimport

pytestmark = pytest.mark.integration


async def test_list_and_retry_dead_letters(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await schema.migrate(conn)
        events = requested_job("job000000001", 1)
        async with conn.transaction():
            await store.append(conn, events)
            with_event = await deadletters.park(
                conn,
                consumer="projector",
                source="log:2",
                error=ValueError("bad\nvalue"),
                attempts=5,
                event_id=events[1].event_id,
                position=2,
            )
            undecodable = await deadletters.park(
                conn, consumer="ingester", source="kafka:t/0@7", error="undecodable", attempts=1
            )
        code, out, err = await videoimport("deadletters", "list", dsn=pg_dsn)
        assert code == 0, err
        header, first, second = out.strip().splitlines()
        assert header.split("\t")[:3] == ["id", "consumer", "state"]
        assert first.split("\t")[:6] == [
            str(with_event),
            "projector",
            "parked",
            "2",
            str(events[1].event_id),
            "5",
        ]
        assert first.endswith("ValueError: bad value")  # one line per letter
        assert second.split("\t")[:4] == [str(undecodable), "ingester", "parked", "-"]

        code, out, err = await videoimport("deadletters", "retry", str(with_event), dsn=pg_dsn)
        assert code == 0, err
        assert out.strip() == f"dead letter {with_event} queued for projector to retry"
        code, out, _ = await videoimport("deadletters", "list", "--state", "retry", dsn=pg_dsn)
        assert len(out.strip().splitlines()) == 2

        # Nothing in the log to handle again: refused, with a reason.
        code, out, err = await videoimport("deadletters", "retry", str(undecodable), dsn=pg_dsn)
        assert (code, out) == (1, "")
        assert "no parked dead letter" in err
    finally:
        await conn.close()


async def test_republish_moves_the_relay_back_never_forward(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await schema.migrate(conn)
        async with conn.transaction():
            await tracking.save_position(conn, "relay", 40)
        code, out, err = await videoimport("republish", "--from", "11", dsn=pg_dsn)
        assert code == 0, err
        assert "from position 11 (it was at 40)" in out
        assert await tracking.position_of(conn, "relay") == 10
        code, out, err = await videoimport("republish", "--from", "30", dsn=pg_dsn)
        assert code == 0, err
        assert await tracking.position_of(conn, "relay") == 10
        code, _, err = await videoimport("republish", "--from", "0", dsn=pg_dsn)
        assert code == 1 and "position of 1 or more" in err
    finally:
        await conn.close()
