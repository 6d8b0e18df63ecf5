-- The append lock and the log's head in one round trip (store.append).
--
-- Not one plain SELECT: a statement reads with the snapshot taken when it
-- started, before a contended lock is granted, so it could miss the rows of
-- the writer it waited for and hand out their positions again. In READ
-- COMMITTED every statement of a VOLATILE function takes a fresh snapshot, so
-- the head below is read after the lock is held, as commit order requires.
CREATE OR REPLACE FUNCTION events_lock_head(lock_key bigint)
RETURNS TABLE (locked_at timestamptz, head_position bigint, head_hash bytea)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN QUERY
        SELECT clock_timestamp(), last.position, last.hash
        FROM (SELECT 1) AS one
        LEFT JOIN (SELECT e.position, e.hash FROM events AS e ORDER BY e.position DESC LIMIT 1)
            AS last ON true;
END
$$;
