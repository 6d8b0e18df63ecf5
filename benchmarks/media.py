"""Decodable video bodies of any size, distinct per name, for the service benchmarks.

The ingester probes every stored file (ffprobe) and makes a poster frame, so a body
must be a real video: ``tests/fixtures/sample.mp4`` (1 s, H.264 + AAC), then one mp4
``free`` box that holds the name's sha256 and fills the body to the size asked for.
Players and ffprobe skip ``free`` boxes, so every body decodes like the sample, and
no two names share a sha256.
"""

from __future__ import annotations

import hashlib
import struct
from functools import cache

from .common import REPO

TEMPLATE = REPO / "tests" / "fixtures" / "sample.mp4"
_SMALL_BOX = 8
_LARGE_BOX = 16
"""A box header with a 64-bit size, for boxes of 4 GiB or more."""


@cache
def template() -> bytes:
    return TEMPLATE.read_bytes()


def smallest() -> int:
    """The smallest body ``video_head`` can make."""
    return len(template()) + _SMALL_BOX + 32


def video_head(name: str, size: int) -> bytes:
    """The first bytes of video ``name`` of ``size`` bytes: the sample, the header of
    the ``free`` box that runs to the end, and the name's sha256. Any ``size - len(head)``
    bytes may follow."""
    sample = template()
    box = size - len(sample)
    if box < _SMALL_BOX + 32:
        raise ValueError(f"a video body is at least {smallest()} bytes")
    if box < 2**32:
        header = struct.pack(">I4s", box, b"free")
    else:
        header = struct.pack(">I4sQ", 1, b"free", box)
    return sample + header + hashlib.sha256(name.encode()).digest()
