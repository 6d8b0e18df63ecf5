"""Which network addresses a user-supplied URL may reach (pure): the one policy.

Both fetchers (the ingester's video downloads, the notifier's webhook POSTs) and
the API's checks at the door use it.

**Addresses.** Only globally routable unicast addresses are allowed
(``is_public``). Refused, besides whatever Python does not call global:

* IPv4: ``0.0.0.0/8``, ``10/8``, ``100.64/10`` (CGNAT), ``127/8``, ``169.254/16``
  (link-local, cloud metadata), ``172.16/12``, ``192.0.0/24`` (IETF protocol
  assignments), ``192.168/16``, ``198.18/15`` (benchmarking), ``192.88.99/24``
  (6to4 relays), the documentation ranges ``192.0.2/24``, ``198.51.100/24``,
  ``203.0.113/24``, ``224/4`` (multicast), ``240/4`` (reserved, broadcast).
* IPv6: everything outside ``2000::/3`` (global unicast) except the forms below
  that carry an IPv4 address, so ``::``, ``::1``, ``fe80::/10``, ``fc00::/7``,
  ``fec0::/10``, ``ff00::/8``, ``100::/64``, ``64:ff9b:1::/48`` (local-use NAT64)
  ...; inside it ``2001::/23`` (IETF protocol assignments: Teredo ``2001::/32``,
  whose client address is obfuscated, ORCHID, benchmarking), ``2001:db8::/32`` and
  ``3fff::/20`` (documentation).
* IPv6 forms that lead to an IPv4 address are judged by that address, because
  that is where the packets end up: IPv4-mapped ``::ffff:0:0/96``, NAT64
  ``64:ff9b::/96``, 6to4 ``2002::/16``. The deprecated IPv4-compatible ``::/96``
  and IPv4-translated ``::ffff:0:0:0/96`` forms are refused whatever they carry.

**URL hosts** (``host_refusal``). A host is an address whenever a resolver
(``inet_aton``) or a browser (the WHATWG URL standard) would read it as one:
IPv4 in decimal (``2130706433``), octal (``0177.0.0.1``), hex (``0x7f.1``) and
short forms (``127.1``), with one trailing dot or without; ``parse_address``
returns the address such a host means. A host that ends in a number but is no
IPv4 address (``1.2.3.4.5``, ``08.1``) is invalid, so it is never handed to a
resolver. ``localhost`` and ``*.localhost`` are loopback by definition (RFC 6761)
and refused without a lookup. Any other name is judged by the addresses it
resolves to, at connection time.

Reasons never say what a name resolves to: only the host as the client wrote it.

**Scopes** (``AddressScope``). ``"public"`` is the policy above; ``"any"`` (a
fetcher's ``allow_private``, local stacks only) allows every address;
``"loopback"`` allows only loopback (``127.0.0.0/8``, ``::1`` and ``::ffff:127.x``,
which the kernel delivers to 127.x) and is for tests and fuzzing, so nothing
they generate can leave the machine. Every check takes a ``scope``, or (as its
existing callers do) ``allow_private``, which means ``"any"``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final, Literal, NamedTuple

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressScope = Literal["public", "any", "loopback"]
"""Which addresses a fetcher may reach: public ones, any, or loopback only."""

_IPV4_REFUSED: Final = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255
    )
)
_IPV6_GLOBAL_UNICAST: Final = ipaddress.IPv6Network("2000::/3")
_IPV6_REFUSED: Final = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID(v2), ...
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)
_IPV4_LOOPBACK: Final = ipaddress.IPv4Network("127.0.0.0/8")
_IPV6_LOOPBACK: Final = ipaddress.IPv6Address("::1")
_IPV4_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")
_IPV4_TRANSLATED: Final = ipaddress.IPv6Network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR: Final = ipaddress.IPv6Network("2002::/16")

_MAX_HOST: Final = 253
_LABEL: Final = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_DIGITS: Final = {
    10: re.compile(r"[0-9]+"),
    8: re.compile(r"[0-7]+"),
    16: re.compile(r"[0-9A-Fa-f]+"),
}
_TOO_BIG: Final = 1 << 32


def parse_address(text: str) -> IPAddress | None:
    """The address ``text`` names, or None when it names none (a host name).

    ``text`` is an address or a URL host: brackets and an IPv6 zone id are
    dropped, and IPv4 may be written in any form a resolver or a browser reads
    as an address (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``, one
    trailing dot: ``10.0.0.1.`` reaches 10.0.0.1 all the same).
    """
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError:
            return None
    return _parse_ipv4(text)


def _ipv4_number(part: str) -> int | None:
    """One part of an IPv4 host (decimal, ``0`` octal or ``0x`` hex), per WHATWG."""
    base = 10
    if part[:2] in ("0x", "0X"):
        part, base = part[2:], 16
        if not part:
            return 0
    elif len(part) > 1 and part[0] == "0":
        part, base = part[1:], 8
    if not _DIGITS[base].fullmatch(part):
        return None
    if len(part.lstrip("0")) > 12:  # bigger than any part may be; never int() it
        return _TOO_BIG
    return int(part, base)


def _parts(host: str) -> list[str]:
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # one trailing dot: a fully qualified name
    return parts


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    parts = _parts(host)
    if len(parts) > 4 or len(host) > _MAX_HOST:
        return None
    numbers: list[int] = []
    for part in parts:
        number = _ipv4_number(part) if part else None
        if number is None:
            return None
        numbers.append(number)
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def ends_in_a_number(host: str) -> bool:
    """Whether ``host`` can only be an IPv4 address (WHATWG "ends in a number").

    Such a host that ``parse_address`` does not read (``1.2.3.4.5``, ``08.1``,
    ``example.0x1``) is invalid: never a name to look up.
    """
    if ":" in host:
        return False
    last = _parts(host)[-1]
    return bool(last) and ((last.isascii() and last.isdigit()) or _ipv4_number(last) is not None)


def valid_hostname(host: str) -> bool:
    """An ASCII (punycode) DNS name: labels of 1-63 letters, digits, ``-``, ``_``."""
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > _MAX_HOST:
        return False
    return all(_LABEL.fullmatch(label) for label in name.split("."))


def is_localhost_name(host: str) -> bool:
    """``localhost`` or a name under it (RFC 6761: always loopback), any case."""
    name = host.lower()
    name = name[:-1] if name.endswith(".") else name
    return name == "localhost" or name.endswith(".localhost")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _IPV4_MAPPED or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


def is_public(address: IPAddress) -> bool:
    """True when ``address`` is globally routable unicast (safe to connect to)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
        if address not in _IPV6_GLOBAL_UNICAST or any(address in n for n in _IPV6_REFUSED):
            return False
    elif any(address in n for n in _IPV4_REFUSED):
        return False
    # Belt and braces: whatever this Python's tables call special stays refused.
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_private
    )


def is_loopback(address: IPAddress) -> bool:
    """True for ``127.0.0.0/8``, ``::1`` and IPv4-mapped ``::ffff:127.x`` (same packets).

    NAT64 and 6to4 forms of 127.x are not loopback: a gateway receives them.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address in _IPV4_MAPPED:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) in _IPV4_LOOPBACK
        return address.scope_id is None and address == _IPV6_LOOPBACK
    return address in _IPV4_LOOPBACK


def scope_of(*, allow_private: bool, loopback_only: bool = False) -> AddressScope:
    """The scope a fetcher's settings ask for; loopback-only wins over allow-private."""
    if loopback_only:
        return "loopback"
    return "any" if allow_private else "public"


def in_scope(address: IPAddress, scope: AddressScope) -> bool:
    """Whether ``scope`` lets a fetcher connect to ``address``."""
    if scope == "any":
        return True
    if scope == "loopback":
        return is_loopback(address)
    return is_public(address)


def _scope(allow_private: bool, scope: AddressScope | None) -> AddressScope:
    return scope if scope is not None else scope_of(allow_private=allow_private)


def address_problem(
    text: str, *, allow_private: bool = False, scope: AddressScope | None = None
) -> str | None:
    """Why ``text`` (an IP address, in any form) may not be connected to, or None.

    ``scope`` (when given) decides; otherwise ``allow_private`` means ``"any"``.
    """
    scope = _scope(allow_private, scope)
    address = parse_address(text)
    if address is None:
        return f"{text} is not an IP address"
    if in_scope(address, scope):
        return None
    return f"{text} is not {_WANTED[scope]}"


FORBIDDEN_ADDRESS: Final = "forbidden address"
"""How every refusal of an address starts, in both fetchers."""


class HostRefusal(NamedTuple):
    """Why a URL host may not be fetched, decided before any lookup."""

    code: Literal["forbidden_address", "invalid_url"]
    """A ``FailureCode``: ``forbidden_address`` or ``invalid_url``."""
    reason: str
    """Names the host as written, never an address it resolves to."""


def host_refusal(
    host: str, *, allow_private: bool = False, scope: AddressScope | None = None
) -> HostRefusal | None:
    """Whether ``host`` (a URL's host as parsed, e.g. yarl's ``raw_host``) is refused.

    None for an allowed address and for a DNS name, whose resolved addresses the
    fetcher still has to judge when it connects. ``scope`` (when given) decides;
    otherwise ``allow_private`` means ``"any"``.
    """
    scope = _scope(allow_private, scope)
    address = parse_address(host)
    if address is not None:
        if in_scope(address, scope):
            return None
        return HostRefusal("forbidden_address", forbidden_reason(host, scope))
    if ends_in_a_number(host):
        return HostRefusal(
            "invalid_url", f"invalid url: host {_shown(host)!r} is not an IPv4 address"
        )
    if not valid_hostname(host):
        return HostRefusal("invalid_url", f"invalid url: invalid host name {_shown(host)!r}")
    if is_localhost_name(host) and scope == "public":
        return HostRefusal("forbidden_address", forbidden_reason(host))
    return None


_WANTED: Final[dict[AddressScope, str]] = {
    "public": "a public address",
    "loopback": "a loopback address (loopback-only mode)",
    "any": "an address",
}


def forbidden_reason(host: str, scope: AddressScope = "public") -> str:
    """The reason for a refused host: the host as the client wrote it, nothing more."""
    return f"{FORBIDDEN_ADDRESS}: {_shown(host)} is not {_WANTED[scope]}"


def _shown(host: str) -> str:
    return host if len(host) <= 80 else host[:79] + "…"
