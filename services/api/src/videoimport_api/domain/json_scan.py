"""Where in a raw body the JSON decoder gave up, so its refusal can name the field.

The decoder refuses nesting beyond the interpreter's recursion limit and lone
UTF-16 surrogate escapes (``"\\ud800"``) without saying where. ``scan`` reads the
body's tokens (strings, brackets, commas, colons) iteratively, keeping the path
of keys and indexes, and stops at the first such problem. It runs only after
the decoder failed, and gives up (None) after ``MAX_SCAN_TOKENS`` tokens.
"""

from __future__ import annotations

import json
import re
from typing import Final, NamedTuple

from videoimport_api.domain.errors import FieldError
from videoimport_api.domain.json_limits import MAX_DEPTH, child_path

MAX_SCAN_TOKENS: Final = 2_000_000
# The deepest a valid body nests: the body, videos, a video, then metadata's own levels.
_BODY_DEPTH: Final = 3 + MAX_DEPTH

_TOKEN: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)|[\[\]{},:]', re.DOTALL)
# A surrogate pair, a lone surrogate (group 1), or any other escape, left to right.
_ESCAPE: Final = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    rb"|\\u([dD][89a-fA-F][0-9a-fA-F]{2})|\\.",
    re.DOTALL,
)

PathPart = str | int


class Found(NamedTuple):
    path: tuple[PathPart, ...]
    """Keys and indexes from the body down to the container or string concerned."""
    offset: int
    """Byte offset of the token in the body."""
    surrogate: str | None
    """The lone surrogate's hex digits (``"D800"``), None for a container nested too deep."""
    in_key: bool
    """The lone surrogate is in an object key (the last path part), not in a value."""


def _lone_surrogate(token: bytes) -> str | None:
    if b"\\u" not in token:
        return None
    for match in _ESCAPE.finditer(token):
        if match.group(1) is not None:
            return match.group(1).decode().upper()
    return None


def _key_text(token: bytes) -> str:
    try:
        key = json.loads(token)  # the stdlib keeps lone surrogates, which msgspec refuses
    except ValueError:
        return token.strip(b'"').decode("utf-8", "replace")
    return key if isinstance(key, str) else str(key)


class _Frame:
    __slots__ = ("expect_key", "is_object", "part")

    def __init__(self, is_object: bool) -> None:
        self.is_object = is_object
        self.part: bytes | int | None = None if is_object else 0
        self.expect_key = is_object


def _path(frames: list[_Frame]) -> tuple[PathPart, ...]:
    return tuple(
        _key_text(f.part) if isinstance(f.part, bytes) else f.part
        for f in frames
        if f.part is not None
    )


def scan(body: bytes, *, max_depth: int | None, surrogates: bool) -> Found | None:
    """The first container deeper than ``max_depth`` (the body is depth 1), or with
    ``surrogates`` the first string holding a lone surrogate escape; None if neither."""
    frames: list[_Frame] = []
    for count, match in enumerate(_TOKEN.finditer(body)):
        if count >= MAX_SCAN_TOKENS:
            return None
        token = match.group()
        first = token[:1]
        top = frames[-1] if frames else None
        if first == b'"':
            in_key = top is not None and top.expect_key
            if in_key and top is not None:
                top.part = token
            lone = _lone_surrogate(token) if surrogates else None
            if lone is not None:
                return Found(_path(frames), match.start(), lone, in_key)
        elif first in (b"[", b"{"):
            if max_depth is not None and len(frames) >= max_depth:
                return Found(_path(frames), match.start(), None, in_key=False)
            frames.append(_Frame(is_object=first == b"{"))
        elif first in (b"]", b"}"):
            if frames:
                frames.pop()
        elif top is not None and first == b",":
            if top.is_object:
                top.expect_key = True
            elif isinstance(top.part, int):
                top.part += 1
        elif top is not None and first == b":":
            top.expect_key = False
    return None


def _field(path: tuple[PathPart, ...]) -> str:
    field = ""
    for part in path:
        field = child_path(field, part)
    return field.removeprefix(".") or "body"


def refused_too_deep(body: bytes) -> FieldError:
    """The decoder ran out of stack: name the metadata or context that nests too deeply."""
    found = scan(body, max_depth=_BODY_DEPTH, surrogates=False)
    reason = f"nested deeper than {MAX_DEPTH} levels of objects and arrays"
    if found is not None:
        path = found.path
        if len(path) > 3 and path[0] == "videos" and path[2] == "metadata":
            return FieldError(_field(path[: 2 + MAX_DEPTH + 1]), reason)
        if path[:1] == ("context",):
            return FieldError(_field(path[: MAX_DEPTH + 1]), reason)
        return FieldError("body", f"invalid JSON: nested too deeply at {where(body, found.offset)}")
    return FieldError("body", "invalid JSON: nested too deeply")


def refused_surrogate(body: bytes, exc: Exception) -> FieldError | None:
    """msgspec refuses a lone surrogate escape, at times calling it truncated input."""
    message = str(exc)
    if "surrogate" not in message and message != "Input data was truncated":
        return None
    found = scan(body, max_depth=None, surrogates=True)
    if found is None or found.surrogate is None:
        return None
    what = "key " if found.in_key else ""
    return FieldError(
        _field(found.path),
        f"{what}must be valid Unicode: lone UTF-16 surrogate \\u{found.surrogate.lower()}"
        f" at {where(body, found.offset)}",
    )


def where(body: bytes, offset: int) -> str:
    before = body[:offset]
    line = before.count(b"\n") + 1
    column = offset - (before.rfind(b"\n") + 1) + 1
    return f"line {line}, column {column} (byte {offset})"
