"""Where the repo's deploy files, the tool cache and the default data dir live."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CACHE_DIR_ENV = "VIDEOIMPORT_CACHE_DIR"
DATA_DIR_ENV = "VIDEOIMPORT_DEVSTACK_DIR"
REPO_ROOT_ENV = "VIDEOIMPORT_REPO_ROOT"
XDG_CACHE_HOME_ENV = "XDG_CACHE_HOME"
CACHE_SUBDIR = "videoimport"

_MARKER = Path("deploy") / "kafka" / "pom.xml"


def repo_root() -> Path:
    """The repository root: the nearest ancestor holding ``deploy/kafka/pom.xml``.

    Looked up from this package's location (a workspace install is editable), then from the
    current directory; ``VIDEOIMPORT_REPO_ROOT`` overrides both.
    """
    override = os.environ.get(REPO_ROOT_ENV)
    if override:
        return Path(override).resolve()
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            if (candidate / _MARKER).is_file():
                return candidate
    raise FileNotFoundError(
        f"cannot find the repository root (a directory with {_MARKER}); set {REPO_ROOT_ENV}"
    )


def deploy_dir() -> Path:
    return repo_root() / "deploy"


def cache_dir_for(environ: Mapping[str, str], home: Path) -> Path:
    """The per-user tool cache that ``environ`` and ``home`` point at.

    ``$VIDEOIMPORT_CACHE_DIR``, else ``$XDG_CACHE_HOME/videoimport``, else
    ``~/.cache/videoimport``. Per user, not per clone: every clone on the machine shares
    the downloaded and built tools. An empty variable counts as unset, and so does a
    relative ``XDG_CACHE_HOME`` (the XDG base directory spec says to ignore it).
    """
    override = environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).resolve()
    xdg = environ.get(XDG_CACHE_HOME_ENV)
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / CACHE_SUBDIR
    return home / ".cache" / CACHE_SUBDIR


def default_cache_dir() -> Path:
    """The tool cache of this process's user (see ``cache_dir_for``)."""
    return cache_dir_for(os.environ, Path.home())


def default_data_dir() -> Path:
    """``$VIDEOIMPORT_DEVSTACK_DIR`` or ``<repo>/.data`` (gitignored; `make stack` uses it)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).resolve()
    return repo_root() / ".data"
