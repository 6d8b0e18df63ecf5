"""The loopback-only scope (tests, fuzzing): nothing but 127.0.0.0/8 and ::1 is reached.

Pure, plus the shared resolver and socket factory with a fixed answer (no network).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import msgspec
import pytest
from videoimport_api.domain.validation import Invalid, parse_import_request
from videoimport_eventlog.addresses import (
    address_problem,
    host_refusal,
    in_scope,
    is_loopback,
    parse_address,
    scope_of,
)
from videoimport_eventlog.guarded_http import PublicResolver, fetchable_url, guarded_socket_factory
from yarl import URL

from tests.address_corpus import CORPUS, Case
from tests.resolvers import FixedResolver


class Refused(Exception):
    pass


LOOPBACK = ["127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1"]
NOT_LOOPBACK = [
    "0.0.0.0",
    "10.0.0.1",
    "169.254.169.254",
    "8.8.8.8",
    "::",
    "fe80::1",
    "::ffff:10.0.0.1",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1: a gateway gets it, not this machine
    "2002:7f00:1::",  # 6to4 of 127.0.0.1: a relay gets it
    "2606:4700::1",
]


@pytest.mark.parametrize("text", LOOPBACK)
def test_loopback_addresses_are_in_the_loopback_scope(text: str) -> None:
    address = ipaddress.ip_address(text)
    assert is_loopback(address) and in_scope(address, "loopback")
    assert address_problem(text, scope="loopback") is None


@pytest.mark.parametrize("text", NOT_LOOPBACK)
def test_every_other_address_is_outside_it(text: str) -> None:
    address = ipaddress.ip_address(text)
    assert not is_loopback(address) and not in_scope(address, "loopback")
    assert address_problem(text, scope="loopback") == (
        f"{text} is not a loopback address (loopback-only mode)"
    )


@pytest.mark.parametrize("case", [c for c in CORPUS if not c.is_url], ids=lambda c: c.target)
def test_every_address_of_the_corpus_passes_only_when_it_is_loopback(case: Case) -> None:
    address = parse_address(case.target)
    if address is None:
        return  # names and invalid hosts: judged as in every scope
    refusal = host_refusal(case.target, scope="loopback")
    if is_loopback(address):
        assert refusal is None
    else:
        assert refusal is not None and refusal.code == "forbidden_address"


def test_loopback_only_wins_and_existing_callers_keep_their_meaning() -> None:
    assert scope_of(allow_private=False) == "public"
    assert scope_of(allow_private=True) == "any"
    assert scope_of(allow_private=True, loopback_only=True) == "loopback"
    assert scope_of(allow_private=False, loopback_only=True) == "loopback"
    assert host_refusal("10.0.0.1", allow_private=True) is None
    assert host_refusal("10.0.0.1", allow_private=False) is not None
    # An explicit scope decides, whatever allow_private says.
    assert host_refusal("10.0.0.1", allow_private=True, scope="loopback") is not None


@pytest.mark.parametrize("host", ["127.0.0.1", "0x7f.1", "2130706433", "::1", "localhost"])
def test_loopback_hosts_pass_before_any_lookup(host: str) -> None:
    assert host_refusal(host, scope="loopback") is None


def test_a_public_literal_is_refused_naming_only_the_host() -> None:
    refusal = host_refusal("8.8.8.8", scope="loopback")
    assert refusal is not None
    assert refusal == (
        "forbidden_address",
        "forbidden address: 8.8.8.8 is not a loopback address (loopback-only mode)",
    )


def test_fetchable_url_connects_to_the_address_it_judged() -> None:
    assert fetchable_url("http://0x7f.1:8080/v.mp4", "loopback") == URL(
        "http://127.0.0.1:8080/v.mp4"
    )
    refused = fetchable_url("http://8.8.8.8/v.mp4", "loopback")
    assert not isinstance(refused, URL) and refused.code == "forbidden_address"
    invalid = fetchable_url("ftp://127.0.0.1/v.mp4", "loopback")
    assert not isinstance(invalid, URL) and invalid.code == "invalid_url"


async def test_the_resolver_keeps_only_loopback_answers() -> None:
    inner = FixedResolver(["10.0.0.5", "127.0.0.1", "93.184.216.34", "::1"])
    resolver = PublicResolver(scope="loopback", refuse=Refused, inner=inner)
    assert [r["host"] for r in await resolver.resolve("mixed.example", 80)] == [
        "127.0.0.1",
        "::1",
    ]


async def test_a_name_resolving_elsewhere_is_refused_at_lookup() -> None:
    resolver = PublicResolver(
        scope="loopback", refuse=Refused, inner=FixedResolver(["93.184.216.34"])
    )
    with pytest.raises(Refused, match=r"public\.example"):
        await resolver.resolve("public.example", 80)


@pytest.mark.parametrize("address", ["93.184.216.34", "10.0.0.1", "2606:4700::1"])
def test_the_socket_factory_refuses_what_is_not_loopback(address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    factory = guarded_socket_factory(True, Refused, scope="loopback")
    with pytest.raises(Refused):
        factory((family, socket.SOCK_STREAM, 6, "", (address, 80)))


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_the_socket_factory_opens_loopback(address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    guarded_socket_factory(False, Refused, scope="loopback")(
        (family, socket.SOCK_STREAM, 6, "", (address, 80))
    ).close()


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8/v.mp4",
        "http://10.0.0.1/v.mp4",
        "http://videos.example.com/v.mp4",  # a name: it could resolve anywhere
        "http://[2606:4700::1]/v.mp4",
    ],
)
def test_the_door_refuses_every_url_that_is_not_loopback(url: str) -> None:
    body = request(webhook="http://127.0.0.1:9/hook", videos=[video(0, url=url)])
    parsed = parse_import_request(body, max_batch=10, allow_private=True, loopback_only=True)
    assert isinstance(parsed, Invalid)
    assert [(e.field, e.reason) for e in parsed.errors] == [
        (
            "videos[0].url",
            "forbidden address: only loopback hosts are accepted (loopback-only mode)",
        )
    ]


def test_the_door_accepts_loopback_urls_and_names_a_bad_webhook() -> None:
    urls = ["http://127.0.0.1:8080/a.mp4", "http://[::1]/b.mp4", "http://localhost:1/c.mp4"]
    body = request(videos=[video(i, url=u) for i, u in enumerate(urls)])
    parsed = parse_import_request(body, max_batch=10, loopback_only=True, allow_private=True)
    assert not isinstance(parsed, Invalid)
    hooked = request(webhook="https://hooks.example.com/x", videos=[video(0, url=urls[0])])
    refused = parse_import_request(hooked, max_batch=10, loopback_only=True, allow_private=True)
    assert isinstance(refused, Invalid) and [e.field for e in refused.errors] == ["webhook"]


def request(videos: list[dict[str, Any]], webhook: str | None = None) -> bytes:
    return msgspec.json.encode({"systemName": "archive", "webhook": webhook, "videos": videos})


def video(index: int, url: str) -> dict[str, Any]:
    return {"url": url, "id": f"ext-{index}", "fileName": "f", "metadata": {}}
