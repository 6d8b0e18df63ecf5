"""Webhook payload, retry schedule, signatures and address checks, without servers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
from videoimport_eventlog.retry import RetryPolicy, parse_retry_after
from videoimport_events import JobCompleted, Overview, WebhookDelivered, WebhookDeliveryFailed
from videoimport_notifier import signing
from videoimport_notifier.adapters.webhook_http import (
    BlockedAddress,
    guarded_socket_factory,
    url_problem,
)
from videoimport_notifier.domain import (
    WEBHOOK_SCHEDULE,
    AttemptResult,
    Delivery,
    attempt_event,
    delivery_for,
    delivery_id_for,
    next_step,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DAY = 86_400.0


def completed(webhook: str | None = "https://hooks.example.com/in") -> JobCompleted:
    return JobCompleted(
        job_id="abcdefghijkl",
        project="acme",
        state="success",
        overview=Overview(total=3, success=1, skipped=1, failed=1),
        started_at=NOW,
        finished_at=NOW,
        webhook=webhook,
        context={"myIdentifier": "x"},
    )


# --- signatures -------------------------------------------------------------


def test_signature_matches_the_standard_webhooks_reference_example() -> None:
    key = signing.secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    sig = signing.signature(
        key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_follows_the_spec_definition() -> None:
    raw_key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(raw_key).decode()
    body = b'{"id":"j","state":"failed"}'
    headers = signing.headers([signing.secret_key(secret)], "whd_1", 1700000000, body)
    expected = base64.b64encode(
        hmac.new(raw_key, b"whd_1.1700000000." + body, hashlib.sha256).digest()
    ).decode()
    assert headers == {
        "webhook-id": "whd_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": f"v1,{expected}",
    }


def test_every_key_signs_space_separated_newest_first() -> None:
    old, new = b"o" * 32, b"n" * 32
    headers = signing.headers([new, old], "whd_1", 1700000000, b"{}")
    assert headers["webhook-signature"] == " ".join(
        [
            signing.signature(new, "whd_1", 1700000000, b"{}"),
            signing.signature(old, "whd_1", 1700000000, b"{}"),
        ]
    )


def test_a_changed_body_changes_the_signature() -> None:
    key = signing.secret_key("whsec_" + base64.b64encode(b"k" * 24).decode())
    assert signing.signature(key, "a", 1, b"{}") != signing.signature(key, "a", 1, b"{ }")


def test_there_is_no_unsigned_request() -> None:
    with pytest.raises(ValueError, match="never sent unsigned"):
        signing.headers([], "whd_1", 5, b"{}")


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "whsec_",
        "whsec_not base64!",
        "whsec_@@@@",
        base64.b64encode(b"k" * 32).decode(),  # no prefix
        "whsec_" + base64.b64encode(b"k").decode(),  # a 1-byte key
        "whsec_" + base64.b64encode(b"k" * 23).decode(),  # one byte short
    ],
)
def test_bad_and_short_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError) as caught:
        signing.secret_key(secret)
    if len(secret) > len("whsec_"):
        assert secret.removeprefix("whsec_") not in str(caught.value)  # never quoted


# --- payload and delivery identity ---------------------------------------------


def test_payload_has_id_state_overview_and_context() -> None:
    delivery = delivery_for(completed(), "ev-1")
    assert delivery is not None
    assert json.loads(delivery.body) == {
        "id": "abcdefghijkl",
        "state": "success",
        "overview": {"total": 3, "success": 1, "skipped": 1, "failed": 1},
        "context": {"myIdentifier": "x"},
    }
    assert delivery.url == "https://hooks.example.com/in"
    assert delivery.cause_event_id == "ev-1"


def test_payload_context_is_null_when_none_was_given() -> None:
    event = JobCompleted(
        job_id="j",
        project="p",
        state="failed",
        overview=Overview(total=1, success=0, skipped=0, failed=1),
        started_at=NOW,
        finished_at=NOW,
        webhook="https://h.example.com",
    )
    delivery = delivery_for(event, "e")
    assert delivery is not None
    assert json.loads(delivery.body)["context"] is None


def test_no_webhook_no_delivery() -> None:
    assert delivery_for(completed(webhook=None), "ev-1") is None


def test_delivery_id_is_deterministic_per_event() -> None:
    assert delivery_id_for("ev-1") == delivery_id_for("ev-1")
    assert delivery_id_for("ev-1") != delivery_id_for("ev-2")
    assert delivery_id_for("ev-1").startswith("whd_")


# --- retry schedule ---------------------------------------------------------------


def test_default_schedule_grows_exponentially_and_spans_about_three_days() -> None:
    policy = WEBHOOK_SCHEDULE
    delays = [policy.nominal_delay(a) for a in range(1, policy.attempts)]
    assert delays[:4] == [10.0, 30.0, 90.0, 270.0]
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert max(delays) == policy.max_delay
    assert 2.5 * DAY <= policy.total_nominal() <= 3.5 * DAY


@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999])
def test_jitter_stays_within_its_band(rand: float) -> None:
    policy = WEBHOOK_SCHEDULE
    for attempt in range(1, policy.attempts):
        nominal = policy.nominal_delay(attempt)
        assert 0.8 * nominal <= policy.delay(attempt, rand) <= 1.2 * nominal
    assert policy.delay(3, 0.5) == policy.nominal_delay(3)


def test_a_2xx_is_delivered() -> None:
    step = next_step(1, AttemptResult(status=204), NOW, WEBHOOK_SCHEDULE, 0.5)
    assert (step.state, step.next_attempt_at, step.error) == ("delivered", None, None)


def test_a_failure_is_retried_after_the_backoff() -> None:
    step = next_step(2, AttemptResult(status=500, error="HTTP 500"), NOW, WEBHOOK_SCHEDULE, 0.5)
    assert step.state == "pending"
    assert step.next_attempt_at == NOW + timedelta(seconds=30)
    assert step.error == "HTTP 500"


def test_retry_after_is_honoured_but_capped() -> None:
    policy = WEBHOOK_SCHEDULE
    soon = next_step(1, AttemptResult(status=503, retry_after=120.0), NOW, policy, 0.5)
    assert soon.next_attempt_at == NOW + timedelta(seconds=120)
    far = next_step(1, AttemptResult(status=429, retry_after=10 * DAY), NOW, policy, 0.5)
    assert far.next_attempt_at == NOW + timedelta(seconds=policy.max_delay)


def test_the_last_attempt_gives_up() -> None:
    policy = RetryPolicy(attempts=3, base=10.0, factor=3.0, max_delay=43_200.0)
    assert next_step(2, AttemptResult(error="refused"), NOW, policy, 0.5).state == "pending"
    last = next_step(3, AttemptResult(error="refused"), NOW, policy, 0.5)
    assert (last.state, last.next_attempt_at, last.error) == ("failed", None, "refused")


@pytest.mark.parametrize(
    "result",
    [AttemptResult(status=410), AttemptResult(error="blocked", permanent=True)],
)
def test_permanent_failures_are_not_retried(result: AttemptResult) -> None:
    assert next_step(1, result, NOW, WEBHOOK_SCHEDULE, 0.5).state == "failed"


def test_retry_after_parsing() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after("Sat, 01 Mar 2025 12:01:00 GMT", NOW) == 60.0
    assert parse_retry_after("Sat, 01 Mar 2025 11:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_attempt_events() -> None:
    delivery = Delivery(
        delivery_id="whd_x",
        job_id="j",
        project="p",
        url="https://h.example.com",
        body=b"{}",
        cause_event_id="e",
    )
    ok = AttemptResult(status=200)
    delivered = attempt_event(delivery, 1, ok, next_step(1, ok, NOW, WEBHOOK_SCHEDULE, 0.5))
    assert delivered == WebhookDelivered(
        job_id="j",
        project="p",
        delivery_id="whd_x",
        url="https://h.example.com",
        attempt=1,
        status_code=200,
    )
    bad = AttemptResult(status=500, error="HTTP 500")
    step = next_step(2, bad, NOW, WEBHOOK_SCHEDULE, 0.5)
    failed = attempt_event(delivery, 2, bad, step)
    assert isinstance(failed, WebhookDeliveryFailed)
    assert (failed.attempt, failed.status_code, failed.error) == (2, 500, "HTTP 500")
    assert failed.next_attempt_at == step.next_attempt_at


# --- SSRF guard -------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",
        "64:ff9b::a00:1",
    ],
)
def test_internal_addresses_are_refused_where_the_connection_is_made(address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    info = (family, socket.SOCK_STREAM, 6, "", (address, 443))
    with pytest.raises(BlockedAddress, match=f"non-public address {address}"):
        guarded_socket_factory(False)(info)
    if family == socket.AF_INET6 and not socket.has_ipv6:
        return
    guarded_socket_factory(True)(info).close()  # allowed when private URLs are


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_global_addresses_may_be_connected_to(address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("no IPv6 sockets here")
    # Only a socket object is made; nothing connects.
    guarded_socket_factory(False)((family, socket.SOCK_STREAM, 6, "", (address, 443))).close()


@pytest.mark.parametrize(
    "url", ["ftp://h.example.com/x", "file:///etc/passwd", "http://", "not a url"]
)
def test_only_http_urls_are_sent(url: str) -> None:
    assert url_problem(url) is not None
    assert url_problem("https://h.example.com/x") is None


def test_a_re_armed_delivery_gets_a_fresh_budget_while_attempts_keep_counting() -> None:
    from videoimport_notifier.domain import in_budget

    delivery = delivery_for(completed(), "e1")
    assert delivery is not None
    assert in_budget(delivery, 1) == 1
    # Re-armed after 14 attempts (the whole schedule): attempt 15 is the budget's first.
    rearmed = Delivery(**{**{f: getattr(delivery, f) for f in delivery.__struct_fields__},
                          "attempts": 14, "budget_from": 14})  # fmt: skip
    assert in_budget(rearmed, 15) == 1
    step = next_step(in_budget(rearmed, 15), AttemptResult(status=503), NOW, WEBHOOK_SCHEDULE, 0.5)
    assert (step.state, step.next_attempt_at) == ("pending", NOW + timedelta(seconds=10))
    last = next_step(in_budget(rearmed, 28), AttemptResult(status=503), NOW, WEBHOOK_SCHEDULE, 0.5)
    assert last.state == "failed"
