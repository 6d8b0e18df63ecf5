"""Tables of the event log and of the delivery bookkeeping every consumer shares."""

from __future__ import annotations

import asyncpg

# Any constant works; it only has to differ from the other advisory locks we take.
MIGRATION_LOCK = 7_110_001

DDL = """
CREATE TABLE IF NOT EXISTS events (
    position        bigint PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    stream_id       text NOT NULL,
    stream_version  integer NOT NULL,
    event_type      text NOT NULL,
    schema_version  integer NOT NULL,
    data            json NOT NULL,
    project         text NOT NULL,
    correlation_id  text NOT NULL,
    causation_id    text,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    hash            bytea NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX IF NOT EXISTS events_correlation_idx ON events (correlation_id, position);
CREATE INDEX IF NOT EXISTS events_type_idx ON events (event_type, position);

-- The log is append-only: reject any change to a recorded event.
CREATE OR REPLACE FUNCTION events_are_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only';
END;
$$ LANGUAGE plpgsql;
-- Created only when missing: re-creating it would take an exclusive lock on
-- events on every service start and deadlock with concurrent appends.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_immutable'
                   AND tgrelid = 'events'::regclass) THEN
        CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE ON events
            FOR EACH ROW EXECUTE FUNCTION events_are_immutable();
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS tracking (
    name        text PRIMARY KEY,
    position    bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS inbox (
    consumer      text NOT NULL,
    message_id    text NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
"""


async def migrate(conn: asyncpg.Connection, ddl: str = DDL) -> None:
    """Apply idempotent DDL; concurrent starters wait for each other."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(ddl)
