"""Versioned migrations against a real PostgreSQL, including an upgrade in place of a
database that the first release (before versioned migrations) created."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from videoimport_eventlog import audit_trail, schema, store
from videoimport_projects import project_config

from tests.requests import requested_job

pytestmark = pytest.mark.integration

RELEASE_0_1 = Path(__file__).resolve().parents[1] / "fixtures" / "schema" / "release-0.1.sql"


async def tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r["tablename"] for r in rows}


async def test_an_empty_database_gets_every_migration_once(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        applied = await schema.migrate(conn)
        assert applied == list(range(1, schema.latest_version() + 1))
        assert await schema.migrate(conn) == []
        assert {"events", "dead_letters", "media", "webhook_deliveries"} <= await tables(conn)
        names = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")]
        assert names[:2] == ["baseline", "dead_letters"]
    finally:
        await conn.close()


async def test_a_database_of_the_first_release_upgrades_in_place(pg_dsn: str) -> None:
    # A separate connection: the dump empties its session's search_path.
    loader = await asyncpg.connect(pg_dsn)
    try:
        await loader.execute(RELEASE_0_1.read_text())
    finally:
        await loader.close()
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert "schema_migrations" not in await tables(conn)
        applied = await schema.migrate(conn)
        assert applied == list(range(1, schema.latest_version() + 1))
        # The data of the old release is all there and still verifies.
        assert await audit_trail.verify_chain(conn) == 3
        events = await store.read_correlated(conn, "legacyjob0001")
        assert [e.event_type for e in events] == [
            "ImportRequested",
            "VideoImportRequested",
            "VideoImportFailed",
        ]
        assert await conn.fetchval("SELECT media_id FROM media") == "mlegacy000000000001"
        assert await project_config(conn, "legacy") is not None
        assert await conn.fetchval("SELECT position FROM tracking WHERE name = 'relay'") == 3
        # The old rows keep the formula that sealed them (their head hash, which an
        # auditor may have noted, is unchanged); what this release appends on top
        # covers every column, and the whole log verifies.
        legacy_head = await conn.fetchval("SELECT hash FROM events WHERE position = 3")
        assert legacy_head.hex().startswith("e38c18a773a6aa89")
        async with conn.transaction():
            await store.append(conn, requested_job("newjob000001", 2, project="legacy"))
        versions = await conn.fetch("SELECT chain_version FROM events ORDER BY position")
        assert [r["chain_version"] for r in versions] == [1, 1, 1, 2, 2, 2]
        assert await audit_trail.verify_chain(conn) == 6
        # A new row's "when" is sealed; an old row's is not (it never was).
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_immutable")
        await conn.execute(
            "UPDATE events SET occurred_at = occurred_at + interval '1 hour' WHERE position = 1"
        )
        assert await audit_trail.verify_chain(conn) == 6
        await conn.execute(
            "UPDATE events SET occurred_at = occurred_at + interval '1 hour' WHERE position = 5"
        )
        with pytest.raises(store.ChainBroken, match="position 5: hash mismatch"):
            await audit_trail.verify_chain(conn)
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_immutable")
        # The new tables work next to the old data.
        await conn.execute(
            "INSERT INTO dead_letters (consumer, source, error, attempts) VALUES ('x', 'y', 'z', 1)"
        )
        # The append-only trigger of the old release is still in force.
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("DELETE FROM events")
    finally:
        await conn.close()


async def test_a_database_newer_than_the_code_is_refused(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await schema.migrate(conn)
        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
        with pytest.raises(RuntimeError, match="newer than this code"):
            await schema.migrate(conn)
    finally:
        await conn.close()


async def test_services_starting_together_apply_each_migration_once(pg_dsn: str) -> None:
    conns = [await asyncpg.connect(pg_dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(schema.migrate(c) for c in conns))
        applied = sorted(v for result in results for v in result)
        assert applied == list(range(1, schema.latest_version() + 1))
        count = await conns[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert count == schema.latest_version()
    finally:
        for c in conns:
            await c.close()
