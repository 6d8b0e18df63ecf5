"""One corpus for the address policy (``videoimport_eventlog.addresses``).

Every entry is ``(target, verdict, why)``. A target is an address or a URL host
as written (IPv6 without brackets) or, when it contains ``://``, a whole URL with
``{port}`` where the port goes. The verdict is what a fetcher with
``allow_private=False`` makes of it before connecting anywhere:

* ``public``: an address that may be connected to;
* ``name``: a DNS name, judged on the addresses it resolves to when connecting;
* ``forbidden_address`` / ``invalid_url``: refused with that failure code.

``tests/unit/test_addresses.py`` checks the pure policy and both fetchers' URL
checks against it; ``tests/integration/test_address_canary.py`` sends every
entry that could reach this machine through both real fetchers at a canary.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

Verdict = Literal["public", "name", "forbidden_address", "invalid_url"]
PUBLIC: Final = "public"
NAME: Final = "name"
FORBIDDEN: Final = "forbidden_address"
INVALID: Final = "invalid_url"


class Case(NamedTuple):
    target: str
    verdict: Verdict
    why: str

    @property
    def is_url(self) -> bool:
        return "://" in self.target

    def url(self, port: int | None, path: str = "/v.mp4") -> str:
        """The target as an http URL to ``port`` (None: the scheme's default port);
        a URL target keeps its own shape."""
        with_port = "" if port is None else f":{port}"
        if self.is_url:
            return self.target.replace(":{port}", with_port)
        host = self.target
        if ":" in host:
            host = "[" + host.replace("%", "%25") + "]"
        return f"http://{host}{with_port}{path}"


def _cases(verdict: Verdict, *entries: tuple[str, str]) -> list[Case]:
    return [Case(target, verdict, why) for target, why in entries]


CORPUS: Final[list[Case]] = [
    # --- IPv4, dotted ----------------------------------------------------------------------
    *_cases(
        FORBIDDEN,
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback is all of 127/8"),
        ("127.255.255.254", "loopback, top of 127/8"),
        ("0.0.0.0", "unspecified: Linux connects it to this machine"),
        ("0.1.2.3", "0/8, 'this network'"),
        ("10.0.0.1", "private 10/8"),
        ("10.255.255.255", "private 10/8, top"),
        ("172.16.0.1", "private 172.16/12"),
        ("172.31.255.255", "private 172.16/12, top"),
        ("192.168.0.1", "private 192.168/16"),
        ("100.64.0.1", "carrier-grade NAT 100.64/10"),
        ("100.127.255.254", "carrier-grade NAT, top"),
        ("169.254.169.254", "link-local: the cloud metadata service"),
        ("169.254.0.1", "link-local 169.254/16"),
        ("192.0.0.1", "IETF protocol assignments 192.0.0/24"),
        ("192.0.0.9", "192.0.0/24 is refused whole, PCP anycast included"),
        ("192.0.0.170", "192.0.0/24: NAT64 discovery"),
        ("192.0.2.1", "documentation TEST-NET-1"),
        ("198.51.100.7", "documentation TEST-NET-2"),
        ("203.0.113.9", "documentation TEST-NET-3"),
        ("198.18.0.1", "benchmarking 198.18/15"),
        ("198.19.255.255", "benchmarking, top"),
        ("192.88.99.1", "6to4 relay anycast (deprecated)"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast (SSDP)"),
        ("240.0.0.1", "reserved 240/4"),
        ("255.255.255.255", "broadcast"),
    ),
    *_cases(
        PUBLIC,
        ("8.8.8.8", "global unicast"),
        ("1.1.1.1", "global unicast"),
        ("93.184.216.34", "global unicast"),
        ("11.0.0.1", "just past 10/8"),
        ("172.15.255.255", "just below 172.16/12"),
        ("172.32.0.1", "just past 172.16/12"),
        ("100.63.255.255", "just below 100.64/10"),
        ("100.128.0.1", "just past 100.64/10"),
        ("169.253.255.255", "just below 169.254/16"),
        ("198.17.255.255", "just below 198.18/15"),
        ("198.20.0.1", "just past 198.18/15"),
        ("223.255.255.254", "just below multicast"),
    ),
    # --- IPv4 as resolvers (inet_aton) and browsers (WHATWG) read it ------------------------
    *_cases(
        FORBIDDEN,
        ("2130706433", "127.0.0.1 as one decimal number"),
        ("2130706433.", "the same, fully qualified"),
        ("017700000001", "127.0.0.1 as one octal number"),
        ("0x7f000001", "127.0.0.1 as one hex number"),
        ("0177.0.0.1", "octal first part"),
        ("0x7f.0.0.1", "hex first part"),
        ("0x7F.0X0.0.01", "hex and octal, upper case"),
        ("0x7f.1", "hex, short form a.b"),
        ("127.1", "short form a.b: 127.0.0.1"),
        ("127.0.1", "short form a.b.c: 127.0.0.1"),
        ("0177.1", "octal short form"),
        ("127.000.000.001", "zero-padded (octal) parts"),
        ("127.0.0.1.", "loopback, fully qualified"),
        ("0", "0.0.0.0 as one number"),
        ("00", "0.0.0.0, octal"),
        ("0x", "0.0.0.0: an empty hex number is 0"),
        ("0x0.0", "0.0.0.0, short hex"),
        ("167772161", "10.0.0.1 as one number"),
        ("3232235521", "192.168.0.1 as one number"),
        ("0xa9fea9fe", "169.254.169.254 as one hex number"),
        ("169.16689662", "169.254.169.254 as a.b"),
        ("0xffffffff", "255.255.255.255 as one hex number"),
    ),
    *_cases(
        PUBLIC,
        ("134744072", "8.8.8.8 as one number"),
        ("0x8080808", "8.8.8.8 as one hex number"),
        ("010.010.010.010", "8.8.8.8 in octal (not 10.10.10.10)"),
        ("8.0x80808", "8.8.8.8 as a.b"),
        ("1.1.257", "1.1.1.1 as a.b.c"),
    ),
    *_cases(
        INVALID,
        ("1.2.3.4.5", "ends in a number, five parts"),
        ("1.2.3.4.5.", "the same, fully qualified"),
        ("08.0.0.1", "8 is no octal digit"),
        ("0x7g.1", "g is no hex digit"),
        ("256.0.0.1", "a part over 255"),
        ("127.0.0.256", "last part over 255"),
        ("1.16777216", "a.b: b over 24 bits"),
        ("4294967296", "over 32 bits"),
        ("99999999999999999999999999", "far over 32 bits"),
        ("example.123", "a name cannot end in a number"),
        ("video.0x1", "a name cannot end in a hex number"),
        ("127.0.0.1..", "two trailing dots: an empty label"),
        ("%31%32%37.0.0.1", "percent-encoded digits are no host name"),
    ),
    # --- IPv6 ------------------------------------------------------------------------------
    *_cases(
        FORBIDDEN,
        ("::1", "loopback"),
        ("0:0:0:0:0:0:0:1", "loopback, long form"),
        ("::", "unspecified: reaches this machine"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local with a zone id"),
        ("fc00::1", "unique local fc00::/7"),
        ("fd12:3456::1", "unique local fd00::/8"),
        ("fec0::1", "site-local (deprecated) fec0::/10"),
        ("ff02::1", "multicast"),
        ("ff05::2", "multicast"),
        ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
        ("::ffff:7f00:1", "IPv4-mapped loopback, hex"),
        ("::ffff:0.0.0.0", "IPv4-mapped unspecified"),
        ("::ffff:10.0.0.1", "IPv4-mapped private"),
        ("::ffff:169.254.169.254", "IPv4-mapped metadata"),
        ("::ffff:a9fe:a9fe", "IPv4-mapped metadata, hex"),
        ("::127.0.0.1", "IPv4-compatible (deprecated) loopback"),
        ("::7f00:1", "IPv4-compatible loopback, hex"),
        ("::8.8.8.8", "IPv4-compatible: refused whatever it carries"),
        ("::ffff:0:7f00:1", "IPv4-translated loopback"),
        ("::ffff:0:808:808", "IPv4-translated: refused whatever it carries"),
        ("64:ff9b::7f00:1", "NAT64 of 127.0.0.1"),
        ("64:ff9b::a00:1", "NAT64 of 10.0.0.1"),
        ("64:ff9b:1::808:808", "local-use NAT64 64:ff9b:1::/48"),
        ("2002:7f00:1::", "6to4 of 127.0.0.1"),
        ("2002:a00:1::1", "6to4 of 10.0.0.1"),
        ("2001::1", "Teredo 2001::/32"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo: the client inside is obfuscated"),
        ("2001:2::1", "benchmarking 2001:2::/48"),
        ("2001:10::1", "ORCHID 2001:10::/28"),
        ("2001:20::1", "ORCHIDv2 2001:20::/28"),
        ("2001:db8::1", "documentation 2001:db8::/32"),
        ("3fff::1", "documentation 3fff::/20"),
        ("100::1", "discard-only 100::/64"),
        ("5f00::1", "SRv6 SIDs, outside global unicast"),
        ("4000::1", "outside 2000::/3"),
        ("::2", "reserved ::/8"),
    ),
    *_cases(
        PUBLIC,
        ("2606:4700:4700::1111", "global unicast"),
        ("2a00:1450:4001:80b::200e", "global unicast"),
        ("2001:4860:4860::8888", "global unicast inside 2001::/16, outside 2001::/23"),
        ("::ffff:8.8.8.8", "IPv4-mapped public"),
        ("64:ff9b::808:808", "NAT64 of 8.8.8.8"),
        ("2002:808:808::1", "6to4 of 8.8.8.8"),
    ),
    # --- names -----------------------------------------------------------------------------
    *_cases(
        FORBIDDEN,
        ("localhost", "loopback by definition (RFC 6761), refused without a lookup"),
        ("localhost.", "the same, fully qualified"),
        ("LOCALHOST", "names are case-insensitive"),
        ("video.localhost", "every name under localhost is loopback"),
        ("a.b.localhost.", "every name under localhost is loopback"),
    ),
    *_cases(
        NAME,
        ("videos.example.com", "a name: judged on what it resolves to"),
        ("10.example", "a name that starts with a number"),
        ("1e100.net", "a name that starts with a number"),
        ("127.0.0.1.nip.io", "a name whatever it spells: judged on what it resolves to"),
        ("localhost.example", "not under localhost"),
        ("xn--bcher-kva.example", "punycode"),
    ),
    *_cases(
        INVALID,
        ("a..b", "an empty label"),
        ("-a.example", "a label starting with '-'"),
    ),
    # --- whole URLs ------------------------------------------------------------------------
    *_cases(
        FORBIDDEN,
        ("http://user:pw@127.0.0.1:{port}/v.mp4", "userinfo does not change the host"),
        ("http://videos.example.com@127.0.0.1:{port}/v.mp4", "a name as userinfo"),
        ("http://127.0.0.1:{port}#@videos.example.com/", "the name is in the fragment"),
        ("http://127.0.0.1:{port}?@videos.example.com/", "the name is in the query"),
        ("HTTP://LOCALHOST:{port}/v.mp4", "scheme and host are case-insensitive"),
        ("https://[::ffff:127.0.0.1]:{port}/v.mp4", "mapped loopback over https"),
        ("http://\uff11\uff12\uff17.0.0.1:{port}/v.mp4", "fullwidth digits normalise to 127"),
        ("http://127\u30020\u30020\u30021:{port}/v.mp4", "ideographic full stops are dots"),
        ("http://0x7f.1:{port}/a/../v.mp4?x=1", "hex host, path and query"),
    ),
]


def by_verdict(*verdicts: Verdict) -> list[Case]:
    return [case for case in CORPUS if case.verdict in verdicts]
