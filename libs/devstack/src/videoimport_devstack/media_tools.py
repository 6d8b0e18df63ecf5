"""ffprobe and ffmpeg, which the ingester runs on every stored video.

Debian's ``ffmpeg`` package (it ships both programs), installed with apt by ``python -m
videoimport_devstack install`` when ``ffprobe`` or ``ffmpeg`` is not on PATH; the tests
also use ffmpeg to make their small test videos.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import msgspec

from ._process import apt_install, which
from .errors import InstallError
from .paths import default_cache_dir, default_data_dir

_EXECUTABLES = ("ffprobe", "ffmpeg")
_PACKAGES = ["ffmpeg"]


class MediaTools(msgspec.Struct, frozen=True):
    ffprobe: str
    ffmpeg: str


def install(cache_dir: Path | None = None, log_dir: Path | None = None) -> MediaTools:
    """Install ffmpeg once (a no-op when both programs are on PATH); returns their paths."""
    if _missing():
        cache = Path(cache_dir).resolve() if cache_dir else default_cache_dir()
        log = (log_dir or default_data_dir() / "logs") / "ffmpeg-install.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cache.mkdir(parents=True, exist_ok=True)
        with (cache / ".ffmpeg-install.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test sessions install once
            if _missing():
                apt_install(_PACKAGES, log_path=log, why="the ingester's probe of videos")
    return executables()


def executables() -> MediaTools:
    """ffprobe and ffmpeg on PATH (after ``install``)."""
    found = {name: which(name) for name in _EXECUTABLES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise InstallError(
            f"{', '.join(missing)} not found on PATH: run `python -m videoimport_devstack install`"
        )
    return MediaTools(ffprobe=str(found["ffprobe"]), ffmpeg=str(found["ffmpeg"]))


def _missing() -> bool:
    return any(which(name) is None for name in _EXECUTABLES)
