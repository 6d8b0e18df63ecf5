"""Which network addresses a user-supplied URL may reach (pure).

Only globally routable unicast addresses are allowed. IPv6 forms that carry an
IPv4 address inside (IPv4-mapped, NAT64, 6to4, IPv4-compatible) are judged by
the IPv4 address they lead to, because that is where the packets end up.
"""

from __future__ import annotations

import ipaddress
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")
_SITE_LOCAL: Final = ipaddress.IPv6Network("fec0::/10")


def parse_address(text: str) -> IPAddress | None:
    """The address in ``text``, or None for a hostname.

    Drops brackets, an IPv6 zone id and a trailing dot (``10.0.0.1.`` reaches
    10.0.0.1 all the same).
    """
    candidate = text.strip("[]").split("%", 1)[0].rstrip(".")
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True when ``address`` is globally routable unicast (safe to fetch from)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
        if address in _SITE_LOCAL:
            return False
    # ``is_global`` alone lets multicast and some reserved ranges through.
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
        and not address.is_loopback
        and not address.is_link_local
    )


def address_problem(text: str, *, allow_private: bool) -> str | None:
    """Why ``text`` (an IP address) may not be connected to, or None when it may."""
    address = parse_address(text)
    if address is None:
        return f"{text} is not an IP address"
    if allow_private or is_public(address):
        return None
    return f"{address} is not a public address"
