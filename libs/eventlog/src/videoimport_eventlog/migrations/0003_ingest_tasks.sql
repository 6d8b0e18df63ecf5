-- The ingester's durable work queue between Kafka and the downloads (owned by the
-- ingester). The Kafka handler only records each VideoImportRequested here, so
-- offsets commit at once and a rebalance never waits for a download; workers
-- claim rows fairly (per project, per job, in order per video), hold a lease
-- they renew while the download runs, and delete the row once the video's
-- terminal event is in the log. A row whose lease ran out (a crashed worker)
-- is claimable again; the inbox makes the redo append nothing twice.
CREATE TABLE ingest_tasks (
    event_id     text PRIMARY KEY,          -- the VideoImportRequested's event id
    position     bigint NOT NULL,           -- its log position: the order per video
    project      text NOT NULL,
    job_id       text NOT NULL,
    video_key    text NOT NULL,             -- (project, system, external id), unambiguous
    envelope     json NOT NULL,             -- the Kafka envelope, verbatim
    attempts     integer NOT NULL DEFAULT 0,   -- counted failures (outages do not count)
    not_before   timestamptz NOT NULL DEFAULT now(),
    lease_owner  text,
    lease_until  timestamptz,               -- running while in the future
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- "Is an earlier request of this video still queued?"
CREATE INDEX ingest_tasks_video_idx ON ingest_tasks (video_key, position);
-- Rows running per project and job (the fairness counts).
CREATE INDEX ingest_tasks_leased_idx ON ingest_tasks (project, job_id, lease_until)
    WHERE lease_until IS NOT NULL;
CREATE INDEX ingest_tasks_job_idx ON ingest_tasks (project, job_id, position);
