"""Where the repo's deploy files, the download cache and the default data dir live."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "VIDEOIMPORT_CACHE_DIR"
DATA_DIR_ENV = "VIDEOIMPORT_DEVSTACK_DIR"
REPO_ROOT_ENV = "VIDEOIMPORT_REPO_ROOT"

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


def default_cache_dir() -> Path:
    """``$VIDEOIMPORT_CACHE_DIR`` or ``<repo>/.cache`` (gitignored)."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).resolve()
    return repo_root() / ".cache"


def default_data_dir() -> Path:
    """``$VIDEOIMPORT_DEVSTACK_DIR`` or ``<repo>/.data`` (gitignored; `make stack` uses it)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).resolve()
    return repo_root() / ".data"
