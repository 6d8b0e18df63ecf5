"""Is a client URL an absolute http(s) URL whose host could ever be resolved?

Hosts must be IP literals (IPv4, bracketed IPv6) or DNS names: labels of 1 to 63
characters, at most 253 in all. ASCII labels are letters, digits, '-' (not first
or last) and '_' (seen in real hosts); 'xn--' labels and Unicode labels must be
valid IDNA 2008.

A host that is an IP literal must be a public address (``forbidden_literal``) unless
private URLs are allowed; names are not resolved here; the fetchers check every
address they connect to.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Final
from urllib.parse import urlsplit

import idna
from videoimport_eventlog.addresses import (
    is_localhost_name,
    is_loopback,
    is_public,
    parse_address,
)

from videoimport_api.domain.json_limits import identity_problem, shown

MAX_HOST: Final = 253
MAX_LABEL: Final = 63
_ASCII_LABEL: Final = re.compile(r"[a-z0-9_-]+", re.ASCII)
FORBIDDEN_ADDRESS: Final = "forbidden address"
# What resolvers (inet_aton) and browsers (WHATWG URL) read as IPv4: 1 to 4 parts,
# each decimal, octal (leading 0) or hex (0x): 127.1, 2130706433, 0x7f.0.0.1.
_NUMERIC_HOST: Final = re.compile(
    r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?", re.ASCII
)


def url_problem(value: str) -> str | None:
    """Why ``value`` is not an absolute http(s) URL with a valid host, or None."""
    problem = identity_problem(value)
    if problem:
        return problem
    if any(ch.isspace() for ch in value):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        return f"is not a valid URL ({shown(str(exc), 80)})"
    if parts.scheme.lower() not in ("http", "https"):
        shown_scheme = f"'{shown(parts.scheme)}'" if parts.scheme else "none"
        return f"must be an http or https URL (scheme is {shown_scheme})"
    if not parts.hostname:
        return "must name a host"
    bracketed = parts.netloc.rpartition("@")[2].startswith("[")
    return host_problem(parts.hostname, bracketed=bracketed)


def host_problem(host: str, *, bracketed: bool = False) -> str | None:
    """Why ``host`` (as ``urlsplit`` gives it: lower case, no brackets) is no valid host."""
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"host [{shown(host)}] is not an IPv6 address"
        return None
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        pass
    else:
        return None
    name = host[:-1] if host.endswith(".") else host  # a trailing dot is a fully qualified name
    ascii_length = 0
    for label in name.split("."):
        problem = _label_problem(label)
        if problem:
            return f"host '{shown(host, 80)}' is not a valid hostname: {problem}"
        ascii_length += len(_ascii(label)) + 1
    if ascii_length - 1 > MAX_HOST:
        return (
            f"host is not a valid hostname: longer than {MAX_HOST} characters"
            f" ({ascii_length - 1} as ASCII)"
        )
    return None


def _ascii(label: str) -> str:
    return label if label.isascii() else idna.encode(label, uts46=True).decode("ascii")


def _label_problem(label: str) -> str | None:
    if not label:
        return "empty label (two dots in a row, or a leading dot)"
    if label.isascii() and not label.startswith("xn--"):
        if not _ASCII_LABEL.fullmatch(label):
            bad = next(ch for ch in label if not _ASCII_LABEL.fullmatch(ch))
            return f"label '{shown(label)}' contains '{shown(bad)}'"
        if label.startswith("-") or label.endswith("-"):
            return f"label '{shown(label)}' starts or ends with '-'"
        if len(label) > MAX_LABEL:
            return f"label '{shown(label)}' is {len(label)} characters, more than {MAX_LABEL}"
        return None
    try:
        encoded = _ascii(label)
        if label.isascii() and idna.encode(idna.decode(label)).decode("ascii") != label:
            return f"label '{shown(label)}' is not the canonical IDNA form of its name"
    except (idna.IDNAError, UnicodeError) as exc:
        return f"label '{shown(label)}' is not valid IDNA ({shown(str(exc), 80)})"
    if len(encoded) > MAX_LABEL:
        return f"label '{shown(label)}' is {len(encoded)} characters as IDNA, more than {MAX_LABEL}"
    return None


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``host`` names literally (in any form a resolver reads as an
    address, not only dotted quads), or None for a name."""
    address = parse_address(host)
    if address is not None or not _NUMERIC_HOST.fullmatch(host):
        return address
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
    except OSError:
        return None


def forbidden_literal(url: str) -> bool:
    """Whether ``url`` (valid per ``url_problem``) names a non-public address literally."""
    host = urlsplit(url).hostname
    address = literal_address(host) if host else None
    return address is not None and not is_public(address)


def outside_loopback(url: str) -> bool:
    """Whether ``url`` (valid per ``url_problem``) names anything but loopback: an
    address outside 127.0.0.0/8 and ::1, or a name other than ``localhost``."""
    host = urlsplit(url).hostname
    if not host:
        return True
    address = literal_address(host)
    if address is not None:
        return not is_loopback(address)
    return not is_localhost_name(host)
