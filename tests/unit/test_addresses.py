"""Which addresses a video URL may reach, and the resolver that enforces it."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from videoimport_eventlog.addresses import address_problem, is_public, parse_address
from videoimport_ingester.adapters.http_fetch import (
    FetchError,
    ForbiddenAddress,
    SafeResolver,
    checked_url,
    redirect_target,
)
from yarl import URL


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1",  # loopback
        "127.255.0.9",
        "10.1.2.3",  # private
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.169.254",  # link-local (cloud metadata)
        "0.0.0.0",
        "224.0.0.1",  # multicast
        "239.1.1.1",
        "255.255.255.255",
        "198.18.0.1",  # benchmarking
        "192.0.2.1",  # documentation
        "::1",
        "::",
        "fe80::1",  # link-local
        "fc00::1",  # unique local
        "fd12:3456::1",
        "fec0::1",  # deprecated site-local
        "ff02::1",  # multicast
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "::127.0.0.1",  # IPv4-compatible
        "2001:db8::1",  # documentation
    ],
)
def test_non_public_addresses(text: str) -> None:
    address = parse_address(text)
    assert address is not None
    assert not is_public(address)
    assert address_problem(text, allow_private=False) is not None
    assert address_problem(text, allow_private=True) is None


@pytest.mark.parametrize(
    "text",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "2a00:1450:4001:80b::200e",
        "::ffff:8.8.8.8",  # mapped public v4
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    ],
)
def test_public_addresses(text: str) -> None:
    address = parse_address(text)
    assert address is not None
    assert is_public(address)
    assert address_problem(text, allow_private=False) is None


def test_parse_address() -> None:
    assert parse_address("[::1]") == parse_address("::1")
    assert parse_address("fe80::1%eth0") == parse_address("fe80::1")
    assert parse_address("example.com") is None
    assert parse_address("2130706433") is None  # numeric forms go through the resolver


class _FixedResolver(AbstractResolver):
    """Answers like a DNS server would for one name (no network)."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_resolver_drops_private_answers() -> None:
    inner = _FixedResolver(["10.0.0.5", "93.184.216.34", "::1", "2606:4700::1"])
    resolver = SafeResolver(allow_private=False, inner=inner)
    results = await resolver.resolve("videos.example", 443)
    assert [r["host"] for r in results] == ["93.184.216.34", "2606:4700::1"]


async def test_resolver_refuses_a_name_with_only_private_answers() -> None:
    resolver = SafeResolver(allow_private=False, inner=_FixedResolver(["127.0.0.1", "::1"]))
    with pytest.raises(ForbiddenAddress, match="not a public address"):
        await resolver.resolve("rebind.example", 80)


async def test_resolver_allows_private_when_switched_on() -> None:
    resolver = SafeResolver(allow_private=True, inner=_FixedResolver(["127.0.0.1"]))
    results = await resolver.resolve("localhost", 80)
    assert [r["host"] for r in results] == ["127.0.0.1"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.mp4",
        "http://[::1]:8080/a.mp4",
        "https://169.254.169.254/latest/meta-data",
        "http://[::ffff:10.0.0.1]/a.mp4",
        "http://10.0.0.1./a.mp4",
    ],
)
def test_urls_with_private_literals_are_refused_before_any_request(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        checked_url(url, allow_private=False)
    assert caught.value.code in ("forbidden_address", "invalid_url")
    assert not caught.value.transient


@pytest.mark.parametrize("url", ["ftp://videos.example/a.mp4", "file:///etc/passwd", "http://"])
def test_only_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        checked_url(url, allow_private=True)
    assert caught.value.code == "invalid_url"


def test_every_redirect_hop_is_checked_again() -> None:
    start = URL("https://videos.example/a/b.mp4")
    assert redirect_target(start, 302, "../c.mp4", allow_private=False) == URL(
        "https://videos.example/c.mp4"
    )
    assert redirect_target(start, 301, "https://cdn.example/x.mp4", allow_private=False) == URL(
        "https://cdn.example/x.mp4"
    )
    with pytest.raises(FetchError) as to_loopback:
        redirect_target(start, 302, "http://127.0.0.1:9000/admin", allow_private=False)
    assert to_loopback.value.code == "forbidden_address"
    with pytest.raises(FetchError) as to_mapped:
        redirect_target(start, 307, "http://[::ffff:192.168.0.1]/", allow_private=False)
    assert to_mapped.value.code == "forbidden_address"
    with pytest.raises(FetchError) as to_file:
        redirect_target(start, 308, "file:///etc/passwd", allow_private=False)
    assert to_file.value.code == "invalid_url"
    with pytest.raises(FetchError) as nowhere:
        redirect_target(start, 302, None, allow_private=False)
    assert nowhere.value.code == "download_failed"
    assert redirect_target(start, 302, "http://127.0.0.1/x", allow_private=True).host == "127.0.0.1"
