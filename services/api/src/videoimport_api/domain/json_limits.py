"""Limits on client JSON values (metadata, context) and the checks of client strings.

Everything here is pure and iterative: ``first_problem`` walks a decoded value
with an explicit stack, so no input can exhaust the interpreter's stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

MAX_DEPTH: Final = 8
"""Objects and arrays nested inside each other, the outermost counted as 1."""
METADATA_MAX_BYTES: Final = 64 * 1024
METADATA_MAX_KEYS: Final = 200
NESTED_MAX_KEYS: Final = 100
MAX_KEY_CHARS: Final = 255
SHOWN_KEY_CHARS: Final = 40

# Identity-like strings (names, ids, URLs, object keys): no C0 control, no DEL.
_IDENTITY_BAD: Final = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
# Free text (values in metadata and context): tab, newline and carriage return are fine.
_TEXT_BAD: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9_$-]+", re.ASCII)


def _char_problem(value: str, pattern: re.Pattern[str]) -> str | None:
    found = pattern.search(value)
    if found is None:
        return None
    code = ord(found.group())
    where = f"at character {found.start() + 1}"
    if 0xD800 <= code <= 0xDFFF:
        return f"must be valid Unicode: lone UTF-16 surrogate U+{code:04X} {where}"
    return f"must not contain control character U+{code:04X} {where}"


def identity_problem(value: str) -> str | None:
    """Why ``value`` cannot be a name, id, URL or key: a control character or lone surrogate."""
    return _char_problem(value, _IDENTITY_BAD)


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as free text; only tab, LF and CR of C0 are allowed."""
    return _char_problem(value, _TEXT_BAD)


def shown(text: str, limit: int = SHOWN_KEY_CHARS) -> str:
    """``text`` made safe to echo: at most ``limit`` characters, unprintables escaped."""
    cut = text[:limit]
    out = []
    for ch in cut:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out) + ("…" if len(text) > limit else "")


def child_path(path: str, key: str | int) -> str:
    """``path.key``, ``path["odd key"]`` or ``path[3]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if len(key) <= SHOWN_KEY_CHARS and _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f'{path}["{shown(key)}"]'


@dataclass(frozen=True)
class JsonLimits:
    max_depth: int = MAX_DEPTH
    max_top_keys: int | None = None
    """Keys of the outermost object; None: no limit."""
    max_nested_keys: int | None = None
    """Keys of any object inside it; None: no limit."""
    max_key_chars: int | None = None


METADATA_LIMITS: Final = JsonLimits(
    max_top_keys=METADATA_MAX_KEYS, max_nested_keys=NESTED_MAX_KEYS, max_key_chars=MAX_KEY_CHARS
)
CONTEXT_LIMITS: Final = JsonLimits()


def _key_problem(key: str, limits: JsonLimits) -> str | None:
    if limits.max_key_chars is not None and not 1 <= len(key) <= limits.max_key_chars:
        return f"key must be 1 to {limits.max_key_chars} characters, is {len(key)}"
    problem = identity_problem(key)
    return f"key {problem}" if problem else None


_Node = tuple[Any, int, "str | int | None", Any]
"""(value, depth, key or index it sits under, parent node): paths are built only when needed."""


def _path_of(node: _Node, root: str) -> str:
    parts: list[str | int] = []
    while node[2] is not None:
        parts.append(node[2])
        node = node[3]
    path = root
    for part in reversed(parts):
        path = child_path(path, part)
    return path


def first_problem(value: Any, path: str, limits: JsonLimits) -> tuple[str, str] | None:
    """The first ``(field, reason)`` in document order that makes ``value`` unacceptable.

    Checks nesting depth, key counts, keys (length, control characters, lone
    surrogates) and string values (``text_problem``). Iterative, with an explicit
    stack, so no nesting can exhaust the interpreter's stack.
    """
    stack: list[_Node] = [(value, 1, None, None)]
    while stack:
        node = stack.pop()
        item, depth, key, _ = node
        problem = None
        if isinstance(key, str):
            problem = _key_problem(key, limits)
        if problem is None and isinstance(item, str):
            problem = text_problem(item)
        elif problem is None and isinstance(item, dict | list):
            cap = limits.max_top_keys if depth == 1 else limits.max_nested_keys
            if depth > limits.max_depth:
                problem = f"nested deeper than {limits.max_depth} levels of objects and arrays"
            elif isinstance(item, list):
                stack.extend((item[i], depth + 1, i, node) for i in range(len(item) - 1, -1, -1))
            elif cap is not None and len(item) > cap:
                level = "at the top level" if depth == 1 else "in a nested object"
                problem = f"must have at most {cap} keys {level}, has {len(item)}"
            else:
                stack.extend((v, depth + 1, k, node) for k, v in reversed(item.items()))
        if problem is not None:
            return _path_of(node, path), problem
    return None
