"""The operator page's sign-in: a cookie that holds the API token itself.

The token is looked up on every request (as the API does with the bearer header), so a
revoked or expired token signs the browser out at once and the server keeps no session
state and no signing key. The cookie is HttpOnly (no script reads it), SameSite=Strict
(no other site's page sends it), scoped to ``/ui`` (the JSON API never accepts it) and
Secure when the page was served over https.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import parse_qs, urlsplit

from litestar.datastructures import Cookie

COOKIE_NAME: Final = "videoimport_ui"
COOKIE_PATH: Final = "/ui"
MAX_FORM_BYTES: Final = 4096
"""The sign-in form has one field; anything larger is not a sign-in."""
MAX_TOKEN_CHARS: Final = 512
_TOKEN = re.compile(r"[\x21-\x7e]+")
"""Printable ASCII without spaces: anything else cannot be a token and is not looked up."""


def clean_token(raw: str | None) -> str | None:
    """The token as typed (surrounding blanks dropped); None when it cannot be one."""
    if raw is None:
        return None
    token = raw.strip()
    if not token or len(token) > MAX_TOKEN_CHARS or not _TOKEN.fullmatch(token):
        return None
    return token


def form_token(body: bytes) -> str | None:
    """The ``token`` field of a form-encoded sign-in body."""
    try:
        fields = parse_qs(body.decode("ascii"), max_num_fields=4, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None
    values = fields.get("token", [])
    return clean_token(values[0]) if len(values) == 1 else None


def same_origin(fetch_site: str | None, origin: str | None, scheme: str, host: str | None) -> bool:
    """Whether a form post came from this site's own page (a CSRF check).

    Browsers send ``Sec-Fetch-Site`` with every request: anything but ``same-origin``
    (or ``none``, typed by the user) is another site's post. Older browsers only send
    ``Origin``, which ``Referrer-Policy: no-referrer`` turns into ``null`` on our own
    pages, so only an ``Origin`` naming another site is refused. Clients that send
    neither (not browsers) are accepted: the cookie is SameSite=Strict besides."""
    if fetch_site is not None:
        return fetch_site.lower() in ("same-origin", "none")
    if origin is None or origin == "null":
        return True
    if host is None:
        return False
    parts = urlsplit(origin)
    return parts.scheme == scheme and parts.netloc.lower() == host.lower()


def sign_in_cookie(token: str, secure: bool) -> Cookie:
    return Cookie(
        key=COOKIE_NAME,
        value=token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def sign_out_cookie(secure: bool) -> Cookie:
    return Cookie(
        key=COOKIE_NAME,
        value="",
        path=COOKIE_PATH,
        max_age=0,
        expires=0,
        httponly=True,
        samesite="strict",
        secure=secure,
    )
