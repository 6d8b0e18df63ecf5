"""aiohttp plumbing that applies the address policy where connections are made.

``PublicResolver`` hands the connector only the addresses a name resolves to
that the scope allows (public ones unless told otherwise); ``guarded_socket_factory``
refuses a socket to any other address (IP literals included, which aiohttp
connects to without asking the resolver). Both take the fetcher's
``allow_private`` or, instead, an ``AddressScope`` (``"loopback"``: tests and
fuzzing). Both raise what the caller's ``refuse`` builds, so each fetcher keeps
its own error type; both log what was refused (the resolved addresses), which a
client is never told. ``fetchable_url`` judges a URL (or a redirect's target)
before anything is looked up.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from videoimport_eventlog.addresses import (
    AddressScope,
    HostRefusal,
    host_refusal,
    in_scope,
    is_public,
    parse_address,
    scope_of,
)

Refuse = Callable[[str], BaseException]
"""Builds the error for a refused host name or address (given as written)."""

log = structlog.get_logger(__name__)


def public_text(text: str) -> bool:
    """True when ``text`` is an address the policy lets a fetcher reach."""
    address = parse_address(text)
    return address is not None and is_public(address)


def text_in_scope(text: str, scope: AddressScope) -> bool:
    """True when ``text`` is an address ``scope`` lets a fetcher reach."""
    address = parse_address(text)
    return address is not None and in_scope(address, scope)


class PublicResolver(AbstractResolver):
    """Hands the connector only the addresses a name resolves to that the scope allows.

    ``scope`` (when given) decides; otherwise ``allow_private`` means ``"any"``.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        refuse: Refuse,
        inner: AbstractResolver | None = None,
        scope: AddressScope | None = None,
    ) -> None:
        self._scope = scope if scope is not None else scope_of(allow_private=allow_private)
        self._refuse = refuse
        self._inner = inner if inner is not None else aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._scope == "any":
            return results
        allowed = [r for r in results if text_in_scope(r["host"], self._scope)]
        refused = sorted({r["host"] for r in results if r not in allowed})
        if not allowed:
            log.warning("forbidden address", host=host, resolved=refused)
            raise self._refuse(host)
        if refused:
            log.info("non-public addresses dropped", host=host, resolved=refused)
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def guarded_socket_factory(
    allow_private: bool, refuse: Refuse, *, scope: AddressScope | None = None
) -> Any:
    """A connector's socket factory that refuses an address outside the scope.

    ``scope`` (when given) decides; otherwise ``allow_private`` means ``"any"``.
    """
    allowed = scope if scope is not None else scope_of(allow_private=allow_private)

    def factory(addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = str(sockaddr[0])
        if allowed != "any" and not text_in_scope(address, allowed):
            log.warning("forbidden address", address=address)
            raise refuse(address)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


SHOWN_URL_CHARS = 200
"""Of a URL quoted in a reason: enough to recognise it, never the whole of a huge one."""


def shown_url(url: str) -> str:
    """``url`` quoted for a reason, cut to ``SHOWN_URL_CHARS``."""
    if len(url) > SHOWN_URL_CHARS:
        url = url[: SHOWN_URL_CHARS - 1] + "…"
    return repr(url)


def fetchable_url(url: str, scope: AddressScope) -> URL | HostRefusal:
    """``url`` ready to connect to, or why it may not be fetched (checked before any lookup).

    An IPv4 host in another form (``0x7f.1``, ``2130706433``) is replaced by the
    dotted address that was judged, so no resolver reads it its own way.
    """
    try:
        parsed = URL(url)
        # ``host`` decodes punycode: a bad "xn--" label raises here, not in the connector.
        if parsed.scheme not in ("http", "https") or not parsed.host or not parsed.raw_host:
            return HostRefusal("invalid_url", f"not an http(s) url: {shown_url(url)}")
    except (ValueError, TypeError) as exc:  # UnicodeError (IDNA) is a ValueError
        return HostRefusal(
            "invalid_url", f"invalid url {shown_url(url)}: {str(exc) or type(exc).__name__}"
        )
    refusal = host_refusal(parsed.raw_host, scope=scope)
    if refusal is not None:
        return refusal
    address = parse_address(parsed.raw_host)
    if isinstance(address, ipaddress.IPv4Address) and parsed.raw_host != str(address):
        return parsed.with_host(str(address))
    return parsed
