-- The schema as the first release created it. Every statement is idempotent, so
-- a database made by that release (which had no schema_migrations) upgrades here.

-- event log, consumer bookkeeping (eventlog)
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

-- projects and API tokens (projects)
CREATE TABLE IF NOT EXISTS projects (
    name        text PRIMARY KEY,
    config      json NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash  bytea PRIMARY KEY,
    project     text NOT NULL REFERENCES projects(name),
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- idempotency keys (api)
CREATE TABLE IF NOT EXISTS idempotency_keys (
    project         text NOT NULL,
    key             text NOT NULL,
    request_sha256  text NOT NULL,
    job_id          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, key)
);

-- media registry (ingester)
CREATE TABLE IF NOT EXISTS media (
    project      text NOT NULL,
    system_name  text NOT NULL,
    external_id  text NOT NULL,
    media_id     text NOT NULL,
    url          text NOT NULL,
    file_name    text NOT NULL,
    metadata     json NOT NULL,
    mime_type    text NOT NULL,
    storage_key  text NOT NULL,
    size         bigint NOT NULL,
    sha256       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, system_name, external_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS media_media_id_idx ON media (media_id);

-- status read model (projector)
CREATE TABLE IF NOT EXISTS status_jobs (
    job_id       text PRIMARY KEY,
    project      text NOT NULL,
    system_name  text NOT NULL,
    state        text NOT NULL,
    video_count  integer NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    success      integer NOT NULL DEFAULT 0,
    skipped      integer NOT NULL DEFAULT 0,
    failed       integer NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS status_videos (
    job_id       text NOT NULL,
    idx          integer NOT NULL,
    system_name  text NOT NULL,
    external_id  text NOT NULL,
    state        text,
    reason       text,
    code         text,
    media_id     text,
    mime_type    text,
    storage_key  text,
    outcome      text,
    PRIMARY KEY (job_id, idx)
);

CREATE TABLE IF NOT EXISTS projector_job_state (
    job_id  text PRIMARY KEY,
    state   json NOT NULL
);

-- webhook deliveries (notifier)
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    delivery_id      text PRIMARY KEY,
    job_id           text NOT NULL,
    project          text NOT NULL,
    url              text NOT NULL,
    payload          json NOT NULL,
    state            text NOT NULL DEFAULT 'pending',
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    cause_event_id   text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due_idx
    ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_job_idx ON webhook_deliveries (job_id);
