"""Which API versions this deployment answers."""

from __future__ import annotations

from typing import Literal

from videoimport_api.domain.errors import ApiError, FieldError

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


def require_answered(version: str, supported: frozenset[str], retired: frozenset[str]) -> None:
    """404 for a version this deployment never had, 410 for a retired one."""
    status = version_status(version, supported, retired)
    if status == "supported":
        return
    answered = ", ".join(sorted(supported - retired))
    details = [FieldError("apiVersion", f"supported: {answered}")]
    if status == "retired":
        raise ApiError(410, f"API version {version} is retired", details)
    raise ApiError(404, f"unknown API version {version}", details)
