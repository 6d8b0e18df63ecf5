"""What ffprobe says about a stored video, and how ffprobe and ffmpeg are run (pure).

The programs read the stored object through a presigned GET of our own S3 endpoint,
never the origin. A file is hostile input to them, so every command forces the
demuxer the first bytes showed (``-f``: a playlist or concat file cannot be chosen by
content), allows only the protocols that URL needs (``-protocol_whitelist``), and
prints only errors. ``adapters/media_probe.py`` runs them with a time limit and
bounded output.
"""

from __future__ import annotations

import math
from fractions import Fraction
from urllib.parse import urlsplit

import msgspec
from videoimport_events import FailureCode, MediaInfo
from videoimport_projects import sniff
from videoimport_projects.sniff import Container

POSTER_MAX_WIDTH = 1280
POSTER_AT = 0.10
"""The poster frame's position, as a share of the duration."""
SHORT_VIDEO = 1.0
"""Seconds under which the poster is the first frame (10 % would be a fraction of one)."""
_WHITELISTS = {"http": "http,tcp", "https": "https,tls,tcp"}


class Rejected(msgspec.Struct, frozen=True, kw_only=True):
    """The stored file fails the video (its object is not registered)."""

    code: FailureCode
    reason: str


class _Stream(msgspec.Struct, frozen=True, kw_only=True):
    codec_type: str | None = None
    codec_name: str | None = None
    width: int | None = None
    height: int | None = None
    avg_frame_rate: str | None = None
    duration: str | None = None
    disposition: dict[str, int] = {}


class _Format(msgspec.Struct, frozen=True, kw_only=True):
    format_name: str = ""
    duration: str | None = None
    bit_rate: str | None = None


class _Output(msgspec.Struct, frozen=True, kw_only=True):
    streams: list[_Stream] = []
    format: _Format | None = None


def whitelist(url: str) -> str:
    """The protocols ffmpeg may use for ``url``: its scheme and what carries it."""
    scheme = urlsplit(url).scheme
    if scheme not in _WHITELISTS:
        raise ValueError(f"the stored object's URL must be http or https, not {scheme!r}")
    return _WHITELISTS[scheme]


def _input(url: str, demuxer: str) -> list[str]:
    return ["-protocol_whitelist", whitelist(url), "-f", demuxer, "-i", url]


def ffprobe_command(ffprobe: str, url: str, demuxer: str) -> list[str]:
    return [
        ffprobe,
        *("-v", "error", "-show_format", "-show_streams", "-of", "json"),
        *_input(url, demuxer),
    ]


def poster_seek(duration: float) -> float | None:
    """Where the poster frame is taken; None: the first frame (a very short video)."""
    return None if duration < SHORT_VIDEO else round(duration * POSTER_AT, 3)


def poster_command(ffmpeg: str, url: str, demuxer: str, duration: float) -> list[str]:
    """One JPEG frame on stdout, at most ``POSTER_MAX_WIDTH`` wide, aspect kept, even height."""
    seek = poster_seek(duration)
    position = [] if seek is None else ["-ss", f"{seek:.3f}"]
    return [
        ffmpeg,
        *("-nostdin", "-v", "error"),
        *position,
        *_input(url, demuxer),
        *("-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn"),
        *("-vf", f"scale='min({POSTER_MAX_WIDTH},iw)':-2", "-q:v", "3"),
        *("-f", "image2pipe", "-c:v", "mjpeg", "pipe:1"),
    ]


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def frame_rate(text: str | None) -> float | None:
    """``30000/1001`` → 29.97…; ``0/0``, absent or nonsense → None."""
    if not text:
        return None
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _video_stream(streams: list[_Stream]) -> _Stream | None:
    """The first real video stream (cover art is a one-picture 'video' stream: skipped)."""
    for stream in streams:
        if stream.codec_type == "video" and not stream.disposition.get("attached_pic"):
            return stream
    return None


def media_info(raw: bytes, sniffed: Container) -> tuple[MediaInfo, Container] | Rejected:
    """ffprobe's JSON (``-show_format -show_streams -of json``) as ``MediaInfo``, with the
    container it names; ``Rejected`` (``unreadable_video``) when it has no decodable video."""
    try:
        output = msgspec.json.decode(raw, type=_Output)
    except msgspec.DecodeError as exc:
        return unreadable(f"ffprobe's output is not understood ({exc})")
    found = output.format or _Format()
    container = sniff.probed_container(found.format_name, sniffed)
    if container is None:
        return unreadable(f"the file is not {sniff.container_name(sniffed)} after all")
    video = _video_stream(output.streams)
    if video is None or not video.codec_name or not video.width or not video.height:
        return unreadable("no decodable video stream")
    duration = _number(found.duration) or _number(video.duration)
    if duration is None:
        return unreadable("the file does not say how long it is")
    audio = next((s for s in output.streams if s.codec_type == "audio"), None)
    bit_rate = _number(found.bit_rate)
    info = MediaInfo(
        container=sniff.container_name(container),
        duration=duration,
        width=video.width,
        height=video.height,
        frame_rate=frame_rate(video.avg_frame_rate),
        video_codec=video.codec_name,
        audio_codec=None if audio is None else audio.codec_name,
        bit_rate=None if bit_rate is None else int(bit_rate),
    )
    return info, container


def too_long(info: MediaInfo, max_duration: float | None) -> Rejected | None:
    """The project's ``max_duration`` (seconds) against the probed duration."""
    if max_duration is None or info.duration <= max_duration:
        return None
    return Rejected(
        code="too_long",
        reason=f"too long: {info.duration:g} s, the project's limit is {max_duration:g} s",
    )


def unreadable(reason: str) -> Rejected:
    return Rejected(code="unreadable_video", reason=f"unreadable video: {reason}")


def poster_key(storage_key: str) -> str:
    """The poster beside the video: ``p/m/r.mp4`` → ``p/m/r.poster.jpg`` (deterministic
    per request, like the video's key, so a retry overwrites its own poster)."""
    folder, _, name = storage_key.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{folder}/{stem}.poster.jpg" if folder else f"{stem}.poster.jpg"
