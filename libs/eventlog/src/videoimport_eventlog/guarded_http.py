"""aiohttp plumbing that applies the address policy where connections are made.

``PublicResolver`` hands the connector only the public addresses a name
resolves to; ``guarded_socket_factory`` refuses a socket to a non-public
address (IP literals included, which aiohttp connects to without asking the
resolver). Both raise what the caller's ``refuse`` builds, so each fetcher keeps
its own error type; both log what was refused (the resolved addresses), which a
client is never told.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult

from videoimport_eventlog.addresses import is_public, parse_address

Refuse = Callable[[str], BaseException]
"""Builds the error for a refused host name or address (given as written)."""

log = structlog.get_logger(__name__)


def public_text(text: str) -> bool:
    """True when ``text`` is an address the policy lets a fetcher reach."""
    address = parse_address(text)
    return address is not None and is_public(address)


class PublicResolver(AbstractResolver):
    """Hands the connector only the public addresses a name resolves to."""

    def __init__(
        self, *, allow_private: bool, refuse: Refuse, inner: AbstractResolver | None = None
    ) -> None:
        self._allow_private = allow_private
        self._refuse = refuse
        self._inner = inner if inner is not None else aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._allow_private:
            return results
        allowed = [r for r in results if public_text(r["host"])]
        refused = sorted({r["host"] for r in results if r not in allowed})
        if not allowed:
            log.warning("forbidden address", host=host, resolved=refused)
            raise self._refuse(host)
        if refused:
            log.info("non-public addresses dropped", host=host, resolved=refused)
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def guarded_socket_factory(allow_private: bool, refuse: Refuse) -> Any:
    """A connector's socket factory that refuses a non-public address."""

    def factory(addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = str(sockaddr[0])
        if not allow_private and not public_text(address):
            log.warning("forbidden address", address=address)
            raise refuse(address)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory
