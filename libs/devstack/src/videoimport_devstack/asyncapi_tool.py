"""The official AsyncAPI parser (``@asyncapi/parser`` from npm) that checks docs/asyncapi.json.

Pinned by ``deploy/asyncapi/package-lock.json`` and installed with ``npm ci`` into
``deploy/asyncapi/node_modules`` (gitignored) by ``python -m videoimport_devstack
install``, so ``make test`` has it from a clean clone. ``validate.mjs`` parses a
document, prints the diagnostics and exits 1 on an error.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ._process import apt_install, run_command, which
from ._server import file_sha256
from .errors import InstallError
from .paths import default_cache_dir, default_data_dir, deploy_dir
from .s3 import node_major_version

_MIN_NODE = 18
_PACKAGE = "@asyncapi/parser"


def tool_dir() -> Path:
    return deploy_dir() / "asyncapi"


def install(cache_dir: Path | None = None, log_dir: Path | None = None) -> Path:
    """Install the pinned parser once (quick when done); returns ``validate.mjs``.

    ``npm ci --ignore-scripts``: the parser is plain JavaScript, and no package's
    install script (one of them phones home with usage analytics) gets to run.
    """
    app = tool_dir()
    cache = Path(cache_dir).resolve() if cache_dir else default_cache_dir()
    log = (log_dir or default_data_dir() / "logs") / "asyncapi-install.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if which("node") is None or which("npm") is None:
        apt_install(["nodejs", "npm"], log_path=log, why="the AsyncAPI parser runs on Node.js")
    node = which("node")
    if node is None or which("npm") is None:
        raise InstallError("node and npm are needed for the AsyncAPI parser")
    if node_major_version(node) < _MIN_NODE:
        raise InstallError(f"{_PACKAGE} needs Node.js {_MIN_NODE}+ (found {node})")
    wanted = file_sha256(app / "package.json", app / "package-lock.json")
    marker = app / "node_modules" / ".videoimport-installed"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".asyncapi-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test sessions install once
        if marker.is_file() and marker.read_text().strip() == wanted:
            return app / "validate.mjs"
        run_command(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            log_path=log, what=f"npm ci ({_PACKAGE})", timeout=900, cwd=app,
            env={**os.environ, "NODE_ENV": "production", "SCARF_ANALYTICS": "false"},
            error=InstallError,
        )  # fmt: skip
        if not (app / "node_modules" / _PACKAGE).is_dir():
            raise InstallError(f"npm ci did not install {_PACKAGE} into {app / 'node_modules'}")
        marker.write_text(wanted + "\n")
    return app / "validate.mjs"


def validate_command(document: Path) -> list[str]:
    """The command that validates ``document`` (after ``install``)."""
    node = which("node")
    if node is None:
        raise InstallError("node not found: run `python -m videoimport_devstack install`")
    return [node, str(tool_dir() / "validate.mjs"), str(document)]
