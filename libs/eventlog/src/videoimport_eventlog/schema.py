"""Versioned schema migrations of the one database every service shares.

The files in ``migrations/`` (``NNNN_name.sql``) are applied in order, each in
its own transaction with its version recorded in ``schema_migrations``. Every
service applies what is missing when it starts; concurrent starters wait for
each other on an advisory lock, so each file runs exactly once. A file is never
edited once released: a change is a new file.

``0001_baseline`` is the schema of the first release, written idempotently, so
a database that release created (without ``schema_migrations``) upgrades in
place like an empty one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

# Any constant works; it only has to differ from the other advisory locks we take.
MIGRATION_LOCK = 7_110_001
_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration shipped with this code, in version order."""
    found: list[Migration] = []
    for entry in resources.files("videoimport_eventlog.migrations").iterdir():
        match = _FILE.fullmatch(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return found


def latest_version() -> int:
    return len(migrations())


async def applied_versions(conn: asyncpg.Connection) -> set[int]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    return {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply every migration not applied yet; returns the versions applied now.

    A database newer than this code (a version we do not know) is refused: an
    old binary must not run against a schema it does not understand.
    """
    known = migrations()
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(_LEDGER)
        done = await applied_versions(conn)
        unknown = sorted(done - {m.version for m in known})
        if unknown:
            raise RuntimeError(
                f"the database has schema version {unknown[-1]}, newer than this code"
                f" ({len(known)}); deploy the newer release"
            )
        for migration in known:
            if migration.version in done:
                continue
            async with conn.transaction():  # a savepoint: one file, all or nothing
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            applied_now.append(migration.version)
    return applied_now
