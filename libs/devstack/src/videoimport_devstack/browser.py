"""Headless Chromium, which the operator page's end-to-end test drives.

Debian's ``chromium`` package, installed with apt by ``python -m videoimport_devstack
install`` when ``chromium`` is not on PATH; the test speaks the DevTools protocol to it
directly, so no browser-automation package or downloaded browser build is needed.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from ._process import apt_install, which
from .errors import InstallError
from .paths import default_cache_dir, default_data_dir

EXECUTABLE = "chromium"
_PACKAGES = ["chromium"]


def install(cache_dir: Path | None = None, log_dir: Path | None = None) -> str:
    """Install Chromium once (a no-op when it is on PATH); returns its executable."""
    found = which(EXECUTABLE)
    if found is not None:
        return found
    cache = Path(cache_dir).resolve() if cache_dir else default_cache_dir()
    log = (log_dir or default_data_dir() / "logs") / "chromium-install.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".chromium-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test sessions install once
        if which(EXECUTABLE) is None:
            apt_install(_PACKAGES, log_path=log, why="the operator page's browser test")
    return executable()


def executable() -> str:
    """Chromium on PATH (after ``install``)."""
    found = which(EXECUTABLE)
    if found is None:
        raise InstallError(
            f"{EXECUTABLE} not found on PATH: run `python -m videoimport_devstack install`"
        )
    return found
