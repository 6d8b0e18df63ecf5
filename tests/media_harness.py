"""Small real test videos, made with ffmpeg, and what ffprobe should find in them.

``make_video(directory, kind)`` writes one file (once: an existing file is reused) and
returns its path; ``EXPECTED[kind]`` says what the ingester should report for it
(None for ``garbage``, which must fail as ``unreadable_video``). ``jpeg_size`` reads
a JPEG's dimensions, to check a poster frame without decoding it.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

VideoKind = Literal["mp4", "webm", "mov", "mp4_1080p", "short_mp4", "garbage"]


@dataclass(frozen=True)
class ExpectedMedia:
    container: str
    mime_type: str
    duration: float
    """Seconds; compare with a tolerance (±0.1 s: audio priming, last frame)."""
    width: int
    height: int
    frame_rate: float
    video_codec: str
    audio_codec: str | None
    poster_width: int
    """The poster JPEG's width: the video's, at most 1280."""


EXPECTED: dict[VideoKind, ExpectedMedia | None] = {
    "mp4": ExpectedMedia("mp4", "video/mp4", 2.0, 640, 360, 25.0, "h264", "aac", 640),
    "webm": ExpectedMedia("webm", "video/webm", 2.0, 640, 360, 25.0, "vp9", "opus", 640),
    "mov": ExpectedMedia("mov", "video/quicktime", 2.0, 640, 360, 25.0, "h264", None, 640),
    "mp4_1080p": ExpectedMedia("mp4", "video/mp4", 2.0, 1920, 1080, 25.0, "h264", None, 1280),
    "short_mp4": ExpectedMedia("mp4", "video/mp4", 0.4, 320, 240, 25.0, "h264", None, 320),
    "garbage": None,
}

_TEST_PATTERN = "testsrc2=size={size}:rate=25"
_TONE = "sine=frequency=440:sample_rate=48000"
_H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
_ARGUMENTS: dict[VideoKind, tuple[str, float, list[str], list[str]]] = {
    # kind: (size, seconds, extra inputs, codec and muxer arguments)
    "mp4": (
        "640x360",
        2.0,
        ["-f", "lavfi", "-i", _TONE],
        [*_H264, "-c:a", "aac", "-movflags", "+faststart", "-f", "mp4"],
    ),
    "webm": (
        "640x360",
        2.0,
        ["-f", "lavfi", "-i", _TONE],
        [
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "300k",
            "-c:a",
            "libopus",
            "-f",
            "webm",
        ],
    ),
    "mov": ("640x360", 2.0, [], [*_H264, "-f", "mov"]),
    "mp4_1080p": ("1920x1080", 2.0, [], [*_H264, "-f", "mp4"]),
    "short_mp4": ("320x240", 0.4, [], [*_H264, "-f", "mp4"]),
}
_EXTENSIONS: dict[VideoKind, str] = {
    "mp4": ".mp4",
    "webm": ".webm",
    "mov": ".mov",
    "mp4_1080p": ".mp4",
    "short_mp4": ".mp4",
    "garbage": ".mp4",
}
# An ISO BMFF ``ftyp`` box (brand isom), so the bytes sniff as an MP4, then no ``moov``.
_FTYP = bytes.fromhex("00000018") + b"ftypisom" + bytes.fromhex("00000200") + b"isomiso2"


def ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise RuntimeError("ffmpeg not on PATH: run `python -m videoimport_devstack install`")
    return found


def file_name(kind: VideoKind) -> str:
    """The name ``make_video`` gives the file of ``kind``."""
    return f"{kind}{_EXTENSIONS[kind]}"


def make_video(directory: Path, kind: VideoKind) -> Path:
    """``directory/file_name(kind)``: a small test video of that kind (made once)."""
    path = directory / file_name(kind)
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    if kind == "garbage":
        noise = random.Random(14).randbytes(64 * 1024)
        partial.write_bytes(_FTYP + noise)
    else:
        size, seconds, inputs, output = _ARGUMENTS[kind]
        pattern = ["-f", "lavfi", "-i", _TEST_PATTERN.format(size=size)]
        command = [ffmpeg(), "-nostdin", "-v", "error", "-y", *pattern, *inputs]
        command += ["-t", str(seconds), *output, str(partial)]
        subprocess.run(command, check=True, capture_output=True, timeout=120)
    partial.rename(path)  # parallel sessions never see half a file
    return path


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment; raises ValueError when
    ``data`` is not a whole JPEG (SOI at the start, EOI at the end)."""
    if not (data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")):
        raise ValueError("not a whole JPEG (SOI/EOI markers missing)")
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise ValueError(f"no marker at byte {at}")
        marker = data[at + 1]
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        # SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return width, height
        at += 2 + length
    raise ValueError("no start-of-frame segment")
