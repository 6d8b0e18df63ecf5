-- The uploads ledger (owned by the ingester): every object write the ingester
-- begins, recorded before its first S3 call, until the request that made it is
-- settled. A SIGKILL runs no cleanup, so this is how an incomplete multipart
-- upload or an object nobody registers is found again. The commit of the
-- video's terminal event deletes the entry of the object the registry now
-- references; the others are aborted/deleted right after that commit, or, if
-- the process died first, by the next claim of the request or the janitor
-- (after VIDEOIMPORT_UNSETTLED_UPLOAD_GRACE). One row per attempt: a retry
-- writing the same key adds a row, so an earlier attempt's upload is not lost.
CREATE TABLE unsettled_uploads (
    id           bigserial PRIMARY KEY,
    request_id   text NOT NULL,             -- the VideoImportRequested's event id (inbox message id)
    storage_key  text NOT NULL,
    upload_id    text,                      -- the multipart upload once created; NULL: one PutObject
    started_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX unsettled_uploads_request_idx ON unsettled_uploads (request_id);
CREATE INDEX unsettled_uploads_started_idx ON unsettled_uploads (started_at);

-- "Does the registry still reference this key?", asked before deleting an object.
CREATE INDEX media_storage_key_idx ON media (storage_key);
