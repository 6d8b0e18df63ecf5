"""Ask a video's source what an import would get, without downloading it (dry run).

A ``HEAD`` first: a source that cannot be reached, or whose headers already
refuse the video (its type, its size), is answered from it. Otherwise, and when
``HEAD`` is refused or fails (405, 501, or a URL signed for ``GET`` only), one
ranged ``GET`` (``Range: bytes=0-4095``) reads at most ``HEAD_BYTES`` so the
first bytes can be sniffed as the download would; its answer decides.

The address policy is the fetchers' own (``guarded_http``): the URL and every
redirect target are judged before any lookup, the resolver hands the connector
only addresses of the scope, the socket factory refuses any other, and the
peer is checked once more. Redirects are followed by hand, at most
``MAX_REDIRECTS``. Bounds: ``timeout`` per URL (everything included), at most
``request_probes`` URLs at once per dry run and ``process_probes`` for the whole
process, and ``deadline`` per dry run, after which unprobed URLs are
``NotProbed``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Final

import aiohttp
import msgspec
import structlog
from aiohttp.abc import AbstractResolver
from videoimport_eventlog.addresses import AddressScope, HostRefusal, forbidden_reason
from videoimport_eventlog.guarded_http import (
    PublicResolver,
    fetchable_url,
    guarded_socket_factory,
    shown_url,
    text_in_scope,
)
from yarl import URL

from videoimport_api.domain.dry_run import (
    NotProbed,
    ProbeFailed,
    ProbeOutcome,
    SourceAnswer,
    source_problem,
)

MAX_REDIRECTS: Final = 5
"""As many as the ingester follows."""
HEAD_BYTES: Final = 4096
REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_HEADERS: Final = {
    "Accept": "video/*, application/octet-stream;q=0.5, */*;q=0.1",
    "Accept-Encoding": "identity",
}
_RANGE: Final = {**_HEADERS, "Range": f"bytes=0-{HEAD_BYTES - 1}"}
_CONTENT_RANGE: Final = re.compile(r"bytes\s+\d+-\d+/(\d+)", re.ASCII)

log = structlog.get_logger(__name__)


class ForbiddenAddress(Exception):
    """Raised by the resolver and the socket factory; not an OSError, so aiohttp lets
    it through unwrapped (and tries no other address)."""


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    status: int
    answer: SourceAnswer


class UrlProbe:
    """One per API process: its session, and the slots all dry runs share."""

    def __init__(
        self,
        *,
        scope: AddressScope,
        timeout: float,
        deadline: float,
        request_probes: int,
        process_probes: int,
        max_bytes: int,
        resolver: AbstractResolver | None = None,
    ) -> None:
        """``resolver`` answers name lookups before the scope filters them (default:
        the system's)."""
        self._scope: AddressScope = scope
        self._timeout = timeout
        self._deadline = deadline
        self._request_probes = request_probes
        self._slots = asyncio.Semaphore(process_probes)
        self._max_bytes = max_bytes
        connector = aiohttp.TCPConnector(
            resolver=PublicResolver(scope=scope, refuse=self._refused, inner=resolver),
            socket_factory=guarded_socket_factory(False, self._refused, scope=scope),
            limit=process_probes,
            ttl_dns_cache=60,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,  # a proxy would connect on our behalf, past every check here
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
        )

    async def close(self) -> None:
        await self._session.close()

    @property
    def _timed_out(self) -> str:
        return f"timeout: no answer within {self._timeout:g} s"

    def _refused(self, host: str) -> ForbiddenAddress:
        return ForbiddenAddress(forbidden_reason(host, self._scope))

    async def probe_all(self, urls: list[str]) -> dict[str, ProbeOutcome]:
        """Every URL's outcome; those not probed within the deadline are ``NotProbed``."""
        outcomes: dict[str, ProbeOutcome] = {}
        request_slots = asyncio.Semaphore(self._request_probes)

        async def one(url: str) -> None:
            async with request_slots, self._slots:
                outcomes[url] = await self.probe(url)

        tasks = [asyncio.create_task(one(url)) for url in urls]
        try:
            if tasks:
                await asyncio.wait(tasks, timeout=self._deadline)
        finally:  # the deadline, or the client went away: stop whatever still runs
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        unchecked = NotProbed(
            reason=f"not checked: the dry run probes URLs for at most {self._deadline:g} s"
        )
        return {url: outcomes.get(url, unchecked) for url in urls}

    async def probe(self, url: str) -> SourceAnswer | ProbeFailed:
        """What the source answers for ``url``; never raises (but cancellation)."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._probe(url)
        except TimeoutError:
            return ProbeFailed(code="timeout", reason=self._timed_out)
        except Exception as exc:  # not a known transport failure: say so, never a 500
            log.warning("dry run probe failed", error=type(exc).__name__, exc_info=exc)
            return ProbeFailed(
                code="download_failed", reason=f"download failed: {type(exc).__name__}"
            )

    async def _probe(self, url: str) -> SourceAnswer | ProbeFailed:
        head = await self._ask(url, "HEAD")
        if isinstance(head, ProbeFailed):
            return head
        if 200 <= head.status < 300 and source_problem(head.answer, self._max_bytes):
            return head.answer
        got = await self._ask(url, "GET")
        if isinstance(got, ProbeFailed):
            return got
        if 200 <= got.status < 300:
            return got.answer
        if got.status == 416:  # no byte 0: the body is empty
            return SourceAnswer(content_type=None, size=0, head=b"")
        return ProbeFailed(code="download_failed", reason=f"download failed: HTTP {got.status}")

    async def _ask(self, url: str, method: str) -> Reply | ProbeFailed:
        """The first answer that is no redirect, after following redirects by hand."""
        target = fetchable_url(url, self._scope)
        for _ in range(MAX_REDIRECTS + 1):
            if isinstance(target, HostRefusal):
                return ProbeFailed(code=target.code, reason=target.reason)
            try:
                async with self._session.request(
                    method,
                    target,
                    allow_redirects=False,
                    headers=_RANGE if method == "GET" else _HEADERS,
                ) as response:
                    self._check_peer(response, target)
                    if response.status not in REDIRECTS:
                        return await _reply(response, read=method == "GET")
                    location = response.headers.get("Location")
            except ForbiddenAddress:
                host = target.raw_host or ""
                return ProbeFailed(
                    code="forbidden_address", reason=forbidden_reason(host, self._scope)
                )
            except TimeoutError:  # aiohttp's own: connecting, or a silent source
                return ProbeFailed(code="timeout", reason=self._timed_out)
            except (aiohttp.InvalidURL, ValueError) as exc:  # includes UnicodeError (IDNA)
                return ProbeFailed(code="invalid_url", reason=f"invalid url: {_detail(exc)}")
            except (aiohttp.ClientError, OSError) as exc:
                return ProbeFailed(
                    code="download_failed", reason=f"download failed: {_detail(exc)}"
                )
            if not location:
                return ProbeFailed(
                    code="download_failed",
                    reason=f"download failed: HTTP {response.status} without Location",
                )
            target = _redirected(target, location, self._scope)
        return ProbeFailed(code="too_many_redirects", reason=f"more than {MAX_REDIRECTS} redirects")

    def _check_peer(self, response: aiohttp.ClientResponse, url: URL) -> None:
        # Defence in depth: the resolver and the socket factory already refused.
        if self._scope == "any":
            return
        connection = response.connection
        transport = connection.transport if connection is not None else None
        peer = transport.get_extra_info("peername") if transport is not None else None
        if peer is None or text_in_scope(str(peer[0]), self._scope):
            return
        log.warning("forbidden address", host=url.raw_host, peer=str(peer[0]))
        raise ForbiddenAddress(forbidden_reason(url.raw_host or "", self._scope))


def _redirected(current: URL, location: str, scope: AddressScope) -> URL | HostRefusal:
    try:
        target = str(current.join(URL(location)))
    except (ValueError, TypeError):
        return HostRefusal("invalid_url", f"invalid redirect target {shown_url(location)}")
    return fetchable_url(target, scope)


async def _reply(response: aiohttp.ClientResponse, *, read: bool) -> Reply:
    """The status and what the headers (and, when ``read``, the first bytes) say."""
    try:
        size = response.content_length
    except ValueError:  # not a number: as good as none
        size = None
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        size = int(match.group(1)) if match else None
    head = None
    if read and 200 <= response.status < 300:
        head = await _first_bytes(response)
    answer = SourceAnswer(content_type=response.headers.get("Content-Type"), size=size, head=head)
    return Reply(status=response.status, answer=answer)


async def _first_bytes(response: aiohttp.ClientResponse) -> bytes:
    """At most ``HEAD_BYTES`` of the body: a source ignoring the range is not read on."""
    head = bytearray()
    while len(head) < HEAD_BYTES:
        chunk = await response.content.read(HEAD_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    return bytes(head)


def _detail(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
