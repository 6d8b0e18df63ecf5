"""Signed, expiring links to stored media, and the keys they may name (pure).

A link is ``{base}/{key}?expires=<unix seconds>&signature=<sig>``, where ``sig`` is
``base64url(HMAC-SHA256(secret, "videoimport-media-v1\\n" key "\\n" expires))``
without padding. Players and CDNs cannot send bearer tokens; they can follow a URL.

Only keys of the shape the ingester writes (``{project}/{mediaId}/{eventId}{ext}``,
see its ``domain.storage_key``, and the poster beside it, ``….poster.jpg``) are ever
looked up, so ``../``, absolute paths, empty keys and anything percent-encoded never
reach the bucket.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final

from videoimport_api.domain.status import original_url

MIN_SECRET_BYTES: Final = 32
MAX_EXPIRES_DIGITS: Final = 12
_DOMAIN: Final = b"videoimport-media-v1\n"
POSTER_SUFFIX: Final = ".poster.jpg"
"""The poster JPEG's key is the video's key with this in place of its extension."""
POSTER_TYPE: Final = "image/jpeg"
LOCAL_BASE: Final = "/media"
"""Where this server itself serves the links (``media.MEDIA_PATH``)."""

KEY_SHAPE: Final = re.compile(
    r"(?P<project>[A-Za-z0-9][A-Za-z0-9._-]{0,63})"  # the CLI's project names
    r"/(?P<media_id>[a-z2-7]{20})"  # base32 of a sha256, lower case, 20 characters
    r"/(?P<event_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"(?P<ext>\.poster\.jpg|\.[a-z0-9]{1,8})",
    re.ASCII,
)
_HEX: Final = re.compile(r"(?:[0-9a-fA-F]{2})+")
_DIGITS: Final = re.compile(rf"[0-9]{{1,{MAX_EXPIRES_DIGITS}}}", re.ASCII)


@dataclass(frozen=True)
class MediaKey:
    key: str
    media_id: str
    extension: str

    @property
    def content_disposition(self) -> str:
        # Safe ASCII by construction: the shape allows only [a-z0-9.] here.
        return f'inline; filename="{self.media_id}{self.extension}"'

    @property
    def content_type(self) -> str | None:
        """The type this key is always served as (a poster); None: the stored one."""
        return POSTER_TYPE if self.extension == POSTER_SUFFIX else None


def parse_key(key: str) -> MediaKey | None:
    """The key if it has the shape of a stored object's key, else None."""
    match = KEY_SHAPE.fullmatch(key)
    if match is None:
        return None
    return MediaKey(key=key, media_id=match["media_id"], extension=match["ext"])


def parse_secret(text: str) -> bytes:
    """The signing key from its setting: hex, or base64 (standard or URL-safe, padding
    optional), at least ``MIN_SECRET_BYTES`` bytes. Raises ValueError saying why not."""
    text = text.strip()
    if _HEX.fullmatch(text):
        secret = bytes.fromhex(text)
    else:
        padded = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)
        try:
            secret = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 or hex") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes, is {len(secret)}")
    return secret


def signature(secret: bytes, key: str, expires: int) -> str:
    message = _DOMAIN + key.encode() + b"\n" + str(expires).encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def link_problem(
    secret: bytes, key: str, expires: str | None, given: str | None, now: float
) -> str | None:
    """Why the link to ``key`` with these query values is not valid at ``now``, or None."""
    if not expires or not given:
        return "the link has no expires or signature"
    if not _DIGITS.fullmatch(expires):
        return "expires is not a unix time in seconds"
    expected = signature(secret, key, int(expires))
    # compare_digest takes str only when it is ASCII; anything else cannot match anyway.
    if not given.isascii() or not hmac.compare_digest(expected, given):
        return "the signature does not match"
    if now > int(expires):
        return "the link has expired"
    return None


@dataclass(frozen=True)
class MediaLinks:
    """Mints and checks the links of one server (its secret, link lifetime and base URL)."""

    secret: bytes
    ttl_seconds: int
    base_url: str

    def url(self, key: str, now: float, base_url: str | None = None) -> str:
        """The link under ``base_url`` (default: the configured media base URL)."""
        expires = int(now) + self.ttl_seconds
        sig = signature(self.secret, key, expires)
        base = self.base_url if base_url is None else base_url
        return f"{original_url(base, key)}?expires={expires}&signature={sig}"

    def local_url(self, key: str, now: float) -> str:
        """The link as a path on this server: same origin for the operator page,
        whatever host ``base_url`` names (a CDN, a proxy)."""
        return self.url(key, now, LOCAL_BASE)

    def problem(self, key: str, expires: str | None, given: str | None, now: float) -> str | None:
        return link_problem(self.secret, key, expires, given, now)
