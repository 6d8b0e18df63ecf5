"""The notifier when receivers, URLs or the database misbehave: every attempt ends
recorded (or counted), nothing raises, nothing is sent again every second."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiohttp import web
from videoimport_devstack import StackInfo
from videoimport_events import WebhookDelivered, WebhookDeliveryFailed
from videoimport_notifier import domain

from tests.integration.notifier_harness import (
    attempts,
    delivery_row,
    jobs_topic,
    log_job_completed,
    notifier_db,
    notifying,
    publish,
    serving,
    settings_for,
)
from tests.polling import eventually

pytestmark = pytest.mark.integration


@dataclass
class Scripted:
    """An HTTP receiver answering each POST with the next scripted response."""

    responses: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    seen_at: list[float] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.seen_at.append(asyncio.get_running_loop().time())
        status, headers = self.responses.pop(0) if self.responses else (200, {})
        return web.Response(status=status, headers=headers)


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    rec = Scripted()
    async with serving({"/{tail:.*}": rec.handle}) as base:
        rec.url = f"{base}/hook"
        yield rec


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    async with notifier_db(pg_dsn) as connection:
        yield connection


def in_state(conn: asyncpg.Connection, job_id: str, state: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        row = await delivery_row(conn, job_id)
        return row is not None and row["state"] == state

    return check


async def test_a_503_with_an_unreadable_retry_after_is_a_failed_attempt_with_normal_backoff(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, scripted: Scripted
) -> None:
    # "²" passes str.isdigit() but not int(): the old parser raised ValueError and
    # the attempt was never recorded, only sent again on every scheduler pass.
    scripted.responses = [(503, {"Retry-After": "²"}), (200, {})]
    settings = settings_for(stack, pg_dsn, topic_prefix, webhook_retry_base=0.5)
    completed = await log_job_completed(conn, "jobretryafter", scripted.url)
    async with notifying(settings):
        await publish(stack, jobs_topic(settings), completed)
        await eventually(in_state(conn, "jobretryafter", "delivered"), "the retry to deliver")

    delivery_id = domain.delivery_id_for(str(completed.event_id))
    failed, delivered = await attempts(conn, delivery_id)
    assert isinstance(failed.event, WebhookDeliveryFailed)
    assert (failed.event.attempt, failed.event.status_code, failed.event.error) == (
        1,
        503,
        "HTTP 503",
    )
    # The normal first backoff (0.5 s here, no jitter), not "now" and not a crash.
    assert failed.event.next_attempt_at is not None
    wait = (failed.event.next_attempt_at - failed.occurred_at).total_seconds()
    assert wait == pytest.approx(0.5, abs=0.01)
    assert isinstance(delivered.event, WebhookDelivered) and delivered.event.attempt == 2
    assert len(scripted.seen_at) == 2
    assert scripted.seen_at[1] - scripted.seen_at[0] >= 0.45


async def closes_mid_response(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the request, starts a response and hangs up in the middle of a header."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")
    await writer.drain()
    writer.close()


@pytest.mark.parametrize("case", ["host label over 63 characters", "closed mid-response"])
async def test_an_exception_inside_the_sender_ends_as_a_recorded_failed_attempt(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, case: str
) -> None:
    settings = settings_for(stack, pg_dsn, topic_prefix)
    server = await asyncio.start_server(closes_mid_response, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    if case == "closed mid-response":
        url, expected = f"http://127.0.0.1:{port}/hook", ["ServerDisconnected"] * 3
    else:
        # aiohttp raises UnicodeError (not a ClientError) encoding such a host
        # name, before any DNS lookup or connection.
        url, expected = f"http://{'a' * 64}.localhost:{port}/hook", ["invalid webhook url"]
    try:
        completed = await log_job_completed(conn, "jobsenderexc", url)
        async with notifying(settings):
            await publish(stack, jobs_topic(settings), completed)
            await eventually(in_state(conn, "jobsenderexc", "failed"), "the delivery to fail")
    finally:
        server.close()
        await server.wait_closed()

    delivery_id = domain.delivery_id_for(str(completed.event_id))
    events = [e.event for e in await attempts(conn, delivery_id)]
    assert len(events) == len(expected)  # transient: every attempt; an invalid URL: one
    for number, (event, fragment) in enumerate(zip(events, expected, strict=True), start=1):
        assert isinstance(event, WebhookDeliveryFailed)
        assert (event.attempt, event.status_code) == (number, None)
        assert fragment in event.error and event.error.isprintable()
        assert len(event.error) <= domain.MAX_ERROR_CHARS
    assert isinstance(events[-1], WebhookDeliveryFailed) and events[-1].next_attempt_at is None
    row = await delivery_row(conn, "jobsenderexc")
    assert row is not None and row["attempts"] == len(expected)


FAULTS = {
    # Refused by the INSERT itself: the savepoint rolls back, the row stays locked.
    "check constraint": (
        "ALTER TABLE events ADD CONSTRAINT refuse_attempts CHECK (stream_id <> 'webhook-{id}')",
        "ALTER TABLE events DROP CONSTRAINT refuse_attempts",
        "CheckViolationError",
    ),
    # Refused only at COMMIT: the whole transaction is lost and is counted in a new one.
    "deferred trigger": (
        "CREATE FUNCTION refuse_attempts() RETURNS trigger AS $$ BEGIN"
        " IF NEW.stream_id = 'webhook-{id}' THEN RAISE EXCEPTION 'refused at commit'; END IF;"
        " RETURN NULL; END $$ LANGUAGE plpgsql;"
        " CREATE CONSTRAINT TRIGGER refuse_attempts AFTER INSERT ON events"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_attempts()",
        "DROP TRIGGER refuse_attempts ON events; DROP FUNCTION refuse_attempts()",
        "RaiseError: refused at commit",
    ),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_an_attempt_that_cannot_be_recorded_backs_off_fails_and_is_parked_then_retried(
    stack: StackInfo,
    pg_dsn: str,
    topic_prefix: str,
    conn: asyncpg.Connection,
    scripted: Scripted,
    fault: str,
) -> None:
    settings = settings_for(stack, pg_dsn, topic_prefix, webhook_retry_base=0.2)
    completed = await log_job_completed(conn, "jobunrecorded", scripted.url)
    delivery_id = domain.delivery_id_for(str(completed.event_id))
    # A real fault of this one delivery (not an outage): the log refuses its events.
    install, remove, expected_error = FAULTS[fault]
    await conn.execute(install.replace("{id}", delivery_id))
    async with notifying(settings):
        await publish(stack, jobs_topic(settings), completed)
        await eventually(in_state(conn, "jobunrecorded", "failed"), "the delivery to give up")
        # Counted and backed off (0.2 s, then 0.6 s), not sent on every pass.
        assert len(scripted.seen_at) == 3
        gaps = [b - a for a, b in zip(scripted.seen_at, scripted.seen_at[1:], strict=False)]
        assert gaps[0] >= 0.15 and gaps[1] >= 0.5
        row = await delivery_row(conn, "jobunrecorded")
        assert row is not None
        assert (row["attempts"], row["last_status"], row["next_attempt_at"]) == (3, 200, None)
        assert f"could not be recorded: {expected_error}" in row["last_error"]
        assert await attempts(conn, delivery_id) == []
        letter = await conn.fetchrow("SELECT * FROM dead_letters")
        assert (letter["consumer"], str(letter["event_id"]), letter["state"]) == (
            "notifier",
            str(completed.event_id),
            "parked",
        )
        assert (letter["source"], letter["attempts"]) == (f"webhook:{delivery_id}", 3)
        await asyncio.sleep(0.5)  # a few scheduler passes (0.05 s): still three requests
        assert len(scripted.seen_at) == 3

        # The operator removes the cause and asks for a retry: one more attempt.
        await conn.execute(remove)
        await conn.execute("UPDATE dead_letters SET state = 'retry' WHERE id = $1", letter["id"])

        async def resolved() -> bool:
            state = await conn.fetchval(
                "SELECT state FROM dead_letters WHERE id = $1", letter["id"]
            )
            return bool(state == "resolved")

        await eventually(resolved, "the dead letter to be resolved")
        await eventually(in_state(conn, "jobunrecorded", "delivered"), "the re-armed delivery")

    [event] = await attempts(conn, delivery_id)
    assert isinstance(event.event, WebhookDelivered)
    assert (event.event.attempt, event.stream_version) == (4, 3)
    assert len(scripted.seen_at) == 4
    row = await delivery_row(conn, "jobunrecorded")
    assert row is not None and (row["attempts"], row["last_status"]) == (4, 200)
    assert json.loads(row["payload"])["id"] == "jobunrecorded"


async def test_a_delivery_whose_commit_failed_is_not_sent_again_before_it_is_counted(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, scripted: Scripted
) -> None:
    """Between a commit that fails and the new transaction counting the attempt,
    the row is not locked: the other scheduler must still leave it alone."""
    settings = settings_for(stack, pg_dsn, topic_prefix, webhook_retry_base=1.0)
    completed = await log_job_completed(conn, "jobheld", scripted.url)
    delivery_id = domain.delivery_id_for(str(completed.event_id))
    # The commit of the attempt waits for the test (advisory lock 7301), then fails.
    await conn.execute(
        "CREATE FUNCTION refuse_attempts() RETURNS trigger AS $$ BEGIN"
        f" IF NEW.stream_id = 'webhook-{delivery_id}' THEN"
        " PERFORM pg_advisory_xact_lock(7301); RAISE EXCEPTION 'refused at commit'; END IF;"
        " RETURN NULL; END $$ LANGUAGE plpgsql;"
        " CREATE CONSTRAINT TRIGGER refuse_attempts AFTER INSERT ON events"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_attempts()"
    )
    gate, table_lock = await asyncpg.connect(pg_dsn), await asyncpg.connect(pg_dsn)
    try:
        await gate.execute("SELECT pg_advisory_lock(7301)")
        async with notifying(settings):
            await publish(stack, jobs_topic(settings), completed)
            committing = await waiting_backend(conn, "locktype = 'advisory'")
            # Queued behind the committing transaction: granted the moment it rolls
            # back, it then stops the attempt from being counted.
            locked = table_lock.transaction()
            await locked.start()
            locking = asyncio.create_task(
                table_lock.execute("LOCK TABLE webhook_deliveries IN SHARE MODE")
            )
            await waiting_backend(conn, "relation = 'webhook_deliveries'::regclass")
            await gate.execute("SELECT pg_advisory_unlock(7301)")
            await locking
            await waiting_backend(
                conn, f"pid = {committing} AND relation = 'webhook_deliveries'::regclass"
            )
            # The row is unlocked and still due; the other scheduler looks every 0.05 s.
            await asyncio.sleep(0.5)
            assert len(scripted.seen_at) == 1
            await conn.execute("DROP TRIGGER refuse_attempts ON events")
            await locked.commit()
            await eventually(in_state(conn, "jobheld", "delivered"), "the retry to deliver")
    finally:
        await gate.close()
        await table_lock.close()

    assert len(scripted.seen_at) == 2
    [event] = await attempts(conn, delivery_id)
    assert isinstance(event.event, WebhookDelivered) and event.event.attempt == 2
    row = await delivery_row(conn, "jobheld")
    assert row is not None and row["attempts"] == 2


async def waiting_backend(conn: asyncpg.Connection, where: str) -> int:
    """The pid of the backend of this database waiting for a lock matching ``where``."""
    found: list[int] = []

    async def waiting() -> bool:
        pid = await conn.fetchval(
            "SELECT pid FROM pg_locks WHERE NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            f" AND {where} LIMIT 1"
        )
        found[:] = [pid] if pid is not None else []
        return bool(found)

    await eventually(waiting, f"a backend waiting for a lock ({where})")
    return found[0]
