"""Projects and their API tokens in PostgreSQL (tokens are stored as hashes)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import asyncpg

from videoimport_projects.config import ProjectConfig, encode_config, parse_config

WRITE_SCOPE = "public-api:write"
TOKEN_PREFIX = "vit_"


class ProjectExists(Exception):
    pass


class UnknownProject(Exception):
    pass


@dataclass(frozen=True)
class TokenGrant:
    project: str
    scopes: frozenset[str]


def hash_token(token: str) -> bytes:
    # Tokens carry 256 bits of randomness, so a plain digest is enough (no KDF).
    return hashlib.sha256(token.encode()).digest()


async def create_project(conn: asyncpg.Connection, name: str, config: ProjectConfig) -> None:
    inserted = await conn.fetchval(
        "INSERT INTO projects (name, config) VALUES ($1, $2::json)"
        " ON CONFLICT DO NOTHING RETURNING true",
        name,
        encode_config(config).decode(),
    )
    if not inserted:
        raise ProjectExists(name)


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


async def create_token(conn: asyncpg.Connection, project: str, scopes: list[str]) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        await conn.execute(
            "INSERT INTO api_tokens (token_hash, project, scopes) VALUES ($1, $2, $3)",
            hash_token(token),
            project,
            sorted(set(scopes)),
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise UnknownProject(project) from exc
    return token


async def grant_for(conn: asyncpg.Connection, token: str) -> TokenGrant | None:
    row = await conn.fetchrow(
        "SELECT project, scopes FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        hash_token(token),
    )
    if row is None:
        return None
    return TokenGrant(project=row["project"], scopes=frozenset(row["scopes"]))
