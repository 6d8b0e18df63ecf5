"""Readiness verdicts, bounded probes and state-change logging (no servers)."""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs
from videoimport_eventlog.health import DOWN, UP, Readiness, bootstrap_servers, decide

SECRET = "password authentication failed for user videoimport"


async def up() -> None:
    return None


async def down() -> None:
    raise ConnectionRefusedError(SECRET)


def test_ready_only_when_every_required_check_is_up() -> None:
    assert decide({"postgres": UP, "kafka": UP}, {"postgres", "kafka"}).ready
    verdict = decide({"postgres": UP, "kafka": DOWN}, {"postgres", "kafka"})
    assert (verdict.ready, verdict.status_code) == (False, 503)
    assert verdict.body() == {"status": "unavailable", "checks": {"postgres": UP, "kafka": DOWN}}
    # A check that is reported but not required does not decide (the API's S3).
    verdict = decide({"postgres": UP, "s3": DOWN}, {"postgres"})
    assert (verdict.status_code, verdict.body()) == (
        200,
        {"status": "ok", "checks": {"postgres": UP, "s3": DOWN}},
    )
    # A required check without a result is not up.
    assert not decide({}, {"postgres"}).ready


def test_a_required_check_needs_a_probe() -> None:
    with pytest.raises(ValueError, match="s3"):
        Readiness({"postgres": up}, required={"postgres", "s3"})


async def test_probes_report_up_and_down_and_the_body_has_no_error_text() -> None:
    readiness = Readiness({"postgres": up, "kafka": down})
    verdict = await readiness.check()
    assert verdict.body() == {"status": "unavailable", "checks": {"postgres": UP, "kafka": DOWN}}
    assert SECRET not in repr(verdict)


async def test_probes_run_concurrently() -> None:
    # Each waits for the other: run one after the other, both would time out.
    first, second = asyncio.Event(), asyncio.Event()

    async def a() -> None:
        first.set()
        await second.wait()

    async def b() -> None:
        second.set()
        await first.wait()

    verdict = await Readiness({"a": a, "b": b}, timeout=1.0).check()
    assert verdict.checks == {"a": UP, "b": UP}


async def test_a_hanging_probe_is_down_after_the_timeout() -> None:
    async def hangs() -> None:
        await asyncio.sleep(3600)

    began = time.monotonic()
    verdict = await Readiness({"postgres": up, "kafka": hangs}, timeout=0.2).check()
    assert verdict.checks == {"postgres": UP, "kafka": DOWN}
    assert time.monotonic() - began < 2


async def test_a_probe_that_ignores_its_cancellation_does_not_hold_the_answer() -> None:
    release = asyncio.Event()
    ended = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()  # swallows the cancellation until released
        finally:
            ended.set()

    began = time.monotonic()
    verdict = await Readiness({"kafka": stubborn}, timeout=0.2).check()
    assert verdict.checks == {"kafka": DOWN}
    assert time.monotonic() - began < 2
    assert not ended.is_set()  # still running in the background, answer given anyway
    release.set()
    await asyncio.wait_for(ended.wait(), 5)


async def test_each_change_of_state_is_logged_once_with_the_reason() -> None:
    healthy = True

    async def flaky() -> None:
        if not healthy:
            raise ConnectionRefusedError(SECRET)

    readiness = Readiness({"postgres": flaky})
    states = []
    with capture_logs() as logs:
        for now_healthy in (True, False, False, False, True, True, False):
            healthy = now_healthy
            states.append((await readiness.check()).checks["postgres"])
    assert states == [UP, DOWN, DOWN, DOWN, UP, UP, DOWN]
    events = [(entry["event"], entry["log_level"]) for entry in logs]
    assert events == [
        ("readiness check down", "warning"),
        ("readiness check up again", "info"),
        ("readiness check down", "warning"),
    ]
    assert all(entry["check"] == "postgres" for entry in logs)
    assert SECRET in logs[0]["error"]  # the operator learns why, the caller never does


async def test_a_timeout_is_logged_as_such() -> None:
    async def hangs() -> None:
        await asyncio.sleep(3600)

    with capture_logs() as logs:
        await Readiness({"kafka": hangs}, timeout=0.1).check()
    assert [entry["error"] for entry in logs] == ["no answer within 0.1 s"]


@pytest.mark.parametrize(
    ("bootstrap", "servers"),
    [
        ("127.0.0.1:39015", [("127.0.0.1", 39015)]),
        ("kafka:9092, kafka-2:9093", [("kafka", 9092), ("kafka-2", 9093)]),
        ("kafka", [("kafka", 9092)]),
        ("[::1]:9094,[fe80::1]", [("::1", 9094), ("fe80::1", 9092)]),
    ],
)
def test_bootstrap_servers_are_read_as_kafka_clients_read_them(
    bootstrap: str, servers: list[tuple[str, int]]
) -> None:
    assert bootstrap_servers(bootstrap) == servers


def test_no_bootstrap_server_is_an_error() -> None:
    with pytest.raises(ValueError):
        bootstrap_servers(" , ")
