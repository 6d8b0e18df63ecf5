"""A ``url`` or ``webhook`` naming a non-public address literally is refused at POST."""

from __future__ import annotations

import json
from typing import Any

import pytest
from videoimport_api.domain.urls import forbidden_literal, literal_address
from videoimport_api.domain.validation import ImportCommand, Invalid, parse_import_request

from .test_api_validation import request, video

PRIVATE = [
    "http://127.0.0.1/v.mp4",
    "http://127.0.0.1.:8080/v.mp4",
    "http://10.1.2.3/v.mp4",
    "http://172.16.0.1/v.mp4",
    "http://192.168.0.1/v.mp4",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/v.mp4",
    "http://100.64.0.1/v.mp4",  # carrier-grade NAT
    "http://224.0.0.1/v.mp4",  # multicast
    "http://255.255.255.255/v.mp4",
    "http://user:pw@10.0.0.1:80/v.mp4",
    "http://[::1]/v.mp4",
    "http://[::]/v.mp4",
    "http://[fe80::1]/v.mp4",
    "http://[fe80::1%25eth0]/v.mp4",
    "http://[fc00::1]/v.mp4",
    "http://[fec0::1]/v.mp4",
    "http://[::ffff:127.0.0.1]/v.mp4",  # IPv4-mapped
    "http://[::ffff:a9fe:a9fe]/v.mp4",  # 169.254.169.254, mapped, in hex
    "http://[::127.0.0.1]/v.mp4",  # IPv4-compatible
    "http://[64:ff9b::a00:1]/v.mp4",  # NAT64 of 10.0.0.1
    "http://[2002:a00:1::]/v.mp4",  # 6to4 of 10.0.0.1
    "http://[2001:db8::1]/v.mp4",  # documentation
    # What resolvers and browsers read as IPv4 too.
    "http://127.1/v.mp4",
    "http://2130706433/v.mp4",
    "http://0x7f000001/v.mp4",
    "http://0x7f.0.0.1/v.mp4",
    "http://0177.0.0.1/v.mp4",
]
PUBLIC = [
    "https://8.8.8.8/v.mp4",
    "https://[2606:4700:4700::1111]/v.mp4",
    "https://[::ffff:8.8.8.8]/v.mp4",
    "https://videos.example.com/v.mp4",
    "https://localhost/v.mp4",  # a name: the fetchers check what it resolves to
    "https://10.example/v.mp4",
    "https://1e100.net/v.mp4",
]


def parse(document: Any, allow_private: bool = False) -> ImportCommand | Invalid:
    body = json.dumps(document).encode()
    return parse_import_request(body, max_batch=10, allow_private=allow_private)


@pytest.mark.parametrize("url", PRIVATE)
def test_a_private_literal_is_forbidden_without_naming_the_address(url: str) -> None:
    assert forbidden_literal(url)
    result = parse(request(webhook=url, videos=[video(0), video(1, url=url)]))
    assert isinstance(result, Invalid)
    assert [(e.field, e.reason) for e in result.errors] == [
        ("webhook", "forbidden address"),
        ("videos[1].url", "forbidden address"),
    ]


@pytest.mark.parametrize("url", PRIVATE)
def test_private_urls_may_be_allowed(url: str) -> None:
    result = parse(request(webhook=url, videos=[video(0, url=url)]), allow_private=True)
    assert isinstance(result, ImportCommand), result
    assert (result.webhook, result.videos[0].url) == (url, url)


@pytest.mark.parametrize("url", PUBLIC)
def test_public_literals_and_names_pass(url: str) -> None:
    assert not forbidden_literal(url)
    result = parse(request(webhook=url, videos=[video(0, url=url)]))
    assert isinstance(result, ImportCommand), result


def test_numeric_hosts_are_read_as_resolvers_read_them() -> None:
    assert str(literal_address("2130706433")) == "127.0.0.1"
    assert str(literal_address("0x7f.1")) == "127.0.0.1"
    assert str(literal_address("010.0.0.1")) == "8.0.0.1"  # octal
    assert literal_address("videos.example.com") is None
    assert literal_address("1.2.3.4.5") is None


def test_a_structural_problem_is_reported_before_the_address() -> None:
    result = parse(request(webhook="ftp://127.0.0.1/x"))
    assert isinstance(result, Invalid)
    assert result.errors[0].field == "webhook"
    assert "scheme" in result.errors[0].reason
