-- Media objects a re-import with a new url replaced (owned by the ingester).
-- The ingester records the old key in the transaction that points the registry
-- at the new one; its sweeper deletes the object once `delete_after` has passed
-- (NULL: kept for good, VIDEOIMPORT_SUPERSEDED_GRACE <= 0), appends
-- MediaObjectDeleted and deletes the row.
CREATE TABLE superseded_objects (
    storage_key    text PRIMARY KEY,
    project        text NOT NULL,
    media_id       text NOT NULL,
    system_name    text NOT NULL,
    external_id    text NOT NULL,
    superseded_at  timestamptz NOT NULL DEFAULT now(),
    delete_after   timestamptz
);
CREATE INDEX superseded_objects_due_idx ON superseded_objects (delete_after)
    WHERE delete_after IS NOT NULL;

-- The status read model (projector): a result whose object MediaObjectDeleted
-- removed has no link any more.
ALTER TABLE status_videos ADD COLUMN link_expired boolean NOT NULL DEFAULT false;
CREATE INDEX status_videos_storage_key_idx ON status_videos (storage_key);
