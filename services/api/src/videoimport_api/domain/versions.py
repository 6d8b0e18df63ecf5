"""Which API versions this deployment answers."""

from __future__ import annotations

from typing import Literal

VersionStatus = Literal["supported", "retired", "unknown"]


def version_status(
    version: str, supported: frozenset[str], retired: frozenset[str]
) -> VersionStatus:
    # Retired wins: an operator retires a version by listing it, without editing the other list.
    if version in retired:
        return "retired"
    if version in supported:
        return "supported"
    return "unknown"
