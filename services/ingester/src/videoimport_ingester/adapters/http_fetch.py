"""Fetch a user-supplied URL without letting it reach internal networks (SSRF).

The policy is the shared one (``videoimport_eventlog.addresses``), applied in
layers: the URL's host is judged before any request (IP literals in every form a
resolver reads, ``2130706433`` or ``0x7f.1`` too, which are then connected to
as the dotted address that was judged; ``localhost`` names; hosts that are
neither an address nor a name); every address a name resolves to passes
``SafeResolver``; every socket is made by a factory that refuses a non-public
address; and the peer of the opened connection is checked once more. Redirects
are followed by hand (at most ``max_redirects``) so each hop goes through the
same checks. A refusal's reason names the host as written, never what it
resolved to; the resolved addresses are logged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver
from videoimport_eventlog.addresses import (
    FORBIDDEN_ADDRESS,
    forbidden_reason,
    host_refusal,
    parse_address,
)
from videoimport_eventlog.addresses import valid_hostname as valid_hostname
from videoimport_eventlog.guarded_http import PublicResolver, public_text
from videoimport_eventlog.guarded_http import guarded_socket_factory as shared_socket_factory
from videoimport_eventlog.retry import parse_retry_after
from videoimport_events import FAILURE_CODES, FailureCode, bounded_reason
from yarl import URL

REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
CHUNK_SIZE: Final = 256 * 1024
_HEADERS: Final = {
    "Accept": "video/*, application/octet-stream;q=0.5, */*;q=0.1",
    # The stored object must be the served bytes, not a compressed transfer form.
    "Accept-Encoding": "identity",
}
SHOWN_URL_CHARS: Final = 200
"""Of a URL quoted in a reason: enough to recognise it, never the whole of a huge one."""

log = structlog.get_logger(__name__)


class FetchError(Exception):
    """The source could not deliver; ``transient`` ones are worth another attempt.

    ``code`` is one of ``FAILURE_CODES``; ``reason`` is bounded (``bounded_reason``).
    """

    def __init__(
        self,
        code: FailureCode,
        reason: str,
        *,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        if code not in FAILURE_CODES:
            raise ValueError(f"unknown failure code {code!r}")
        reason = bounded_reason(reason)
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.transient = transient
        self.retry_after = retry_after


class ForbiddenAddress(Exception):
    """Raised by the resolver and the socket factory; not an OSError, so aiohttp and
    aiohappyeyeballs let it through unwrapped (and try no other address).

    The message names the host as written (or nothing), never a resolved address.
    """


def _refused_name(host: str) -> ForbiddenAddress:
    return ForbiddenAddress(forbidden_reason(host))


def _refused_address(address: str) -> ForbiddenAddress:
    return ForbiddenAddress(FORBIDDEN_ADDRESS)


class SafeResolver(PublicResolver):
    """Hands the connector only the resolved addresses it may connect to."""

    def __init__(self, *, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        super().__init__(allow_private=allow_private, refuse=_refused_name, inner=inner)


def guarded_socket_factory(allow_private: bool) -> Any:
    """Makes the connector's sockets, refusing a non-public address."""
    return shared_socket_factory(allow_private, _refused_address)


def make_session(*, allow_private: bool) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        resolver=SafeResolver(allow_private=allow_private),
        socket_factory=guarded_socket_factory(allow_private),
        limit=0,
        ttl_dns_cache=60,
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,  # a proxy would connect on our behalf, past every check here
        auto_decompress=False,  # store the bytes exactly as served
    )


class Body:
    """An open 2xx response: its declared type and its bytes, chunk by chunk."""

    def __init__(self, response: aiohttp.ClientResponse, url: str) -> None:
        self.url = url
        self.content_type: str | None = response.headers.get("Content-Type")
        self.content_length: int | None = response.content_length
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        """Case-insensitive."""
        self._response = response

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK_SIZE):
                yield chunk
        except Exception as exc:
            raise _transport_error(exc) from exc


class SafeFetcher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        allow_private: bool,
        connect_timeout: float,
        read_timeout: float,
        max_redirects: int = 5,
    ) -> None:
        self._session = session
        self._allow_private = allow_private
        # sock_read bounds every silence: waiting for the headers and between chunks.
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=connect_timeout,
            sock_connect=connect_timeout,
            sock_read=read_timeout,
        )
        self._max_redirects = max_redirects

    @asynccontextmanager
    async def open(self, url: str, headers: Mapping[str, str] | None = None) -> AsyncIterator[Body]:
        """The body behind ``url`` after redirects; raises ``FetchError`` (only).

        ``headers`` are added to every hop's request (a ``Range``); they cannot
        replace the fixed ones. What the caller raises inside the block (S3
        errors) passes through as is.
        """
        sent = _HEADERS if headers is None else {**headers, **_HEADERS}
        current = checked_url(url, allow_private=self._allow_private)
        for _ in range(self._max_redirects + 1):
            response = await self._request(current, sent)
            try:
                if response.status in REDIRECTS:
                    current = redirect_target(
                        current,
                        response.status,
                        response.headers.get("Location"),
                        allow_private=self._allow_private,
                    )
                    continue
                check_status(response.status, response.headers)
                yield _opened(response, current)
                return
            finally:
                response.release()
        raise FetchError("too_many_redirects", f"more than {self._max_redirects} redirects")

    async def _request(self, url: URL, headers: Mapping[str, str]) -> aiohttp.ClientResponse:
        try:
            response = await self._session.get(
                url, allow_redirects=False, timeout=self._timeout, headers=headers
            )
        except ForbiddenAddress as exc:
            raise FetchError("forbidden_address", forbidden_reason(url.raw_host or "")) from exc
        except Exception as exc:  # aiohttp, the resolver, IDNA: all of it is the source's
            raise _transport_error(exc) from exc
        try:
            self._check_peer(response, url)
        except FetchError:
            response.release()
            raise
        except BaseException as exc:
            response.release()
            if not isinstance(exc, Exception):
                raise
            raise FetchError("download_failed", f"download failed: {_detail(exc)}") from exc
        return response

    def _check_peer(self, response: aiohttp.ClientResponse, url: URL) -> None:
        # Defence in depth: the resolver and the socket factory already refused,
        # this sees the socket.
        if self._allow_private:
            return
        connection = response.connection
        transport = connection.transport if connection is not None else None
        peer = transport.get_extra_info("peername") if transport is not None else None
        if peer is None or public_text(str(peer[0])):
            return
        log.warning("forbidden address", host=url.raw_host, peer=str(peer[0]))
        raise FetchError("forbidden_address", forbidden_reason(url.raw_host or ""))


def _opened(response: aiohttp.ClientResponse, url: URL) -> Body:
    try:
        return Body(response, str(url))
    except Exception as exc:  # e.g. a Content-Length that is not a number
        raise FetchError("download_failed", f"download failed: {_detail(exc)}") from exc


def redirect_target(current: URL, status: int, location: str | None, *, allow_private: bool) -> URL:
    """Where a redirect leads, checked like the first URL; raises ``FetchError`` (only)."""
    if not location:
        raise FetchError("download_failed", f"download failed: HTTP {status} without Location")
    try:
        target = str(current.join(URL(location)))
    except Exception as exc:
        raise FetchError("invalid_url", f"invalid redirect target {shown(location)}") from exc
    return checked_url(target, allow_private=allow_private)


def checked_url(url: str, *, allow_private: bool) -> URL:
    """``url`` parsed, if it may be fetched at all; raises ``FetchError`` (only)."""
    try:
        return _checked_url(url, allow_private=allow_private)
    except FetchError:
        raise
    except Exception as exc:  # ValueError, UnicodeError (IDNA) and whatever else parsing raises
        raise FetchError("invalid_url", f"invalid url {shown(url)}: {_detail(exc)}") from exc


def _checked_url(url: str, *, allow_private: bool) -> URL:
    parsed = URL(url)
    # ``host`` decodes punycode: a bad "xn--" label raises here, not in the connector.
    if parsed.scheme not in ("http", "https") or not parsed.host or not parsed.raw_host:
        raise FetchError("invalid_url", f"not an http(s) url: {shown(url)}")
    refusal = host_refusal(parsed.raw_host, allow_private=allow_private)
    if refusal is not None:
        raise FetchError(refusal.code, refusal.reason)
    address = parse_address(parsed.raw_host)
    if isinstance(address, ipaddress.IPv4Address) and parsed.raw_host != str(address):
        # 0x7f.1, 2130706433, 10.0.0.1.: connect to exactly the address judged,
        # never let the resolver read the host its own way.
        return parsed.with_host(str(address))
    return parsed


def shown(url: str) -> str:
    """``url`` quoted for a reason, cut to ``SHOWN_URL_CHARS``."""
    if len(url) > SHOWN_URL_CHARS:
        url = url[: SHOWN_URL_CHARS - 1] + "…"
    return repr(url)


def check_status(status: int, headers: Mapping[str, str]) -> None:
    """Nothing for a 2xx; otherwise the ``FetchError`` the status means."""
    if 200 <= status < 300:
        return
    transient = status >= 500 or status in (408, 429)
    retry_after = None
    if transient:
        retry_after = parse_retry_after(headers.get("Retry-After"), datetime.now(UTC))
    raise FetchError(
        "download_failed",
        f"download failed: HTTP {status}",
        transient=transient,
        retry_after=retry_after,
    )


def _detail(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _transport_error(exc: BaseException) -> FetchError:
    """What went wrong talking to the source, classified (reason bounded by FetchError)."""
    if isinstance(exc, TimeoutError):
        return FetchError("timeout", "timeout: the source stopped sending", transient=True)
    if isinstance(exc, aiohttp.InvalidURL | ValueError):  # includes UnicodeError (IDNA)
        return FetchError("invalid_url", f"invalid url: {_detail(exc)}")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return FetchError("download_failed", f"download failed: {_detail(exc)}", transient=True)
    # Not a known transport failure: report it, but do not hammer the source again.
    return FetchError("download_failed", f"download failed: {type(exc).__name__}")
