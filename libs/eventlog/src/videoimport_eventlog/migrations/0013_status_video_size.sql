-- The stored object's size and sha256 on the status read model, for the status's
-- `video` object beside the probed media_info (0012). Every result that points at a
-- stored object has carried both since the first release, so the rows projected
-- before this migration are filled from their own result events: the live table
-- then equals a rebuild, and `rebuild --check` finds no difference.
ALTER TABLE status_videos ADD COLUMN size bigint;
ALTER TABLE status_videos ADD COLUMN sha256 text;

UPDATE status_videos v
SET size = (e.data->>'size')::bigint, sha256 = e.data->>'sha256'
FROM events e
WHERE e.stream_id = 'job-' || v.job_id || '/video-' || v.idx
  AND e.stream_version = 1
  AND e.event_type IN ('VideoImported', 'VideoImportSkipped')
  AND v.state IN ('success', 'skipped');
