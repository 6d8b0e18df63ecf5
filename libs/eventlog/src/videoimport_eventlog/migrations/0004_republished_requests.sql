-- Requested videos the relay published again because no terminal event came
-- (reconciliation from the log), with a backoff per request.
CREATE TABLE republished_requests (
    event_id  uuid PRIMARY KEY,
    position  bigint NOT NULL,
    times     integer NOT NULL,
    last_at   timestamptz NOT NULL
);
