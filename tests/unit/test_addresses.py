"""The one address policy, judged against the shared corpus (``tests/address_corpus.py``).

Pure: no name is resolved and nothing connects. The same corpus runs through both
real fetchers in ``tests/integration/test_address_canary.py``.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
import structlog
from videoimport_eventlog.addresses import (
    address_problem,
    ends_in_a_number,
    host_refusal,
    is_localhost_name,
    is_public,
    parse_address,
)
from videoimport_ingester.adapters.http_fetch import (
    FetchError,
    ForbiddenAddress,
    SafeResolver,
    checked_url,
    redirect_target,
)
from videoimport_notifier.adapters.webhook_http import (
    ForbiddenName,
    PublicResolver,
    checked_target,
    failure,
)
from videoimport_notifier.domain import AttemptResult
from yarl import URL

from tests.address_corpus import CORPUS, FORBIDDEN, INVALID, NAME, PUBLIC, Case, by_verdict
from tests.resolvers import FixedResolver

HOSTS = [case for case in CORPUS if not case.is_url]
ORIGIN = URL("https://videos.example/a/b.mp4")


def _id(case: Case) -> str:
    return f"{case.target} ({case.why})"


def _ingester_verdict(url: str, *, allow_private: bool) -> str:
    try:
        checked_url(url, allow_private=allow_private)
    except FetchError as exc:
        assert not exc.transient
        return exc.code
    return "passes"


def _notifier_verdict(url: str, *, allow_private: bool) -> str:
    target = checked_target(url, allow_private=allow_private)
    if not isinstance(target, AttemptResult):
        return "passes"
    assert target.permanent and target.status is None and target.error is not None
    if target.error.startswith("forbidden address"):
        return FORBIDDEN
    assert target.error.startswith("invalid webhook url"), target.error
    return INVALID


def test_the_corpus_covers_every_verdict_and_has_no_duplicates() -> None:
    assert {case.verdict for case in CORPUS} == {PUBLIC, NAME, FORBIDDEN, INVALID}
    targets = [case.target for case in CORPUS]
    assert len(targets) == len(set(targets))


# --- the pure policy --------------------------------------------------------------------------


@pytest.mark.parametrize("case", HOSTS, ids=_id)
def test_the_policy_judges_every_host_as_the_corpus_says(case: Case) -> None:
    address = parse_address(case.target)
    refusal = host_refusal(case.target, allow_private=False)
    allowed_anyway = host_refusal(case.target, allow_private=True)
    if case.verdict == PUBLIC:
        assert address is not None and is_public(address)
        assert address_problem(case.target, allow_private=False) is None
        assert refusal is None
    elif case.verdict == NAME:
        assert address is None and not ends_in_a_number(case.target)
        assert refusal is None
    elif case.verdict == FORBIDDEN:
        assert refusal is not None and refusal.code == FORBIDDEN
        assert allowed_anyway is None
        if address is not None:
            assert not is_public(address)
            assert address_problem(case.target, allow_private=False) is not None
            assert address_problem(case.target, allow_private=True) is None
        else:
            assert is_localhost_name(case.target)
    else:
        assert address is None
        assert refusal is not None and refusal.code == INVALID
        assert allowed_anyway == refusal  # allowing private URLs does not make it valid


@pytest.mark.parametrize("case", CORPUS, ids=_id)
def test_both_fetchers_judge_every_url_as_the_corpus_says(case: Case) -> None:
    url = case.url(8080)
    expected = case.verdict if case.verdict in (FORBIDDEN, INVALID) else "passes"
    assert _ingester_verdict(url, allow_private=False) == expected
    assert _notifier_verdict(url, allow_private=False) == expected
    # Private URLs allowed: only what is invalid stays refused.
    expected_allowed = INVALID if case.verdict == INVALID else "passes"
    assert _ingester_verdict(url, allow_private=True) == expected_allowed
    assert _notifier_verdict(url, allow_private=True) == expected_allowed


@pytest.mark.parametrize("case", by_verdict(FORBIDDEN, INVALID), ids=_id)
def test_every_redirect_hop_to_a_corpus_target_is_refused(case: Case) -> None:
    with pytest.raises(FetchError) as caught:
        redirect_target(ORIGIN, 302, case.url(8080), allow_private=False)
    assert caught.value.code == case.verdict


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0X7F.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("010.0.0.1", "8.0.0.1"),  # octal, as inet_aton and browsers read it
        ("0x", "0.0.0.0"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
    ],
)
def test_numeric_hosts_mean_the_address_a_resolver_reads(host: str, address: str) -> None:
    assert parse_address(host) == ipaddress.ip_address(address)
    if ":" not in host and host != "0x":  # glibc reads "0x" as 0 too, but not with a dot
        assert socket.inet_aton(host.rstrip(".")) == ipaddress.ip_address(address).packed


@pytest.mark.parametrize(
    "host", ["example.com", "1.2.3.4.5", "08.0.0.1", "4294967296", "", ".", "1..2", " 127.0.0.1"]
)
def test_what_is_no_address(host: str) -> None:
    assert parse_address(host) is None


@pytest.mark.parametrize(
    ("url", "dotted"),
    [
        ("http://0x7f.1:8080/v.mp4?x=1", "http://127.0.0.1:8080/v.mp4?x=1"),
        ("http://2130706433/v.mp4", "http://127.0.0.1/v.mp4"),
        ("http://127.0.0.1./v.mp4", "http://127.0.0.1/v.mp4"),
        ("http://user@0177.1:81/", "http://user@127.0.0.1:81/"),
    ],
)
def test_a_numeric_host_is_connected_to_as_the_address_that_was_judged(
    url: str, dotted: str
) -> None:
    assert str(checked_url(url, allow_private=True)) == dotted
    target = checked_target(url, allow_private=True)
    assert isinstance(target, URL) and str(target) == dotted


def test_public_numeric_hosts_pass_as_dotted_quads() -> None:
    assert str(checked_url("http://134744072/v.mp4", allow_private=False)) == (
        "http://8.8.8.8/v.mp4"
    )


# --- reasons name the host as written, never what it resolves to --------------------------


@pytest.mark.parametrize("resolver_class", [SafeResolver, PublicResolver])
async def test_resolvers_drop_private_answers(resolver_class: type[SafeResolver]) -> None:
    inner = FixedResolver(["10.0.0.5", "93.184.216.34", "::1", "2606:4700::1", "0x7f.1"])
    resolver = resolver_class(allow_private=False, inner=inner)
    with structlog.testing.capture_logs() as logs:
        results = await resolver.resolve("videos.example", 443)
    assert [r["host"] for r in results] == ["93.184.216.34", "2606:4700::1"]
    [dropped] = logs
    assert dropped["host"] == "videos.example"
    assert dropped["resolved"] == ["0x7f.1", "10.0.0.5", "::1"]


async def test_the_ingester_resolver_refuses_without_naming_the_addresses() -> None:
    resolver = SafeResolver(allow_private=False, inner=FixedResolver(["127.0.0.1", "::1"]))
    with structlog.testing.capture_logs() as logs, pytest.raises(ForbiddenAddress) as caught:
        await resolver.resolve("rebind.example", 80)
    assert str(caught.value) == "forbidden address: rebind.example is not a public address"
    assert [(e["event"], e["host"], e["resolved"]) for e in logs] == [
        ("forbidden address", "rebind.example", ["127.0.0.1", "::1"])
    ]


async def test_the_notifier_resolver_refuses_and_the_attempt_names_only_the_host() -> None:
    resolver = PublicResolver(allow_private=False, inner=FixedResolver(["10.1.2.3"]))
    with structlog.testing.capture_logs() as logs, pytest.raises(ForbiddenName) as caught:
        await resolver.resolve("rebind.example", 80)
    assert logs[0]["resolved"] == ["10.1.2.3"]
    result = failure(caught.value, 10.0, host="rebind.example")
    assert result.permanent and result.status is None
    assert result.error == (
        "forbidden address: refusing to connect to non-public address rebind.example"
    )


@pytest.mark.parametrize("resolver_class", [SafeResolver, PublicResolver])
async def test_resolvers_allow_private_when_switched_on(
    resolver_class: type[SafeResolver],
) -> None:
    resolver = resolver_class(allow_private=True, inner=FixedResolver(["127.0.0.1"]))
    results = await resolver.resolve("localhost", 80)
    assert [r["host"] for r in results] == ["127.0.0.1"]


@pytest.mark.parametrize("url", ["ftp://videos.example/a.mp4", "file:///etc/passwd", "http://"])
def test_only_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        checked_url(url, allow_private=True)
    assert caught.value.code == "invalid_url"


def test_same_origin_and_public_redirects_pass() -> None:
    assert redirect_target(ORIGIN, 302, "../c.mp4", allow_private=False) == URL(
        "https://videos.example/c.mp4"
    )
    assert redirect_target(ORIGIN, 301, "https://cdn.example/x.mp4", allow_private=False) == URL(
        "https://cdn.example/x.mp4"
    )
    with pytest.raises(FetchError) as to_file:
        redirect_target(ORIGIN, 308, "file:///etc/passwd", allow_private=False)
    assert to_file.value.code == "invalid_url"
    with pytest.raises(FetchError) as nowhere:
        redirect_target(ORIGIN, 302, None, allow_private=False)
    assert nowhere.value.code == "download_failed"
    assert redirect_target(ORIGIN, 302, "http://127.0.0.1/x", allow_private=True).host == (
        "127.0.0.1"
    )
