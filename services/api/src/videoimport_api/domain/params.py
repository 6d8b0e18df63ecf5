"""Query parameters shared by several routes: a job ``id`` and ``dryRun``."""

from __future__ import annotations

from typing import Final

from videoimport_api.domain.errors import ApiError, FieldError
from videoimport_api.domain.json_limits import identity_problem

MAX_JOB_ID: Final = 255
"""Far above a real job id (12 characters), below anything that could hurt a query."""


def parse_dry_run(raw: str | None) -> bool:
    """``dryRun``: absent or ``false`` imports, ``true`` only answers what would happen."""
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise ApiError(
        400, "invalid query parameter dryRun", [FieldError("dryRun", "must be true or false")]
    )


def parse_job_id(raw: str | None) -> str:
    if raw is None:
        raise ApiError(400, "missing query parameter id", [FieldError("id", "required")])
    if not raw.strip():
        raise ApiError(400, "empty query parameter id", [FieldError("id", "must not be empty")])
    job_id = raw.strip()
    # Refused before any query: PostgreSQL cannot take a NUL, and no job id is that long.
    problem = identity_problem(job_id) or (
        f"must be at most {MAX_JOB_ID} characters" if len(job_id) > MAX_JOB_ID else None
    )
    if problem:
        raise ApiError(400, "invalid query parameter id", [FieldError("id", problem)])
    return job_id
