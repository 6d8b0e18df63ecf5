-- What the stored file itself says, and its poster frame.
--
-- media_info is the JSON of videoimport_events.MediaInfo (container, duration, width,
-- height, frame_rate, video_codec, audio_codec, bit_rate), read by ffprobe from the
-- stored object; poster_key is the object key of the poster JPEG stored beside the
-- video. Kept on the registry row so that a metadata-only update and a skip report
-- them again, and on the status read model for the status's `video` object. NULL on
-- rows recorded before files were probed.
ALTER TABLE media ADD COLUMN media_info json;
ALTER TABLE media ADD COLUMN poster_key text;
ALTER TABLE status_videos ADD COLUMN media_info json;
ALTER TABLE status_videos ADD COLUMN poster_key text;
