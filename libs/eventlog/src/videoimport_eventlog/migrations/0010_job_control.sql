-- Job control for clients and operators.
--
-- Listing a project's jobs newest first, a page at a time: the cursor is the last
-- row's (started_at, job_id), so the next page is an index range scan.
CREATE INDEX status_jobs_listing_idx ON status_jobs (project, started_at DESC, job_id DESC);

-- Where a queued video is (owned by the ingester, read by the API's status): NULL
-- phase is "queued"; a worker sets "downloading" with the bytes so far (and the
-- size the origin announced, if any) at most about once a second, then "storing"
-- while it records the result. video_index is the video's place in its request,
-- so the status can join a row to its video without decoding the envelope (rows
-- queued before this migration have NULL and are read from the envelope).
ALTER TABLE ingest_tasks ADD COLUMN video_index integer;
ALTER TABLE ingest_tasks ADD COLUMN phase text;
ALTER TABLE ingest_tasks ADD COLUMN bytes_done bigint;
ALTER TABLE ingest_tasks ADD COLUMN bytes_total bigint;
