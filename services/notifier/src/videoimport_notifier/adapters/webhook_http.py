"""POST a webhook without letting a user-supplied URL reach internal services.

The address check runs in the socket factory, i.e. on the very address the
connection is made to after DNS resolution, so a name that resolves (or
re-resolves) to a private address is refused as well as a literal one. The
policy is the shared one (``videoimport_eventlog.addresses``). Redirects are
never followed: a 3xx is a failed attempt.

``post`` never raises for anything the receiver, the network or the URL does:
every failure becomes an ``AttemptResult`` with a short, printable error.
"""

from __future__ import annotations

import errno
import socket
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from videoimport_eventlog.addresses import address_problem
from videoimport_eventlog.faults import describe
from videoimport_eventlog.retry import parse_retry_after

from videoimport_notifier.domain import AttemptResult, http_error, short_error

USER_AGENT = "videoimport-notifier/1"


class BlockedAddress(OSError):
    """The target is not a globally routable address."""


def guarded_socket_factory(allow_private: bool) -> Any:
    def factory(addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        host = str(sockaddr[0])
        if address_problem(host, allow_private=allow_private) is not None:
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


def failure(exc: BaseException, timeout: float) -> AttemptResult:
    """What an exception of one POST means for the delivery."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        blocked = isinstance(exc.os_error, BlockedAddress)
        return AttemptResult(
            error=short_error(f"connection failed: {exc.os_error}"), permanent=blocked
        )
    if isinstance(exc, TimeoutError):
        return AttemptResult(error=f"no response within {timeout:g} s")
    if isinstance(exc, aiohttp.InvalidURL | UnicodeError):
        # Retrying cannot make the URL (or its host name, e.g. a label over
        # 63 characters) valid.
        return AttemptResult(
            error=short_error(f"invalid webhook url: {describe(exc)}"), permanent=True
        )
    if isinstance(exc, aiohttp.ClientError):
        return AttemptResult(error=short_error(f"request failed: {describe(exc)}"))
    # Anything else (a parser or library surprise) is retried like a network
    # fault; the schedule bounds how often.
    return AttemptResult(error=short_error(f"request failed: {describe(exc)}"))


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
                if 200 <= status < 300:
                    return AttemptResult(status=status)
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), datetime.now(UTC)
                )
                return AttemptResult(
                    status=status, error=http_error(status), retry_after=retry_after
                )
        except Exception as exc:
            return failure(exc, self._timeout)
