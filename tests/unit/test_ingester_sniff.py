"""Video container sniffing on real files and on bodies that are not videos."""

from __future__ import annotations

from pathlib import Path

import pytest
from videoimport_projects import sniff


def head_of(path: Path) -> bytes:
    return path.read_bytes()[: sniff.SNIFF_BYTES]


@pytest.mark.parametrize(
    ("name", "mime_type", "extension"),
    [
        ("sample.mp4", "video/mp4", ".mp4"),
        ("sample.webm", "video/webm", ".webm"),
        ("sample.mov", "video/quicktime", ".mov"),
    ],
)
def test_real_fixtures_sniff_as_their_container(
    fixtures_dir: Path, name: str, mime_type: str, extension: str
) -> None:
    container = sniff.sniff(head_of(fixtures_dir / name))
    assert container is not None
    assert container.mime_type == mime_type
    assert container.extension == extension


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><html><head><title>Not found</title></head></html>",
        b"  \n<html><body>video.mp4</body></html>",
        b'{"error": "not found", "url": "https://example.com/a.mp4"}',
        b"[1, 2, 3]",
        b"plain text that merely mentions ftyp and webm",
        b"GET me some video" + b"x" * 400,  # starts with the MPEG-TS sync byte "G"
        b"",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # RIFF but audio
        b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00M4A mp42isom",  # ISO BMFF audio
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",  # ISO BMFF still image
        b"OggS\x00\x02" + b"\x00" * 22 + b"\x01vorbis" + b"\x00" * 20,  # Ogg audio
    ],
)
def test_non_video_bodies_do_not_sniff(body: bytes) -> None:
    assert sniff.sniff(body) is None


def _ts(packet_size: int, prefix: int) -> bytes:
    packet = b"\x00" * prefix + b"\x47" + b"\x1f\xff\x10" + b"\xff" * (packet_size - prefix - 4)
    return packet * 3


@pytest.mark.parametrize(
    ("head", "mime_type"),
    [
        (b"\x00\x00\x00\x14ftyp3gp5\x00\x00\x00\x00", "video/3gpp"),
        (b"\x00\x00\x00\x14ftyp3g2a\x00\x00\x00\x00", "video/3gpp2"),
        (b"\x00\x00\x00\x14ftypM4V \x00\x00\x00\x00", "video/x-m4v"),
        (b"\x00\x00\x00\x08moov\x00\x00\x00\x6cmvhd", "video/quicktime"),
        (b"\x00\x00\x00\x08wide\x00\x00\x10\x00mdat", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", "video/x-matroska"),
        (b"RIFF\x00\x10\x00\x00AVI LIST", "video/x-msvideo"),
        (b"FLV\x01\x05\x00\x00\x00\x09", "video/x-flv"),
        (_ts(188, 0), "video/mp2t"),
        (_ts(192, 4), "video/mp2t"),
        (b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01", "video/mpeg"),
        (b"OggS\x00\x02" + b"\x00" * 22 + b"\x80theora" + b"\x00" * 20, "video/ogg"),
        (bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + b"\x00" * 16, "video/x-ms-asf"),
    ],
)
def test_other_containers(head: bytes, mime_type: str) -> None:
    container = sniff.sniff(head)
    assert container is not None
    assert container.mime_type == mime_type


def test_describe_non_video_names_what_the_body_looks_like() -> None:
    assert sniff.describe_non_video(b"<!doctype html><html>") == "text/html"
    assert sniff.describe_non_video(b'{"a": 1}') == "application/json"
    assert sniff.describe_non_video(b"hello") == "text/plain"
    assert sniff.describe_non_video(b"\xff\xfe\x00\x81") == "unknown binary data"
    assert sniff.describe_non_video(b"") == "empty"


@pytest.mark.parametrize(
    ("declared", "acceptable"),
    [
        ("video/mp4", True),
        ("video/webm", True),
        ("application/octet-stream", True),
        ("binary/octet-stream", True),
        (None, True),
        ("text/html", False),
        ("application/json", False),
        ("image/png", False),
        ("audio/mp4", False),
    ],
)
def test_declared_types(declared: str | None, acceptable: bool) -> None:
    assert sniff.acceptable_declared_type(declared) is acceptable


def test_base_type_drops_parameters_and_case() -> None:
    assert sniff.base_type("Video/MP4; codecs=avc1") == "video/mp4"
    assert sniff.base_type("") is None
    assert sniff.base_type(None) is None


def test_recorded_type_keeps_a_consistent_declared_type(fixtures_dir: Path) -> None:
    mp4 = sniff.sniff(head_of(fixtures_dir / "sample.mp4"))
    webm = sniff.sniff(head_of(fixtures_dir / "sample.webm"))
    assert mp4 is not None and webm is not None
    assert sniff.recorded_type(mp4, "video/x-m4v") == "video/x-m4v"
    assert sniff.recorded_type(mp4, "video/webm") == "video/mp4"
    assert sniff.recorded_type(mp4, "application/octet-stream") == "video/mp4"
    assert sniff.recorded_type(mp4, None) == "video/mp4"
    assert sniff.recorded_type(webm, "video/x-matroska") == "video/x-matroska"
    assert sniff.extension_for("video/x-m4v", mp4) == ".m4v"
    assert sniff.extension_for("video/unheard-of", mp4) == ".mp4"
