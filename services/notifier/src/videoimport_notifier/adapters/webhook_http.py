"""POST a webhook without letting a user-supplied URL reach internal services.

The address check runs in the socket factory, i.e. on the very address the
connection is made to after DNS resolution, so a name that resolves (or
re-resolves) to a private address is refused as well as a literal one.
Redirects are never followed: a 3xx is a failed attempt.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from videoimport_notifier.domain import AttemptResult, http_error, parse_retry_after

USER_AGENT = "videoimport-notifier/1"


class BlockedAddress(OSError):
    """The target is not a globally routable address."""


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(address: str) -> bool:
    """Only globally routable unicast addresses (no loopback, private, link-local…)."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and not is_public(str(inner)):
            return False
    return ip.is_global and not ip.is_multicast


def guarded_socket_factory(allow_private: bool) -> Any:
    def factory(addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        host = str(sockaddr[0])
        if not allow_private and not is_public(host):
            raise BlockedAddress(errno.EACCES, f"refusing to connect to non-public address {host}")
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "invalid webhook url"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "invalid webhook url"
    return None


class WebhookSender:
    def __init__(self, *, allow_private: bool, timeout: float) -> None:
        self._allow_private = allow_private
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(socket_factory=guarded_socket_factory(self._allow_private))
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            trust_env=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
        if self._session is None:
            raise RuntimeError("WebhookSender.start() was not called")
        problem = url_problem(url)
        if problem is not None:
            return AttemptResult(error=problem, permanent=True)
        all_headers = {
            **headers,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        try:
            async with self._session.post(
                url, data=body, headers=all_headers, allow_redirects=False
            ) as response:
                status = response.status
                ok = 200 <= status < 300
                return AttemptResult(
                    status=status,
                    error=None if ok else http_error(status),
                    retry_after=None
                    if ok
                    else parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC)),
                )
        except aiohttp.ClientConnectorError as exc:
            blocked = isinstance(exc.os_error, BlockedAddress)
            return AttemptResult(error=f"connection failed: {exc.os_error}", permanent=blocked)
        except TimeoutError:
            return AttemptResult(error=f"no response within {self._timeout:g} s")
        except aiohttp.ClientError as exc:
            return AttemptResult(error=f"request failed: {exc!r}")
