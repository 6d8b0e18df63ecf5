"""Every problem of a video URL ends as a classified ``FetchError``, never a stray exception.

No network: URLs that are rejected are rejected before any name is resolved,
and the resolver used here fails the test if anything reaches it.
"""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from videoimport_events import FAILURE_CODES, MAX_REASON_BYTES
from videoimport_ingester.adapters.http_fetch import (
    FetchError,
    ForbiddenAddress,
    SafeFetcher,
    SafeResolver,
    check_status,
    checked_url,
    guarded_socket_factory,
    redirect_target,
    valid_hostname,
)
from yarl import URL

from tests.address_corpus import FORBIDDEN, INVALID, Case, by_verdict

LONG_LABEL = "a" * 64
BAD_URLS = [
    "http://xn--a.com/v.mp4",  # punycode that does not decode (UnicodeError)
    "http://a..b/v.mp4",  # an empty label
    f"http://{LONG_LABEL}.com/v.mp4",  # a label over 63 characters
    f"http://{'abcdefghi.' * 26}com/v.mp4",  # a name over 253 characters
    "http://exa mple.com/v.mp4",
    "http://[::1/v.mp4",  # ValueError from the parser
    "http://a.com:99999/v.mp4",
]


class _NoNetwork(AbstractResolver):
    """Fails the test if a name is ever resolved."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise AssertionError(f"tried to resolve {host!r}")

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_urls_are_invalid_url_before_any_request(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        checked_url(url, allow_private=False)
    assert caught.value.code == "invalid_url"
    assert not caught.value.transient


@pytest.mark.parametrize("url", BAD_URLS)
async def test_the_fetcher_turns_bad_urls_into_fetch_errors(url: str) -> None:
    connector = aiohttp.TCPConnector(resolver=SafeResolver(allow_private=False, inner=_NoNetwork()))
    async with aiohttp.ClientSession(connector=connector) as session:
        fetcher = SafeFetcher(session, allow_private=False, connect_timeout=1, read_timeout=1)
        with pytest.raises(FetchError) as caught:
            async with fetcher.open(url):
                pytest.fail("opened a bad url")
    assert caught.value.code == "invalid_url"


def _no_socket(addr_info: tuple[object, ...]) -> socket.socket:
    raise AssertionError(f"tried to connect to {addr_info[4]!r}")


@pytest.mark.parametrize(
    "case", by_verdict(FORBIDDEN, INVALID), ids=lambda case: f"{case.target} ({case.why})"
)
async def test_corpus_urls_are_refused_before_any_lookup_or_socket(case: Case) -> None:
    connector = aiohttp.TCPConnector(
        resolver=SafeResolver(allow_private=False, inner=_NoNetwork()), socket_factory=_no_socket
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        fetcher = SafeFetcher(session, allow_private=False, connect_timeout=1, read_timeout=1)
        with pytest.raises(FetchError) as caught:
            async with fetcher.open(case.url(8080)):
                pytest.fail("opened a refused url")
    assert (caught.value.code, caught.value.transient) == (case.verdict, False)


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.0.0.1", "::1", "::ffff:127.0.0.1", "fe80::1%lo", "0x7f.1"]
)
def test_the_socket_factory_refuses_non_public_addresses(address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    info = (family, socket.SOCK_STREAM, 6, "", (address, 443))
    with pytest.raises(ForbiddenAddress) as caught:
        guarded_socket_factory(False)(info)
    assert str(caught.value) == "forbidden address"  # the address goes to the log only
    if family == socket.AF_INET:
        guarded_socket_factory(True)(info).close()


def test_the_socket_factory_makes_sockets_for_public_addresses() -> None:
    # Only a socket object is made; nothing connects.
    info = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))
    guarded_socket_factory(False)(info).close()


@pytest.mark.parametrize(
    "location",
    ["http://xn--a.com/v.mp4", "http://a..b/v.mp4", f"//{LONG_LABEL}.com/x", "http://[::1"],
)
def test_bad_redirect_targets_are_invalid_url(location: str) -> None:
    with pytest.raises(FetchError) as caught:
        redirect_target(URL("https://videos.example/a.mp4"), 302, location, allow_private=False)
    assert caught.value.code == "invalid_url"


def test_good_host_names_pass() -> None:
    for host in ("videos.example", "cdn-1.example.com.", "xn--bcher-kva.example", "a_b.example"):
        assert valid_hostname(host), host
    assert checked_url("https://bücher.example/v.mp4", allow_private=False).raw_host == (
        "xn--bcher-kva.example"
    )
    for host in ("", ".", "a..b", "-a.example", "a-.example", LONG_LABEL, "a b"):
        assert not valid_hostname(host), host


@pytest.mark.parametrize("value", ["²", "١٢", "-5", "soon", "99999999999999", ""])
def test_an_unusable_retry_after_is_a_retry_on_our_own_schedule(value: str) -> None:
    with pytest.raises(FetchError) as caught:
        check_status(503, {"Retry-After": value})
    assert (caught.value.code, caught.value.transient) == ("download_failed", True)
    assert caught.value.retry_after is None


def test_a_usable_retry_after_is_kept() -> None:
    with pytest.raises(FetchError) as caught:
        check_status(429, {"Retry-After": "7"})
    assert (caught.value.transient, caught.value.retry_after) == (True, 7.0)
    with pytest.raises(FetchError) as permanent:
        check_status(404, {"Retry-After": "7"})
    assert (permanent.value.transient, permanent.value.retry_after) == (False, None)
    check_status(200, {})  # no error


def test_reasons_are_bounded_and_urls_in_them_shortened() -> None:
    url = "http://videos.example/" + "x" * 50_000 + " .mp4"
    with pytest.raises(FetchError) as caught:
        checked_url("ftp" + url[4:], allow_private=False)
    assert caught.value.code == "invalid_url"
    assert len(caught.value.reason) < 300
    error = FetchError("download_failed", "download failed: " + "é" * 5000)
    assert len(error.reason.encode()) <= MAX_REASON_BYTES
    assert str(error) == error.reason


def test_only_known_failure_codes() -> None:
    assert "invalid_url" in FAILURE_CODES
    with pytest.raises(ValueError, match="unknown failure code"):
        FetchError("weird", "x")
