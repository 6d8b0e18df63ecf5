"""Fetch a user-supplied URL without letting it reach internal networks (SSRF).

Every address the connector may connect to passes ``SafeResolver``; IP
literals, which aiohttp never hands to a resolver, are checked before each
request; and the peer of the opened connection is checked once more. Redirects
are followed by hand (at most ``max_redirects``) so each hop goes through the
same checks.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from videoimport_ingester.addresses import address_problem, is_public, parse_address

REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
CHUNK_SIZE: Final = 256 * 1024
_HEADERS: Final = {
    "Accept": "video/*, application/octet-stream;q=0.5, */*;q=0.1",
    # The stored object must be the served bytes, not a compressed transfer form.
    "Accept-Encoding": "identity",
}


class FetchError(Exception):
    """The source could not deliver; ``transient`` ones are worth another attempt."""

    def __init__(
        self, code: str, reason: str, *, transient: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.transient = transient
        self.retry_after = retry_after


class ForbiddenAddress(Exception):
    """Raised by the resolver; not an OSError, so aiohttp lets it through unwrapped."""


class SafeResolver(AbstractResolver):
    """Hands the connector only the resolved addresses it may connect to."""

    def __init__(self, *, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self._allow_private = allow_private
        self._inner = inner if inner is not None else aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._allow_private:
            return results
        allowed = [r for r in results if _public_text(r["host"])]
        if not allowed:
            found = ", ".join(sorted({r["host"] for r in results})) or "nothing"
            raise ForbiddenAddress(f"{host} resolves to {found}, not a public address")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _public_text(text: str) -> bool:
    address = parse_address(text)
    return address is not None and is_public(address)


def make_session(*, allow_private: bool) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        resolver=SafeResolver(allow_private=allow_private), limit=0, ttl_dns_cache=60
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
        self._response = response

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK_SIZE):
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
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
    async def open(self, url: str) -> AsyncIterator[Body]:
        """The body behind ``url`` after redirects; raises ``FetchError``."""
        current = checked_url(url, allow_private=self._allow_private)
        for _ in range(self._max_redirects + 1):
            response = await self._request(current)
            try:
                if response.status in REDIRECTS:
                    current = redirect_target(
                        current,
                        response.status,
                        response.headers.get("Location"),
                        allow_private=self._allow_private,
                    )
                    continue
                _check_status(response)
                yield Body(response, str(current))
                return
            finally:
                response.release()
        raise FetchError("too_many_redirects", f"more than {self._max_redirects} redirects")

    async def _request(self, url: URL) -> aiohttp.ClientResponse:
        try:
            response = await self._session.get(
                url, allow_redirects=False, timeout=self._timeout, headers=_HEADERS
            )
        except ForbiddenAddress as exc:
            raise FetchError("forbidden_address", f"forbidden address: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc) from exc
        try:
            self._check_peer(response)
        except BaseException:
            response.release()
            raise
        return response

    def _check_peer(self, response: aiohttp.ClientResponse) -> None:
        # Defence in depth: the resolver already filtered, this sees the socket.
        connection = response.connection
        transport = connection.transport if connection is not None else None
        peer = transport.get_extra_info("peername") if transport is not None else None
        if peer is None:
            return
        problem = address_problem(str(peer[0]), allow_private=self._allow_private)
        if problem is not None:
            raise FetchError("forbidden_address", f"forbidden address: {problem}")


def redirect_target(current: URL, status: int, location: str | None, *, allow_private: bool) -> URL:
    """Where a redirect leads, checked like the first URL; raises ``FetchError``."""
    if not location:
        raise FetchError("download_failed", f"download failed: HTTP {status} without Location")
    try:
        target = current.join(URL(location))
    except ValueError as exc:
        raise FetchError("invalid_url", f"invalid redirect target {location!r}") from exc
    return checked_url(str(target), allow_private=allow_private)


def checked_url(url: str, *, allow_private: bool) -> URL:
    """``url`` parsed, if it may be fetched at all; raises ``FetchError``."""
    try:
        parsed = URL(url)
    except ValueError as exc:
        raise FetchError("invalid_url", f"invalid url {url!r}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError("invalid_url", f"not an http(s) url: {url!r}")
    if parse_address(parsed.host) is not None:
        problem = address_problem(parsed.host, allow_private=allow_private)
        if problem is not None:
            raise FetchError("forbidden_address", f"forbidden address: {problem}")
    return parsed


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _check_status(response: aiohttp.ClientResponse) -> None:
    status = response.status
    if 200 <= status < 300:
        return
    transient = status >= 500 or status in (408, 429)
    raise FetchError(
        "download_failed",
        f"download failed: HTTP {status}",
        transient=transient,
        retry_after=_retry_after(response) if transient else None,
    )


def _transport_error(exc: BaseException) -> FetchError:
    if isinstance(exc, TimeoutError):
        return FetchError("timeout", "timeout: the source stopped sending", transient=True)
    if isinstance(exc, aiohttp.InvalidURL):
        return FetchError("invalid_url", f"invalid url: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return FetchError("download_failed", f"download failed: {exc}", transient=True)
    detail = str(exc) or type(exc).__name__
    return FetchError("download_failed", f"download failed: {detail}", transient=True)
