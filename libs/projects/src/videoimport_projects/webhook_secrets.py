"""Per-project webhook signing secrets, in the Standard Webhooks format.

A secret is ``whsec_`` followed by the base64 of 32 random bytes (the HMAC-SHA256
key; keys under ``MIN_KEY_BYTES`` are refused here and by the table). Every project
has one *current* secret (``expires_at`` NULL, at most one per project) and, while a
rotation overlaps, older ones that stay valid until their ``expires_at``. The
notifier signs each webhook with every valid secret of its project, so a receiver
holding the old or the new one verifies it during the overlap.

Secrets are stored in the clear (signing needs the key itself) in
``project_webhook_secrets`` and never logged: ``WebhookSecret`` keeps the value out
of its repr, and no error message quotes one. Validity is judged by the database's
clock, the same that set ``expires_at``.

A project gets its secret with ``create_project``; projects that existed before the
table got one from migration 0005; ``ensure_secret`` creates one for a project that
still has none (created by an older release still running during an upgrade).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from videoimport_projects.errors import UnknownProject

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_KEY_BYTES = 24
DEFAULT_OVERLAP = timedelta(hours=24)
"""How long the previous secret stays valid after a rotation, unless told otherwise."""


@dataclass(frozen=True)
class WebhookSecret:
    id: int
    project: str
    secret: str = field(repr=False)
    created_at: datetime
    expires_at: datetime | None
    """None for the current secret; set on older ones by a rotation."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ValueError (never quoting the
    secret) when it is malformed or shorter than ``MIN_KEY_BYTES``."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret must start with whsec_")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret must be whsec_ followed by base64") from exc
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"a webhook secret's key must have at least {MIN_KEY_BYTES} bytes, not {len(key)}"
        )
    return key


_COLUMNS = "id, project, secret, created_at, expires_at"


def _secret(row: asyncpg.Record) -> WebhookSecret:
    return WebhookSecret(
        id=row["id"],
        project=row["project"],
        secret=row["secret"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
    )


async def create_secret(conn: asyncpg.Connection, project: str) -> str:
    """The first (current) secret of a new project, in the caller's transaction."""
    secret = new_secret()
    await conn.execute(
        "INSERT INTO project_webhook_secrets (project, secret) VALUES ($1, $2)", project, secret
    )
    return secret


async def current_secret(conn: asyncpg.Connection, project: str) -> WebhookSecret | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM project_webhook_secrets WHERE project = $1 AND expires_at IS NULL",
        project,
    )
    return None if row is None else _secret(row)


async def ensure_secret(conn: asyncpg.Connection, project: str) -> WebhookSecret:
    """The project's current secret, created if it has none; ``UnknownProject``
    when there is no such project. Safe to race: one current secret per project."""
    found = await current_secret(conn, project)
    if found is not None:
        return found
    try:
        await conn.execute(
            "INSERT INTO project_webhook_secrets (project, secret) VALUES ($1, $2)"
            " ON CONFLICT (project) WHERE expires_at IS NULL DO NOTHING",
            project,
            new_secret(),
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise UnknownProject(project) from exc
    found = await current_secret(conn, project)
    if found is None:  # only if someone rotated and expired it in between
        raise RuntimeError(f"project {project} has no current webhook secret")
    return found


async def valid_secrets(conn: asyncpg.Connection, project: str) -> list[WebhookSecret]:
    """Every secret of the project valid now, newest first (empty: none yet)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM project_webhook_secrets"
        " WHERE project = $1 AND (expires_at IS NULL OR expires_at > now())"
        " ORDER BY created_at DESC, id DESC",
        project,
    )
    return [_secret(row) for row in rows]


async def rotate_secret(
    conn: asyncpg.Connection, project: str, overlap: timedelta = DEFAULT_OVERLAP
) -> WebhookSecret:
    """A new current secret; every secret valid now stays valid for at most
    ``overlap`` more (an earlier expiry is kept; ``overlap`` 0 ends them at once)."""
    if overlap < timedelta(0):
        raise ValueError("the overlap cannot be negative")
    async with conn.transaction():
        # One rotation of a project at a time. NO KEY UPDATE does not block the
        # notifier, whose inserts only take KEY SHARE on the project row.
        exists = await conn.fetchval(
            "SELECT true FROM projects WHERE name = $1 FOR NO KEY UPDATE", project
        )
        if not exists:
            raise UnknownProject(project)
        await conn.execute(
            "UPDATE project_webhook_secrets"
            " SET expires_at = LEAST(COALESCE(expires_at, 'infinity'), now() + $2::interval)"
            " WHERE project = $1 AND (expires_at IS NULL OR expires_at > now())",
            project,
            overlap,
        )
        row = await conn.fetchrow(
            "INSERT INTO project_webhook_secrets (project, secret) VALUES ($1, $2)"
            f" RETURNING {_COLUMNS}",
            project,
            new_secret(),
        )
    assert row is not None
    return _secret(row)
