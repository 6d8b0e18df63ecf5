-- What a consumer gave up on after bounded retries, for an operator to see and
-- replay (`videoimport deadletters list|retry`). A letter names the logged event
-- when there is one: the log, not the letter, is what a retry handles again.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    consumer    text NOT NULL,
    event_id    uuid,
    position    bigint,
    source      text NOT NULL,
    error       text NOT NULL,
    attempts    integer NOT NULL,
    state       text NOT NULL DEFAULT 'parked' CHECK (state IN ('parked', 'retry', 'resolved')),
    payload     bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX dead_letters_event_idx ON dead_letters (consumer, event_id)
    WHERE event_id IS NOT NULL;
CREATE INDEX dead_letters_retry_idx ON dead_letters (consumer) WHERE state = 'retry';
