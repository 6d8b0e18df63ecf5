"""The operator page's sign-in: the token field, the CSRF check, the cookie."""

from __future__ import annotations

import pytest
from videoimport_api.ui import session


@pytest.mark.parametrize(
    ("raw", "token"),
    [
        ("  vit_abc  ", "vit_abc"),
        (None, None),
        ("", None),
        ("vit a", None),
        ("vit_\u00e9", None),
        ("x" * 513, None),
        ("x" * 512, "x" * 512),
    ],
)
def test_only_something_shaped_like_a_token_is_looked_up(
    raw: str | None, token: str | None
) -> None:
    assert session.clean_token(raw) == token


def test_the_form_carries_exactly_one_token() -> None:
    assert session.form_token(b"token=vit_abc%2B1") == "vit_abc+1"
    assert session.form_token(b"token=a&token=b") is None
    assert session.form_token(b"other=a") is None
    assert session.form_token("token=\u00e9".encode()) is None
    assert session.form_token(b"a=1&b=2&c=3&d=4&e=5&token=vit_abc") is None  # too many fields


@pytest.mark.parametrize(
    ("fetch_site", "origin", "allowed"),
    [
        ("same-origin", "null", True),
        ("none", None, True),
        ("cross-site", "http://127.0.0.1:8000", False),
        ("same-site", "http://127.0.0.1:8000", False),
        (None, "http://127.0.0.1:8000", True),
        (None, "https://127.0.0.1:8000", False),
        (None, "http://evil.example", False),
        (None, "null", True),
        (None, None, True),
    ],
)
def test_a_post_from_another_site_is_refused(
    fetch_site: str | None, origin: str | None, allowed: bool
) -> None:
    assert session.same_origin(fetch_site, origin, "http", "127.0.0.1:8000") is allowed


def test_the_cookie_is_http_only_strict_and_scoped_to_the_pages() -> None:
    header = session.sign_in_cookie("vit_abc", secure=True).to_header(header="")
    attributes = {part.strip().lower() for part in header.split(";")}
    assert {"videoimport_ui=vit_abc", "httponly", "samesite=strict", "path=/ui", "secure"} <= (
        attributes
    )
    assert "secure" not in session.sign_in_cookie("vit_abc", secure=False).to_header(header="")
    cleared = session.sign_out_cookie(secure=False).to_header(header="").lower()
    assert "max-age=0" in cleared and "path=/ui" in cleared
