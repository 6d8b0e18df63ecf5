"""Recognise video containers by their first bytes (pure).

A server's Content-Type is only a claim; the import accepts a body only when
its first bytes look like a known video container. Shared by the ingester's
download and the API's dry run, so both judge a body alike. ``SNIFF_BYTES`` is how much
of the body the checks need (an MPEG transport stream is recognised by two
packet sync bytes 188 bytes apart, M2TS by two 192 bytes apart).
"""

from __future__ import annotations

from typing import Final

import msgspec

SNIFF_BYTES: Final = 512


class Container(msgspec.Struct, frozen=True):
    name: str
    mime_type: str
    """Canonical type recorded when the server's own type does not fit."""
    extension: str
    family: frozenset[str]
    """Declared types that agree with this container (recorded as declared)."""


_ISO_FAMILY = frozenset(
    {
        "video/mp4",
        "video/x-m4v",
        "video/quicktime",
        "video/3gpp",
        "video/3gpp2",
        "video/iso.segment",
    }
)
_MATROSKA_FAMILY = frozenset({"video/webm", "video/x-matroska", "video/matroska"})

MP4: Final = Container("mp4", "video/mp4", ".mp4", _ISO_FAMILY)
M4V: Final = Container("m4v", "video/x-m4v", ".m4v", _ISO_FAMILY)
QUICKTIME: Final = Container("quicktime", "video/quicktime", ".mov", _ISO_FAMILY)
THREE_GP: Final = Container("3gp", "video/3gpp", ".3gp", _ISO_FAMILY)
THREE_G2: Final = Container("3g2", "video/3gpp2", ".3g2", _ISO_FAMILY)
WEBM: Final = Container("webm", "video/webm", ".webm", _MATROSKA_FAMILY)
MATROSKA: Final = Container("matroska", "video/x-matroska", ".mkv", _MATROSKA_FAMILY)
AVI: Final = Container(
    "avi", "video/x-msvideo", ".avi", frozenset({"video/x-msvideo", "video/avi", "video/vnd.avi"})
)
FLV: Final = Container("flv", "video/x-flv", ".flv", frozenset({"video/x-flv"}))
MPEG_TS: Final = Container("mpeg-ts", "video/mp2t", ".ts", frozenset({"video/mp2t"}))
MPEG_PS: Final = Container(
    "mpeg-ps", "video/mpeg", ".mpg", frozenset({"video/mpeg", "video/mp2p", "video/mpg"})
)
OGG: Final = Container("ogg", "video/ogg", ".ogv", frozenset({"video/ogg"}))
ASF: Final = Container(
    "asf", "video/x-ms-asf", ".asf", frozenset({"video/x-ms-asf", "video/x-ms-wmv"})
)

# ISO BMFF is also used for still images (HEIF, AVIF) and audio-only files.
_NOT_VIDEO_BRANDS: Final = frozenset(
    brand.ljust(4).encode()
    for brand in [
        "heic",
        "heix",
        "heim",
        "heis",
        "hevc",
        "hevx",
        "mif1",
        "msf1",
        "avif",
        "avis",
        "M4A",
        "M4B",
        "M4P",
        "F4A",
        "F4B",
        "crx",
        "jp2",
        "jpx",
        "jpm",
    ]
)
# Files written before ``ftyp`` existed start straight with one of these atoms.
_QUICKTIME_ATOMS: Final = frozenset({b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"})
_ASF_GUID: Final = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE: Final = b"\x42\x82"
# The first Ogg page names the first stream's codec; a video stream comes first.
_OGG_AUDIO_CODECS: Final = (b"\x01vorbis", b"OpusHead", b"\x7fFLAC", b"Speex   ")
_MIME_EXTENSIONS: Final = {
    "video/mp4": ".mp4",
    "video/x-m4v": ".m4v",
    "video/quicktime": ".mov",
    "video/3gpp": ".3gp",
    "video/3gpp2": ".3g2",
    "video/iso.segment": ".m4s",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "video/matroska": ".mkv",
    "video/x-msvideo": ".avi",
    "video/avi": ".avi",
    "video/vnd.avi": ".avi",
    "video/x-flv": ".flv",
    "video/mp2t": ".ts",
    "video/mpeg": ".mpg",
    "video/mp2p": ".mpg",
    "video/mpg": ".mpg",
    "video/ogg": ".ogv",
    "video/x-ms-asf": ".asf",
    "video/x-ms-wmv": ".wmv",
}


def _iso_bmff(head: bytes) -> Container | None:
    box = head[4:8]
    if box == b"ftyp":
        brand = head[8:12]
        if brand in _NOT_VIDEO_BRANDS:
            return None
        if brand == b"qt  ":
            return QUICKTIME
        if brand == b"M4V " or brand == b"M4VH" or brand == b"M4VP":
            return M4V
        if brand.startswith(b"3gp") or brand.startswith(b"3ge") or brand.startswith(b"3gg"):
            return THREE_GP
        if brand.startswith(b"3g2"):
            return THREE_G2
        return MP4
    if box in _QUICKTIME_ATOMS:
        return QUICKTIME
    return None


def _ebml_doctype(head: bytes) -> bytes | None:
    at = head.find(_EBML_DOCTYPE, 4, 64)
    if at < 0 or at + 3 > len(head):
        return None
    size_byte = head[at + 2]
    if not size_byte & 0x80:  # only one-byte sizes occur for these short strings
        return None
    size = size_byte & 0x7F
    return head[at + 3 : at + 3 + size]


def _matroska(head: bytes) -> Container | None:
    if not head.startswith(_EBML_MAGIC):
        return None
    doctype = _ebml_doctype(head)
    if doctype == b"webm":
        return WEBM
    return MATROSKA


def _packets_synced(head: bytes, first: int, size: int) -> bool:
    # Every packet starts with the sync byte 0x47 ("G"); checking up to three
    # packets keeps a text body that starts with "G" from passing.
    offsets = [first + i * size for i in range(3) if first + i * size < len(head)]
    return len(offsets) >= 2 and all(head[o] == 0x47 for o in offsets)


def _mpeg_ts(head: bytes) -> bool:
    return _packets_synced(head, 0, 188) or _packets_synced(head, 4, 192)


def _ogg(head: bytes) -> Container | None:
    if not head.startswith(b"OggS"):
        return None
    first_packet = head[28:40]
    if any(first_packet.startswith(codec) for codec in _OGG_AUDIO_CODECS):
        return None
    return OGG


def sniff(head: bytes) -> Container | None:
    """The video container that ``head`` (the body's first bytes) starts, if any."""
    found = _iso_bmff(head) or _matroska(head) or _ogg(head)
    if found is not None:
        return found
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return AVI
    if head.startswith(b"FLV\x01"):
        return FLV
    if head.startswith(_ASF_GUID):
        return ASF
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return MPEG_PS
    if _mpeg_ts(head):
        return MPEG_TS
    return None


def describe_non_video(head: bytes) -> str:
    """A best guess at what a body that is not a video is, for error messages."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "text/html"
    if text.startswith(b"<?xml") or text.startswith(b"<"):
        return "text/xml"
    if text.startswith((b"{", b"[")):
        return "application/json"
    if not head:
        return "empty"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "unknown binary data"
    return "text/plain"


def base_type(content_type: str | None) -> str | None:
    """``Video/MP4; codecs=x`` → ``video/mp4``; None for a missing or empty header."""
    if content_type is None:
        return None
    value = content_type.split(";", 1)[0].strip().lower()
    return value or None


GENERIC_BINARY: Final = frozenset({"application/octet-stream", "binary/octet-stream"})


def acceptable_declared_type(declared: str | None) -> bool:
    """Whether a server's Content-Type allows the body to be a video at all."""
    return declared is None or declared in GENERIC_BINARY or declared.startswith("video/")


def recorded_type(container: Container, declared: str | None) -> str:
    """The type to record: the server's own, when it agrees with the bytes."""
    if declared is not None and declared in container.family:
        return declared
    return container.mime_type


def extension_for(mime_type: str, container: Container) -> str:
    return _MIME_EXTENSIONS.get(mime_type, container.extension)


def not_a_video_reason(declared: str | None, head: bytes) -> str:
    """The failure reason for a body whose first bytes ``sniff`` does not recognise."""
    content = describe_non_video(head)
    if declared is None or declared in GENERIC_BINARY:
        return f"not a video ({content})"
    return f"not a video ({declared} declared, content is {content})"


# The ffmpeg demuxer that reads each container: the ingester forces it, so that a file
# cannot make ffprobe or ffmpeg pick another demuxer (a playlist that opens other URLs).
_DEMUXERS: Final = {
    **dict.fromkeys([MP4, M4V, QUICKTIME, THREE_GP, THREE_G2], "mov"),
    **dict.fromkeys([WEBM, MATROSKA], "matroska"),
    AVI: "avi",
    FLV: "flv",
    MPEG_TS: "mpegts",
    MPEG_PS: "mpeg",
    OGG: "ogg",
    ASF: "asf",
}
# MediaInfo's name of a container where it differs from ``Container.name``.
_PROBED_NAMES: Final = {QUICKTIME: "mov"}


def demuxer_for(container: Container) -> str:
    """The ffmpeg demuxer (``-f``) for a sniffed container."""
    return _DEMUXERS[container]


def probed_container(format_name: str, sniffed: Container) -> Container | None:
    """The container ffprobe read, from its ``format_name`` (a comma list such as
    ``mov,mp4,m4a,3gp,3g2,mj2`` or ``matroska,webm``, which cannot tell mp4 from
    mov or WebM from Matroska) and the container the first bytes showed (its ISO
    brand, its EBML DocType), which can; None when ffprobe read something else."""
    if _DEMUXERS[sniffed] in format_name.split(","):
        return sniffed
    return None


def container_name(container: Container) -> str:
    """The name recorded in ``MediaInfo.container``: ``mp4``, ``mov``, ``webm``, …"""
    return _PROBED_NAMES.get(container, container.name)
