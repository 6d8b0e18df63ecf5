"""Typed settings from the environment: the only place that reads it.

Each service declares one frozen msgspec Struct; ``from_env`` fills each field
from ``VIDEOIMPORT_<FIELD>`` (upper case), converting strings to the field type.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

T = TypeVar("T", bound=msgspec.Struct)
PREFIX = "VIDEOIMPORT_"


def from_env(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name in cls.__struct_fields__:
        raw = env.get(PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    try:
        return msgspec.convert(values, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise SystemExit(f"configuration error: {exc} (environment {PREFIX}*)") from exc


def topic(name: str, prefix: str) -> str:
    """A topic name with the deployment's prefix (tests isolate themselves by it)."""
    return prefix + name
