"""Upcasters: read an event recorded under an older schema version as the current one.

Changes to an event type are additive. When one cannot be (a field renamed,
removed or retyped), the type either gets a new, separately named successor, or
its ``schema_version`` goes up by one and an upcaster is registered here for the
step: a pure function from the data of version ``n`` (the JSON object in the
envelope's ``data``, a ``dict``) to that of version ``n + 1``. The event log is
never rewritten: old events stay as they were recorded, and
``decode_envelope`` / ``decode_event`` upcast them on every read, step by step.

A type's module registers its steps on ``UPCASTERS`` next to the type::

    @UPCASTERS.register("VideoImportFailed", from_version=1)
    def _code_added(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "code": "internal_error"}

``compatibility.breaking_changes`` accepts a bumped version only when every
step from the recorded contract's version to the current one is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""The data of one schema version in, the data of the next version out."""


class UpcastError(msgspec.ValidationError):
    """An event cannot be brought to its type's current version.

    A ``msgspec.ValidationError``, so a consumer treats it like any other event it
    cannot decode (retries, then parks it).
    """


class Upcasters:
    """A registry of steps: ``(type name, from_version) -> upcaster``."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}

    def register(self, type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: ``fn`` turns ``type_name`` data of ``from_version`` into the next one."""
        if from_version < 1:
            raise ValueError(f"schema versions start at 1, not {from_version}")

        def add(fn: Upcaster) -> Upcaster:
            key = (type_name, from_version)
            if key in self._steps:
                raise ValueError(
                    f"{type_name}: an upcaster from v{from_version} is already registered"
                )
            self._steps[key] = fn
            return fn

        return add

    def __len__(self) -> int:
        return len(self._steps)

    def missing_steps(self, type_name: str, from_version: int, to_version: int) -> list[int]:
        """The versions in ``[from_version, to_version)`` that have no step onwards."""
        return [v for v in range(from_version, to_version) if (type_name, v) not in self._steps]

    def upcast(
        self, type_name: str, data: dict[str, Any], from_version: int, to_version: int
    ) -> dict[str, Any]:
        """``data`` of ``from_version`` as ``to_version`` (unchanged when they are equal)."""
        for version in range(from_version, to_version):
            step = self._steps.get((type_name, version))
            if step is None:
                raise UpcastError(
                    f"{type_name}: no upcaster from schema version {version} "
                    f"(the event was recorded as v{from_version}, the current one is "
                    f"v{to_version})"
                )
            try:
                # A copy: an upcaster that edits its argument cannot touch the caller's data.
                data = step(dict(data))
            except Exception as exc:
                raise UpcastError(
                    f"{type_name}: upcasting from v{version} failed: {exc!r}"
                ) from exc
            if not isinstance(data, dict):
                raise UpcastError(f"{type_name}: the upcaster from v{version} returned no object")
        return data


UPCASTERS: Final = Upcasters()
"""The registry the decoding path uses (``catalog.decode_envelope``); empty while every
event type is at its first schema version."""
