"""POST a webhook without letting a user-supplied URL reach internal services.

The policy is the shared one (``videoimport_eventlog.addresses``), applied in
layers: the URL's host is judged before anything is sent (IP literals in every
form a resolver reads, ``2130706433`` or ``0x7f.1`` too, which are then
connected to as the dotted address that was judged; ``localhost`` names; hosts
that are neither an address nor a name); the resolver hands on only the public
addresses a name resolves to; and the socket factory checks the very address the
connection is made to, so a name that re-resolves to a private address is
refused as well. A refused attempt is permanent; its error names the host as
written, never what it resolved to (that is logged). Redirects are never
followed: a 3xx is a failed attempt.

``post`` never raises for anything the receiver, the network or the URL does:
every failure becomes an ``AttemptResult`` with a short, printable error.
"""

from __future__ import annotations

import errno
import ipaddress
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver
from videoimport_eventlog.addresses import (
    FORBIDDEN_ADDRESS,
    host_refusal,
    parse_address,
)
from videoimport_eventlog.faults import describe
from videoimport_eventlog.guarded_http import PublicResolver as SharedResolver
from videoimport_eventlog.guarded_http import guarded_socket_factory as shared_socket_factory
from videoimport_eventlog.retry import parse_retry_after
from yarl import URL

from videoimport_notifier.domain import AttemptResult, http_error, short_error

USER_AGENT = "videoimport-notifier/1"

log = structlog.get_logger(__name__)


class BlockedAddress(OSError):
    """The socket factory's refusal: the address is not globally routable.

    Its text names the address; it is logged, never recorded as the error.
    """


class ForbiddenName(Exception):
    """The resolver's refusal: the name resolves to no public address. Not an
    OSError, so aiohttp lets it through unwrapped."""


def forbidden_error(host: str) -> str:
    """The recorded error of a refused target: the host as written, nothing more."""
    return short_error(f"{FORBIDDEN_ADDRESS}: refusing to connect to non-public address {host}")


def _refused_name(host: str) -> ForbiddenName:
    return ForbiddenName(host)


def _refused_address(address: str) -> BlockedAddress:
    return BlockedAddress(errno.EACCES, f"refusing to connect to non-public address {address}")


class PublicResolver(SharedResolver):
    """Hands the connector only the public addresses a name resolves to."""

    def __init__(self, *, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        super().__init__(allow_private=allow_private, refuse=_refused_name, inner=inner)


def guarded_socket_factory(allow_private: bool) -> Any:
    """Makes the connector's sockets, refusing a non-public address."""
    return shared_socket_factory(allow_private, _refused_address)


def make_session(*, allow_private: bool, timeout: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        resolver=PublicResolver(allow_private=allow_private),
        socket_factory=guarded_socket_factory(allow_private),
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout),
        trust_env=False,  # a proxy would connect on our behalf, past every check here
    )


def url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "invalid webhook url"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "invalid webhook url"
    return None


def checked_target(url: str, *, allow_private: bool) -> URL | AttemptResult:
    """``url`` as it will be connected to, or the permanent failed attempt it is.

    The host is read as aiohttp reads it (yarl); a numeric IPv4 host
    (``0x7f.1``) becomes the dotted address that was judged.
    """
    problem = url_problem(url)
    if problem is not None:
        return AttemptResult(error=problem, permanent=True)
    try:
        parsed = URL(url)
        parsed.host  # noqa: B018 - decodes punycode: a bad "xn--" label raises here
        host = parsed.raw_host
    except Exception as exc:  # ValueError, UnicodeError: whatever parsing raises
        return AttemptResult(
            error=short_error(f"invalid webhook url: {describe(exc)}"), permanent=True
        )
    if not host:
        return AttemptResult(error="invalid webhook url", permanent=True)
    refusal = host_refusal(host, allow_private=allow_private)
    if refusal is not None and refusal.code == "forbidden_address":
        return AttemptResult(error=forbidden_error(host), permanent=True)
    if refusal is not None:
        reason = refusal.reason.removeprefix("invalid url: ")
        return AttemptResult(error=short_error(f"invalid webhook url: {reason}"), permanent=True)
    address = parse_address(host)
    if isinstance(address, ipaddress.IPv4Address) and host != str(address):
        return parsed.with_host(str(address))  # never let the resolver read it its own way
    return parsed


def failure(exc: BaseException, timeout: float, *, host: str | None = None) -> AttemptResult:
    """What an exception of one POST (to ``host``, as written) means for the delivery."""
    if isinstance(exc, ForbiddenName):
        return AttemptResult(error=forbidden_error(host or str(exc)), permanent=True)
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, BlockedAddress):
            return AttemptResult(error=forbidden_error(host or exc.host), permanent=True)
        return AttemptResult(error=short_error(f"connection failed: {exc.os_error}"))
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
        self._session = make_session(allow_private=self._allow_private, timeout=self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
        if self._session is None:
            raise RuntimeError("WebhookSender.start() was not called")
        target = checked_target(url, allow_private=self._allow_private)
        if isinstance(target, AttemptResult):
            if target.error is not None and target.error.startswith(FORBIDDEN_ADDRESS):
                log.warning("forbidden webhook address", url=url[:200])
            return target
        all_headers = {
            **headers,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        try:
            async with self._session.post(
                target, data=body, headers=all_headers, allow_redirects=False
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
            return failure(exc, self._timeout, host=URL(url).raw_host)
