"""Signed media links (pure): the key shape, signing, verification, the signing key."""

from __future__ import annotations

import base64
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from videoimport_api.domain.media_links import (
    MediaLinks,
    link_problem,
    parse_key,
    parse_secret,
    signature,
)
from videoimport_api.settings import ApiSettings
from videoimport_ingester import domain as ingester
from videoimport_projects.media_decision import media_id_for

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
MEDIA_ID = media_id_for("acme", "archive", "123abc")
EVENT_ID = "0b6f4c1e-1234-4abc-8def-0123456789ab"
KEY = f"acme/{MEDIA_ID}/{EVENT_ID}.mp4"
NOW = 1_800_000_000


# The key shape ---------------------------------------------------------------------------


@pytest.mark.parametrize("extension", [".mp4", ".webm", ".m4s", ".3gp", ".mkv", ".ogv", ".ts"])
@pytest.mark.parametrize("project", ["demo", "acme", "News-Room_2.x", "a" * 64])
def test_every_key_the_ingester_writes_has_the_shape(project: str, extension: str) -> None:
    media_id = media_id_for(project, "archive", "ext-1")
    key = ingester.storage_key(project, media_id, str(uuid.uuid4()), extension)
    parsed = parse_key(key)
    assert parsed is not None, key
    assert (parsed.key, parsed.media_id, parsed.extension) == (key, media_id, extension)
    assert parsed.content_disposition == f'inline; filename="{media_id}{extension}"'


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/",
        f"/{KEY}",  # absolute
        f"//{KEY}",
        f"../{KEY}",
        f"acme/../{KEY}",
        f"acme/{MEDIA_ID}/../../etc/passwd",
        f"%2e%2e/{KEY}",
        f"acme/{MEDIA_ID}/%2e%2e/{EVENT_ID}.mp4",
        f"../{MEDIA_ID}/{EVENT_ID}.mp4",  # a project may not be '..'
        f"./{MEDIA_ID}/{EVENT_ID}.mp4",
        f"{KEY}\x00",
        f"acme\x00/{MEDIA_ID}/{EVENT_ID}.mp4",
        f"{KEY}\n",
        f"acme/{MEDIA_ID}/{EVENT_ID}",  # no extension
        f"acme/{MEDIA_ID}/{EVENT_ID}.MP4",
        f"acme/{MEDIA_ID}/{EVENT_ID}.mp4/",
        f"acme/{MEDIA_ID}/{EVENT_ID}.mp4.exe.html",
        f"acme/{MEDIA_ID.upper()}/{EVENT_ID}.mp4",
        f"acme/{MEDIA_ID[:-1]}/{EVENT_ID}.mp4",
        f"acme/{MEDIA_ID}/{EVENT_ID.upper()}.mp4",
        f"acme/{MEDIA_ID}/{EVENT_ID.replace('-', '')}.mp4",
        f"acme/x/{MEDIA_ID}/{EVENT_ID}.mp4",
        f"ac me/{MEDIA_ID}/{EVENT_ID}.mp4",
        f"acmé/{MEDIA_ID}/{EVENT_ID}.mp4",
        f"acme\\{MEDIA_ID}\\{EVENT_ID}.mp4",
        f"{'a' * 65}/{MEDIA_ID}/{EVENT_ID}.mp4",
        f"acme/{MEDIA_ID}/{EVENT_ID}.mp4?x=1",
    ],
)
def test_anything_else_is_not_a_key(key: str) -> None:
    assert parse_key(key) is None


# Signing and verification ----------------------------------------------------------------


def test_a_minted_link_carries_its_expiry_and_a_valid_signature() -> None:
    links = MediaLinks(secret=SECRET, ttl_seconds=3600, base_url="https://cdn.example/media/")
    url = urlsplit(links.url(KEY, NOW + 0.9))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"https://cdn.example/media/{KEY}"
    query = parse_qs(url.query)
    assert query["expires"] == [str(NOW + 3600)]
    [sig] = query["signature"]
    assert sig == signature(SECRET, KEY, NOW + 3600)
    assert len(sig) == 43 and "=" not in sig  # base64url of 32 bytes, unpadded
    assert links.problem(KEY, str(NOW + 3600), sig, NOW) is None
    assert links.problem(KEY, str(NOW + 3600), sig, NOW + 3600) is None  # valid to the second
    assert links.problem(KEY, str(NOW + 3600), sig, NOW + 3601) == "the link has expired"


def test_links_are_fresh_per_call_and_bound_to_key_expiry_and_secret() -> None:
    sig = signature(SECRET, KEY, NOW)
    assert sig == signature(SECRET, KEY, NOW)  # deterministic
    assert sig != signature(SECRET, KEY, NOW + 1)
    assert sig != signature(SECRET, KEY.replace(".mp4", ".mov"), NOW)
    assert sig != signature(OTHER_SECRET, KEY, NOW)


@pytest.mark.parametrize(
    ("expires", "given", "reason"),
    [
        (None, None, "the link has no expires or signature"),
        (str(NOW), None, "the link has no expires or signature"),
        (None, "sig", "the link has no expires or signature"),
        ("", "", "the link has no expires or signature"),
        ("soon", "sig", "expires is not a unix time in seconds"),
        ("-1", "sig", "expires is not a unix time in seconds"),
        ("1e12", "sig", "expires is not a unix time in seconds"),
        ("9" * 13, "sig", "expires is not a unix time in seconds"),
        ("\uff11\uff12\uff13", "sig", "expires is not a unix time in seconds"),  # fullwidth digits
        (str(NOW + 60), "sig", "the signature does not match"),
        (str(NOW + 60), "ü" * 43, "the signature does not match"),
    ],
)
def test_missing_or_malformed_values_are_refused(
    expires: str | None, given: str | None, reason: str
) -> None:
    assert link_problem(SECRET, KEY, expires, given, NOW) == reason


def test_a_tampered_link_is_refused() -> None:
    expires = NOW + 60
    sig = signature(SECRET, KEY, expires)
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    other_key = f"acme/{MEDIA_ID}/{EVENT_ID}.webm"
    assert link_problem(SECRET, KEY, str(expires), sig, NOW) is None
    assert link_problem(SECRET, KEY, str(expires), flipped, NOW) == "the signature does not match"
    assert link_problem(SECRET, KEY, str(expires), sig + "A", NOW) is not None
    assert link_problem(SECRET, KEY, str(expires + 86400), sig, NOW) is not None  # extended
    assert link_problem(SECRET, other_key, str(expires), sig, NOW) is not None  # another object
    assert link_problem(OTHER_SECRET, KEY, str(expires), sig, NOW) is not None  # another server


def test_an_expired_link_is_refused_even_when_authentic() -> None:
    sig = signature(SECRET, KEY, NOW - 1)
    assert link_problem(SECRET, KEY, str(NOW - 1), sig, NOW) == "the link has expired"


# The signing key ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        SECRET.hex(),
        SECRET.hex().upper(),
        base64.b64encode(SECRET).decode(),
        base64.b64encode(SECRET).decode().rstrip("="),
        base64.urlsafe_b64encode(SECRET).decode(),
        f"  {SECRET.hex()}\n",
    ],
)
def test_the_signing_key_is_hex_or_base64(text: str) -> None:
    assert parse_secret(text) == SECRET


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("too short", "must be base64 or hex"),
        ("ab" * 31, "must be at least 32 bytes, is 31"),
        (base64.b64encode(b"x" * 31).decode(), "must be at least 32 bytes, is 31"),
        ("é" * 44, "must be base64 or hex"),
        ("a" * 45, "must be base64 or hex"),
    ],
)
def test_a_weak_or_malformed_signing_key_is_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_secret(text)


def test_settings_refuse_a_bad_key_or_ttl_and_default_to_a_day() -> None:
    settings = ApiSettings(database_url="postgresql://x/y")
    assert settings.media_link_ttl == 24 * 3600
    assert settings.media_signing_secret is None  # the API makes a random one and warns
    assert ApiSettings(database_url="x", media_signing_key=SECRET.hex()).media_signing_secret == (
        SECRET
    )
    with pytest.raises(ValueError, match="media_signing_key must be at least 32 bytes"):
        ApiSettings(database_url="x", media_signing_key="abcd")
    for ttl in (0, -1, 365 * 24 * 3600 + 1):
        with pytest.raises(ValueError, match="media_link_ttl"):
            ApiSettings(database_url="x", media_link_ttl=ttl)
    assert ApiSettings(database_url="x", media_link_ttl=365 * 24 * 3600).media_link_ttl > 0
