"""The official AsyncAPI parser (``@asyncapi/parser`` from npm) that checks docs/asyncapi.json.

Pinned by ``deploy/asyncapi/package-lock.json`` and installed with ``npm ci`` into the
per-user tool cache by ``python -m videoimport_devstack install`` (once per machine;
``deploy/asyncapi/node_modules`` links to it), so ``make test`` has it from a clean clone.
``validate.mjs`` parses a document, prints the diagnostics and exits 1 on an error.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._cache import npm_tool
from ._process import apt_install, which
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
    npm_tool(
        cache, app, package=_PACKAGE, npm_args=["--ignore-scripts"],
        env={**os.environ, "NODE_ENV": "production", "SCARF_ANALYTICS": "false"}, log_path=log,
    )  # fmt: skip
    return app / "validate.mjs"


def validate_command(document: Path) -> list[str]:
    """The command that validates ``document`` (after ``install``)."""
    node = which("node")
    if node is None:
        raise InstallError("node not found: run `python -m videoimport_devstack install`")
    return [node, str(tool_dir() / "validate.mjs"), str(document)]
