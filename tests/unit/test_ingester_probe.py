"""ffprobe's JSON as MediaInfo, the container's mime type, and the commands (pure)."""

from __future__ import annotations

import msgspec
import pytest
from videoimport_events import MediaInfo
from videoimport_ingester import probe
from videoimport_projects import sniff

# Recorded from ffprobe 5.1 (-show_format -show_streams -of json) on the test videos of
# tests/media_harness.py, trimmed to the fields that matter and a few that do not.
MP4_OUTPUT = b"""{"streams": [{"index": 0, "codec_name": "h264", "codec_type": "video",
"width": 640, "height": 360, "pix_fmt": "yuv420p", "r_frame_rate": "25/1",
"avg_frame_rate": "25/1", "duration": "2.000000", "bit_rate": "1739912",
"disposition": {"default": 1, "attached_pic": 0}}, {"index": 1, "codec_name": "aac",
"codec_type": "audio", "sample_rate": "48000", "r_frame_rate": "0/0",
"avg_frame_rate": "0/0", "duration": "2.000000", "bit_rate": "69937",
"disposition": {"default": 1, "attached_pic": 0}}], "format": {"nb_streams": 2,
"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "format_long_name": "QuickTime / MOV",
"start_time": "0.000000", "duration": "2.000000", "size": "455203",
"bit_rate": "1820812", "probe_score": 100, "tags": {"major_brand": "isom"}}}"""
WEBM_OUTPUT = b"""{"streams": [{"index": 0, "codec_name": "vp9", "codec_type": "video",
"width": 640, "height": 360, "r_frame_rate": "25/1", "avg_frame_rate": "25/1",
"disposition": {"default": 0, "attached_pic": 0}}, {"index": 1, "codec_name": "opus",
"codec_type": "audio", "r_frame_rate": "0/0", "avg_frame_rate": "0/0",
"disposition": {"default": 0, "attached_pic": 0}}], "format": {"nb_streams": 2,
"format_name": "matroska,webm", "format_long_name": "Matroska / WebM",
"start_time": "-0.007000", "duration": "2.008000", "size": "99794", "bit_rate": "397585",
"probe_score": 100, "tags": {"ENCODER": "Lavf59.27.100"}}}"""


def output(streams: list[dict[str, object]], **format_fields: object) -> bytes:
    fields: dict[str, object] = {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", **format_fields}
    return msgspec.json.encode({"streams": streams, "format": fields})


H264 = {"codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080}


def test_a_recorded_mp4_becomes_media_info_with_its_container() -> None:
    assert probe.media_info(MP4_OUTPUT, sniff.MP4) == (
        MediaInfo(
            container="mp4",
            duration=2.0,
            width=640,
            height=360,
            frame_rate=25.0,
            video_codec="h264",
            audio_codec="aac",
            bit_rate=1820812,
        ),
        sniff.MP4,
    )


def test_a_recorded_webm_takes_its_duration_from_the_format() -> None:
    result = probe.media_info(WEBM_OUTPUT, sniff.WEBM)
    assert not isinstance(result, probe.Rejected)
    info, container = result
    assert (info.container, container.mime_type) == ("webm", "video/webm")
    assert (info.duration, info.video_codec, info.audio_codec) == (2.008, "vp9", "opus")


@pytest.mark.parametrize(
    ("sniffed", "format_name", "name", "mime_type"),
    [
        (sniff.MP4, "mov,mp4,m4a,3gp,3g2,mj2", "mp4", "video/mp4"),
        (sniff.QUICKTIME, "mov,mp4,m4a,3gp,3g2,mj2", "mov", "video/quicktime"),
        (sniff.THREE_GP, "mov,mp4,m4a,3gp,3g2,mj2", "3gp", "video/3gpp"),
        (sniff.WEBM, "matroska,webm", "webm", "video/webm"),
        (sniff.MATROSKA, "matroska,webm", "matroska", "video/x-matroska"),
        (sniff.AVI, "avi", "avi", "video/x-msvideo"),
        (sniff.MPEG_TS, "mpegts", "mpeg-ts", "video/mp2t"),
        (sniff.OGG, "ogg", "ogg", "video/ogg"),
    ],
)
def test_the_container_and_its_mime_type_follow_the_sniffed_bytes_within_ffprobes_family(
    sniffed: sniff.Container, format_name: str, name: str, mime_type: str
) -> None:
    container = sniff.probed_container(format_name, sniffed)
    assert container is not None
    assert (sniff.container_name(container), container.mime_type) == (name, mime_type)


def test_ffprobe_reading_another_format_than_the_bytes_showed_is_no_container() -> None:
    assert sniff.probed_container("matroska,webm", sniff.MP4) is None
    assert sniff.probed_container("", sniff.AVI) is None
    rejected = probe.media_info(output([H264], format_name="hls", duration="3"), sniff.MP4)
    assert isinstance(rejected, probe.Rejected)
    assert rejected.code == "unreadable_video"


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("30000/1001", 30000 / 1001),
        ("25/1", 25.0),
        ("0/0", None),
        ("0/1", None),
        ("", None),
        (None, None),
        ("fast", None),
    ],
)
def test_the_frame_rate_is_avg_frame_rate_when_it_says_one(
    text: str | None, rate: float | None
) -> None:
    assert probe.frame_rate(text) == rate


def test_the_duration_falls_back_to_the_video_stream_and_bit_rate_may_be_absent() -> None:
    raw = output([{**H264, "duration": "12.5", "avg_frame_rate": "0/0"}])
    result = probe.media_info(raw, sniff.MP4)
    assert not isinstance(result, probe.Rejected)
    info, _ = result
    assert (info.duration, info.frame_rate, info.bit_rate, info.audio_codec) == (
        12.5,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (output([{"codec_type": "audio", "codec_name": "aac"}], duration="2"), "no decodable"),
        (
            output([{**H264, "disposition": {"attached_pic": 1}}], duration="2"),
            "no decodable",
        ),
        (output([{**H264, "width": 0}], duration="2"), "no decodable"),
        (output([{**H264, "codec_name": None}], duration="2"), "no decodable"),
        (output([H264], duration="N/A"), "how long"),
        (output([H264]), "how long"),
        (b"{}", "not mp4 after all"),
        (b"not json", "not understood"),
    ],
)
def test_a_file_without_a_decodable_video_stream_is_unreadable(raw: bytes, why: str) -> None:
    rejected = probe.media_info(raw, sniff.MP4)
    assert isinstance(rejected, probe.Rejected)
    assert rejected.code == "unreadable_video"
    assert why in rejected.reason


def test_cover_art_is_skipped_for_the_real_video_stream() -> None:
    cover = {**H264, "codec_name": "mjpeg", "disposition": {"attached_pic": 1}}
    result = probe.media_info(output([cover, H264], duration="4"), sniff.MP4)
    assert not isinstance(result, probe.Rejected)
    assert result[0].video_codec == "h264"


def test_a_video_over_the_duration_limit_is_too_long() -> None:
    result = probe.media_info(MP4_OUTPUT, sniff.MP4)
    assert not isinstance(result, probe.Rejected)
    info = result[0]
    assert probe.too_long(info, None) is None
    assert probe.too_long(info, 2.0) is None
    assert probe.too_long(info, 1.5) == probe.Rejected(
        code="too_long", reason="too long: 2 s, the project's limit is 1.5 s"
    )


@pytest.mark.parametrize(
    ("key", "poster"),
    [
        ("news/m1/ev-1.mp4", "news/m1/ev-1.poster.jpg"),
        ("news/m1/ev-1", "news/m1/ev-1.poster.jpg"),
        ("a.b/m1/ev.1.webm", "a.b/m1/ev.1.poster.jpg"),
    ],
)
def test_the_poster_key_is_the_videos_with_its_extension_replaced(key: str, poster: str) -> None:
    assert probe.poster_key(key) == poster


def test_the_poster_is_taken_at_a_tenth_or_from_the_first_frame_of_a_short_video() -> None:
    assert probe.poster_seek(120.0) == 12.0
    assert probe.poster_seek(1.0) == 0.1
    assert probe.poster_seek(0.4) is None


URL = "http://127.0.0.1:9000/media/news/m1/ev-1.mp4?X-Amz-Signature=abc"


def test_the_commands_force_the_demuxer_and_allow_only_the_urls_protocols() -> None:
    command = probe.ffprobe_command("/usr/bin/ffprobe", URL, "mov")
    assert command[0] == "/usr/bin/ffprobe"
    assert command[-6:] == ["-protocol_whitelist", "http,tcp", "-f", "mov", "-i", URL]
    assert command[1:3] == ["-v", "error"]
    https = probe.poster_command("ffmpeg", URL.replace("http:", "https:"), "matroska", 30.0)
    assert https[https.index("-protocol_whitelist") + 1] == "https,tls,tcp"
    assert https[https.index("-ss") + 1] == "3.000"
    assert https[https.index("-f") + 1] == "matroska"
    assert "scale='min(1280,iw)':-2" in https
    assert "-ss" not in probe.poster_command("ffmpeg", URL, "mov", 0.5)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "/tmp/x.mp4"])
def test_no_command_is_built_for_anything_but_an_http_url(url: str) -> None:
    with pytest.raises(ValueError, match="http or https"):
        probe.ffprobe_command("ffprobe", url, "mov")
