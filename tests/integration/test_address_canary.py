"""Both real fetchers against a canary: no corpus URL may make a connection.

Every entry of ``tests/address_corpus.py`` that is refused and would land on this
machine (loopback, ``0.0.0.0``/``::``, mapped loopback, ``localhost`` names, every
numeric spelling of them) and every invalid host goes through the ingester's
``SafeFetcher`` on ``make_session`` and the notifier's ``WebhookSender``, both
with ``allow_private=False``, on the canary's port and on the default port.
Each must fail (``FetchError`` ``forbidden_address``/``invalid_url``; a permanent
failed ``AttemptResult``) and nothing may connect.

What sees a connection:

* canary TCP listeners on 127.0.0.1, 127.1.2.3, 127.255.255.254 and ::1 (one port,
  and port 80 where it can be bound) record every accepted connection;
* an audit hook (``sys.addaudithook``) records every ``socket.connect`` and
  ``socket.getaddrinfo`` made while a check runs, whatever the port.

Network safety: the hook also *refuses* a connect to anything but loopback and a
lookup of anything but a numeric host or a name in /etc/hosts (consulted before
DNS), so even a broken policy sends nothing off this machine and asks no DNS
server. Names that resolve to loopback come only from /etc/hosts; no external
name (nothing like ``127.0.0.1.nip.io``) is ever looked up. Positive controls
show the canary does see a connection when private URLs are allowed.

Redirects: a public origin is impossible offline, so the origin is a loopback
server reached with ``allow_private=True`` and the hop is judged by the real
``redirect_target`` with ``allow_private=False`` (the notifier never follows one).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from videoimport_eventlog.addresses import is_localhost_name, parse_address
from videoimport_ingester.adapters import http_fetch
from videoimport_ingester.adapters.http_fetch import FetchError, SafeFetcher
from videoimport_ingester.adapters.http_fetch import make_session as ingester_session
from videoimport_notifier.adapters.webhook_http import WebhookSender
from videoimport_notifier.adapters.webhook_http import make_session as notifier_session
from yarl import URL

from tests.address_corpus import CORPUS, FORBIDDEN, INVALID, Case

pytestmark = pytest.mark.integration

CANARY_HOSTS = ["127.0.0.1", "127.1.2.3", "127.255.255.254", "::1"]
TIMEOUT = 2.0


# --- what counts as this machine ---------------------------------------------------------


def _lands_here(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, or unspecified (which Linux connects to this machine)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _system_reading(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address the C library reads in ``host`` without any lookup, if any."""
    if any(ch.isspace() for ch in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        pass
    try:
        return ipaddress.IPv6Address(socket.inet_pton(socket.AF_INET6, host.split("%")[0]))
    except OSError:
        return None


def _hosts_file_names() -> dict[str, set[str]]:
    """Names in /etc/hosts and their addresses, when it is consulted before DNS."""
    try:
        nsswitch = Path("/etc/nsswitch.conf").read_text()
        hosts = Path("/etc/hosts").read_text()
    except OSError:
        return {}
    sources = next(
        (
            line.split(":", 1)[1].split()
            for line in nsswitch.splitlines()
            if line.startswith("hosts:")
        ),
        ["files", "dns"],
    )
    if not sources or sources[0] != "files":
        return {}
    names: dict[str, set[str]] = {}
    for line in hosts.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            names.setdefault(name.lower(), set()).add(fields[0])
    return names


def _resolves_here(addresses: set[str]) -> bool:
    """Only local addresses, and an IPv4 one: an IPv6-only entry may be skipped
    (AI_ADDRCONFIG) and the lookup passed on to DNS."""
    parsed = [parse_address(a) for a in addresses]
    return all(a is not None and _lands_here(a) for a in parsed) and any(
        isinstance(a, ipaddress.IPv4Address) for a in parsed
    )


HOSTS_FILE = {
    name: addresses for name, addresses in _hosts_file_names().items() if _resolves_here(addresses)
}
"""Names this machine resolves to loopback from /etc/hosts alone, never asking DNS."""
LOOPBACK_NAMES = sorted(name for name in HOSTS_FILE if not is_localhost_name(name))
"""Those the name rule does not catch (``runsc``, ``vm``, the machine's own name):
they reach the resolvers."""


def _url_host(case: Case) -> str:
    host = URL(case.url(1)).raw_host
    assert host is not None
    return host


def _reaches_this_machine(case: Case) -> bool:
    if case.verdict not in (FORBIDDEN, INVALID):
        return False
    host = _url_host(case)
    if is_localhost_name(host):
        return True
    readings = [r for r in (_system_reading(host), parse_address(host)) if r is not None]
    if not readings:
        return case.verdict == INVALID  # no address at all: must never reach a resolver
    return all(_lands_here(r) for r in readings)


LOCAL_CASES = [case for case in CORPUS if _reaches_this_machine(case)]


def test_the_canary_covers_what_it_should() -> None:
    targets = {case.target for case in LOCAL_CASES}
    for expected in (
        "127.0.0.1",
        "0.0.0.0",
        "2130706433",
        "017700000001",
        "0x7f.1",
        "127.1",
        "127.0.0.1.",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:7f00:1",
        "localhost",
        "localhost.",
        "video.localhost",
        "1.2.3.4.5",
        "http://user:pw@127.0.0.1:{port}/v.mp4",
    ):
        assert expected in targets
    # Nothing that could leave this machine is ever sent.
    for outside in ("10.0.0.1", "169.254.169.254", "64:ff9b::7f00:1", "127.0.0.1.nip.io"):
        assert outside not in targets


# --- the audit hook ----------------------------------------------------------------------


@dataclass
class Audit:
    active: bool = False
    connects: list[tuple[str, int]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "socket.connect":
            address = args[1]
            if not isinstance(address, tuple):
                return  # a unix socket
            host, port = str(address[0]), int(address[1])
            with self.lock:
                self.connects.append((host, port))
            literal = _system_reading(host)
            if literal is None or not _lands_here(literal):
                raise PermissionError(errno.EACCES, f"canary: no connection to {host}")
        elif event == "socket.getaddrinfo":
            host = args[0]
            if isinstance(host, bytes):
                host = host.decode("ascii", "replace")
            if host is None:
                return
            with self.lock:
                self.lookups.append(str(host))
            if _system_reading(str(host)) is None and str(host).lower() not in HOSTS_FILE:
                raise socket.gaierror(socket.EAI_NONAME, f"canary: no DNS lookup of {host}")

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        with self.lock:
            self.connects.clear()
            self.lookups.clear()
        self.active = True
        try:
            yield
        finally:
            self.active = False


_AUDIT = Audit()
_HOOKED = False


@pytest.fixture(scope="module")
def audit() -> Audit:
    global _HOOKED
    if not _HOOKED:  # an audit hook cannot be removed: it stays, inert, for the session
        sys.addaudithook(_AUDIT.hook)
        _HOOKED = True
    return _AUDIT


# --- the canary listeners ----------------------------------------------------------------


@dataclass
class Canary:
    port: int
    ports: set[int]
    seen: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    listening: list[str] = field(default_factory=list)

    def record(self, local: str) -> Any:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.seen.append((local, writer.get_extra_info("peername")))
            writer.close()

        return handle


async def _listen_everywhere(canary: Canary, port: int) -> list[asyncio.Server]:
    servers = []
    for host in CANARY_HOSTS:
        try:
            servers.append(await asyncio.start_server(canary.record(f"{host}:{port}"), host, port))
            canary.listening.append(f"{host}:{port}")
        except OSError:
            if host == "127.0.0.1":
                raise
    return servers


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    servers: list[asyncio.Server] = []
    for _ in range(20):  # one port free on every loopback address
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        found = Canary(port=port, ports={port})
        try:
            servers = await _listen_everywhere(found, port)
            break
        except OSError:
            continue
    else:
        pytest.fail("no free port for the canary")
    try:  # the default port too, where this user may bind it
        servers += await _listen_everywhere(found, 80)
    except OSError:
        pass
    found.ports |= {80, 443}  # the default ports: watched by the audit hook at least
    try:
        yield found
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


def _urls(cases: list[Case], port: int) -> list[tuple[Case, str]]:
    return [(case, case.url(p)) for case in cases for p in (port, None)]


def _assert_nothing_reached(canary: Canary, audit: Audit, hosts: set[str]) -> None:
    assert canary.seen == []
    assert [c for c in audit.connects if c[1] in canary.ports] == []
    assert [c for c in audit.connects if not _lands_here_text(c[0])] == []
    assert [h for h in audit.lookups if h in hosts] == [], "looked up before refusing"


def _lands_here_text(host: str) -> bool:
    address = _system_reading(host)
    return address is not None and _lands_here(address)


@contextlib.asynccontextmanager
async def _ingester(allow_private: bool) -> AsyncIterator[SafeFetcher]:
    async with ingester_session(allow_private=allow_private) as session:
        yield SafeFetcher(
            session, allow_private=allow_private, connect_timeout=TIMEOUT, read_timeout=TIMEOUT
        )


@contextlib.asynccontextmanager
async def _notifier(allow_private: bool) -> AsyncIterator[WebhookSender]:
    sender = WebhookSender(allow_private=allow_private, timeout=TIMEOUT)
    await sender.start()
    try:
        yield sender
    finally:
        await sender.close()


async def _fetch_error(fetcher: SafeFetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        async with fetcher.open(url):
            pytest.fail(f"opened {url}")
    return caught.value


# --- every corpus URL, both fetchers -----------------------------------------------------


async def test_the_ingester_refuses_every_local_corpus_url_without_connecting(
    canary: Canary, audit: Audit
) -> None:
    failures: list[tuple[object, ...]] = []
    async with _ingester(allow_private=False) as fetcher:
        with audit.watching():
            for case, url in _urls(LOCAL_CASES, canary.port):
                error = await _fetch_error(fetcher, url)
                if (error.code, error.transient) != (case.verdict, False):
                    failures.append((url, case.verdict, error.code, error.reason))
    assert failures == []
    _assert_nothing_reached(canary, audit, {_url_host(c) for c in LOCAL_CASES})


async def test_the_notifier_refuses_every_local_corpus_url_without_connecting(
    canary: Canary, audit: Audit
) -> None:
    failures: list[tuple[object, ...]] = []
    async with _notifier(allow_private=False) as sender:
        with audit.watching():
            for case, url in _urls(LOCAL_CASES, canary.port):
                result = await sender.post(url, b"{}", {"webhook-id": "canary"})
                prefix = "forbidden address" if case.verdict == FORBIDDEN else "invalid webhook url"
                error = result.error or ""
                if not (result.permanent and result.status is None and error.startswith(prefix)):
                    failures.append((url, case.verdict, result))
    assert failures == []
    _assert_nothing_reached(canary, audit, {_url_host(c) for c in LOCAL_CASES})


# --- names that resolve to loopback (from /etc/hosts: no DNS) ------------------------------


@pytest.mark.skipif(not LOOPBACK_NAMES, reason="no loopback names in /etc/hosts here")
async def test_names_resolving_to_loopback_are_refused_without_naming_the_address(
    canary: Canary, audit: Audit
) -> None:
    resolved = {a for name in LOOPBACK_NAMES for a in HOSTS_FILE[name]}
    async with _ingester(allow_private=False) as fetcher, _notifier(False) as sender:
        with audit.watching():
            for name in LOOPBACK_NAMES:
                url = f"http://{name}:{canary.port}/v.mp4"
                error = await _fetch_error(fetcher, url)
                assert error.code == "forbidden_address"
                assert error.reason == f"forbidden address: {name} is not a public address"
                result = await sender.post(url, b"{}", {})
                assert result.permanent and result.status is None and result.error is not None
                assert result.error.startswith("forbidden address")
                assert name in result.error
                assert not any(a in f"{error.reason} {result.error}" for a in resolved)
    assert canary.seen == []
    assert [c for c in audit.connects if c[1] in canary.ports] == []
    assert set(LOOPBACK_NAMES) <= set(audit.lookups)  # they did go through the resolvers


# --- defence in depth: the sessions alone, without the URL checks -------------------------


def _connectable(case: Case) -> bool:
    """Hosts the system itself reads as a local address, or resolves from /etc/hosts."""
    host = _url_host(case)
    reading = _system_reading(host)
    if reading is not None:
        return _lands_here(reading)
    return host in HOSTS_FILE


async def test_the_sessions_alone_refuse_what_the_system_would_connect_to(
    canary: Canary, audit: Audit
) -> None:
    cases = [case for case in LOCAL_CASES if _connectable(case)]
    names = [f"http://{name}:{canary.port}/" for name in [*LOOPBACK_NAMES, "localhost"]]
    urls = [url for _, url in _urls(cases, canary.port)]
    urls += [n for n in names if URL(n).raw_host in HOSTS_FILE]
    assert any("0x7f" in url for url in urls) and any("[::ffff:" in url for url in urls)
    async with (
        ingester_session(allow_private=False) as ingest,
        notifier_session(allow_private=False, timeout=TIMEOUT) as notify,
    ):
        with audit.watching():
            for url in urls:
                with pytest.raises(Exception):  # noqa: B017 - whatever refuses it, nothing connects
                    async with ingest.get(url, allow_redirects=False):
                        pass
                with pytest.raises(Exception):  # noqa: B017
                    async with notify.post(url, data=b"{}", allow_redirects=False):
                        pass
    assert canary.seen == []
    assert [c for c in audit.connects if c[1] in canary.ports] == []


# --- redirects ---------------------------------------------------------------------------


@pytest.fixture
async def origin() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback origin answering ``/r?to=URL`` with a 302 to that URL."""
    hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.query["to"])
        return web.Response(status=302, headers={"Location": request.query["to"]})

    app = web.Application()
    app.router.add_route("*", "/r", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/r", hits
    finally:
        await runner.cleanup()


async def test_a_redirect_to_a_local_corpus_url_is_refused_before_connecting(
    canary: Canary,
    audit: Audit,
    origin: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_redirect_target = http_fetch.redirect_target

    def hop_without_private(
        current: URL, status: int, location: str | None, *, allow_private: bool
    ) -> URL:
        # The origin is reached with private URLs allowed (it is on loopback);
        # every hop is judged as for a public origin.
        return real_redirect_target(current, status, location, allow_private=False)

    monkeypatch.setattr(http_fetch, "redirect_target", hop_without_private)
    base, hits = origin
    targets = _urls(LOCAL_CASES, canary.port)
    failures: list[tuple[object, ...]] = []
    async with _ingester(allow_private=True) as fetcher, _notifier(True) as sender:
        with audit.watching():
            for case, target in targets:
                start = str(URL(base).with_query(to=target))
                error = await _fetch_error(fetcher, start)
                if error.code != case.verdict:
                    failures.append((target, case.verdict, error.code, error.reason))
                result = await sender.post(start, b"{}", {})
                if (result.status, result.error) != (302, "HTTP 302"):
                    failures.append((target, "notifier", result))
    assert failures == []
    assert len(hits) == 2 * len(targets)  # the origin answered every first hop
    assert canary.seen == []
    assert [c for c in audit.connects if c[1] in canary.ports] == []


# --- positive controls: the canary does see a connection -----------------------------------


async def test_the_canary_sees_a_connection_when_private_urls_are_allowed(
    canary: Canary, audit: Audit
) -> None:
    # Numeric hosts are connected to as the address that was judged.
    hosts = {
        "127.0.0.1": "127.0.0.1",
        "0x7f.1": "127.0.0.1",
        "2130706433": "127.0.0.1",
        "127.1.2.3": "127.1.2.3",
        "127.0.0.1.": "127.0.0.1",
    }
    if f"::1:{canary.port}" in canary.listening:
        hosts["[::1]"] = "::1"
    async with _ingester(allow_private=True) as fetcher, _notifier(True) as sender:
        with audit.watching():
            for host, address in hosts.items():
                url = f"http://{host}:{canary.port}/v.mp4"
                before = len(canary.seen)
                error = await _fetch_error(fetcher, url)  # the canary hangs up
                assert error.code == "download_failed"
                after_get = len(canary.seen)
                result = await sender.post(url, b"{}", {})
                assert result.status is None and not result.permanent
                new = canary.seen[before:]
                assert after_get > before and len(canary.seen) > after_get, host
                assert {local for local, _ in new} == {f"{address}:{canary.port}"}, host
    assert {port for _, port in audit.connects} == {canary.port}
    assert audit.lookups == []  # numeric hosts never reach a resolver
