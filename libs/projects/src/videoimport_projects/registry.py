"""Projects and their API tokens in PostgreSQL (tokens are stored as hashes).

A token is valid while it is neither revoked (``revoked_at``) nor past its
``expires_at``; ``grant_for`` checks both on every request, so revoking one takes
effect at once. Tokens are named by ``token_id``, a prefix of their hash: the
token itself is never stored or shown again after ``create_token``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from videoimport_projects import webhook_secrets
from videoimport_projects.config import ProjectConfig, encode_config, parse_config
from videoimport_projects.errors import ProjectExists, UnknownProject, UnknownToken

__all__ = [
    "TOKEN_ID_CHARS",
    "TOKEN_PREFIX",
    "WRITE_SCOPE",
    "ProjectExists",
    "TokenGrant",
    "TokenInfo",
    "UnknownProject",
    "UnknownToken",
    "create_project",
    "create_token",
    "grant_for",
    "hash_token",
    "list_tokens",
    "project_config",
    "revoke_token",
    "set_config",
    "token_id",
]

WRITE_SCOPE = "public-api:write"
TOKEN_PREFIX = "vit_"
TOKEN_ID_CHARS = 16
"""Hex characters of the token's sha256 shown as its id (64 bits: unique in practice)."""
MIN_TOKEN_ID_CHARS = 8
_TOKEN_ID = re.compile(r"[0-9a-f]{8,64}")


@dataclass(frozen=True)
class TokenGrant:
    project: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class TokenInfo:
    """What an operator may see of a token: never the token."""

    id: str
    project: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def hash_token(token: str) -> bytes:
    # Tokens carry 256 bits of randomness, so a plain digest is enough (no KDF).
    return hashlib.sha256(token.encode()).digest()


def token_id(token_hash: bytes) -> str:
    """How a token is named in listings and ``token revoke``: its hash's first hex
    digits, which whoever holds the token can compute (sha256 of it)."""
    return token_hash.hex()[:TOKEN_ID_CHARS]


async def create_project(conn: asyncpg.Connection, name: str, config: ProjectConfig) -> None:
    """The project with its first webhook secret, in one transaction."""
    async with conn.transaction():
        inserted = await conn.fetchval(
            "INSERT INTO projects (name, config) VALUES ($1, $2::json)"
            " ON CONFLICT DO NOTHING RETURNING true",
            name,
            encode_config(config).decode(),
        )
        if not inserted:
            raise ProjectExists(name)
        await webhook_secrets.create_secret(conn, name)


async def set_config(conn: asyncpg.Connection, name: str, config: ProjectConfig) -> None:
    updated = await conn.fetchval(
        "UPDATE projects SET config = $2::json WHERE name = $1 RETURNING true",
        name,
        encode_config(config).decode(),
    )
    if not updated:
        raise UnknownProject(name)


async def project_config(conn: asyncpg.Connection, name: str) -> ProjectConfig | None:
    raw: str | None = await conn.fetchval("SELECT config::text FROM projects WHERE name = $1", name)
    return None if raw is None else parse_config(raw)


async def create_token(
    conn: asyncpg.Connection,
    project: str,
    scopes: list[str],
    expires_in: timedelta | None = None,
) -> str:
    """A new token (returned once, stored only as its hash); it stops working
    ``expires_in`` from now, or never."""
    if expires_in is not None and expires_in <= timedelta(0):
        raise ValueError("a token's lifetime must be positive")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        await conn.execute(
            "INSERT INTO api_tokens (token_hash, project, scopes, expires_at)"
            " VALUES ($1, $2, $3, now() + $4::interval)",
            hash_token(token),
            project,
            sorted(set(scopes)),
            expires_in,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise UnknownProject(project) from exc
    return token


async def grant_for(conn: asyncpg.Connection, token: str) -> TokenGrant | None:
    """The grant of a valid token; None when unknown, revoked or expired."""
    row = await conn.fetchrow(
        "SELECT project, scopes FROM api_tokens WHERE token_hash = $1"
        " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
        hash_token(token),
    )
    if row is None:
        return None
    return TokenGrant(project=row["project"], scopes=frozenset(row["scopes"]))


def _info(row: asyncpg.Record) -> TokenInfo:
    return TokenInfo(
        id=token_id(bytes(row["token_hash"])),
        project=row["project"],
        scopes=list(row["scopes"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


async def list_tokens(conn: asyncpg.Connection, project: str) -> list[TokenInfo]:
    """Every token of the project, revoked and expired ones included, oldest first."""
    if not await conn.fetchval("SELECT true FROM projects WHERE name = $1", project):
        raise UnknownProject(project)
    rows = await conn.fetch(
        "SELECT token_hash, project, scopes, created_at, expires_at, revoked_at"
        " FROM api_tokens WHERE project = $1 ORDER BY created_at, token_hash",
        project,
    )
    return [_info(row) for row in rows]


async def revoke_token(conn: asyncpg.Connection, id_prefix: str) -> tuple[TokenInfo, bool]:
    """Revoke the token whose id starts with ``id_prefix`` (at least 8 hex digits);
    returns it and whether it was revoked now (False: it already was).

    ``UnknownToken`` when no token or more than one matches."""
    wanted = id_prefix.strip().lower()
    if not _TOKEN_ID.fullmatch(wanted):
        raise UnknownToken(
            f"{id_prefix!r} is not a token id ({MIN_TOKEN_ID_CHARS} to 64 hex digits)"
        )
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT token_hash, project, scopes, created_at, expires_at, revoked_at"
            " FROM api_tokens WHERE left(encode(token_hash, 'hex'), $2) = $1 FOR UPDATE",
            wanted,
            len(wanted),
        )
        if not rows:
            raise UnknownToken(f"no token {wanted}")
        if len(rows) > 1:
            raise UnknownToken(f"{wanted} names {len(rows)} tokens; give more of the id")
        row = rows[0]
        if row["revoked_at"] is not None:
            return _info(row), False
        revoked = await conn.fetchrow(
            "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = $1"
            " RETURNING token_hash, project, scopes, created_at, expires_at, revoked_at",
            row["token_hash"],
        )
    assert revoked is not None
    return _info(revoked), True
