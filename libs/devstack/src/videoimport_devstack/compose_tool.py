"""A Docker Compose v2 binary, for the test that validates docker-compose.yml.

A machine with Docker's compose plugin gets a two-line wrapper around ``docker compose``;
one without gets the pinned release built from its Go module (about two minutes, once per
machine: the binary stays in the per-user tool cache). Either way the repo's
``.cache/bin/docker-compose`` links to it, which is where that test looks.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ._cache import cached_tool, link
from ._process import run_command, which
from .errors import InstallError
from .paths import default_cache_dir, default_data_dir, repo_root

COMPOSE_VERSION = "v2.32.4"
_MODULE = "github.com/docker/compose/v2/cmd"
_BINARY = "docker-compose"
_WRAPPER = '#!/bin/sh\nexec docker compose "$@"\n'


def has_compose_plugin() -> bool:
    if which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def install(cache_dir: Path | None = None, log_dir: Path | None = None) -> Path:
    """Provide the binary (quick when done); returns the repo's link to it."""
    cache = Path(cache_dir).resolve() if cache_dir else default_cache_dir()
    log = (log_dir or default_data_dir() / "logs") / "compose-install.log"
    log.parent.mkdir(parents=True, exist_ok=True)

    def write_wrapper(staging: Path) -> None:
        (staging / _BINARY).write_text(_WRAPPER)
        (staging / _BINARY).chmod(0o755)

    def build_from_source(staging: Path) -> None:
        if which("go") is None:
            raise InstallError(
                "cannot provide docker compose: neither Docker's compose plugin nor Go is installed"
            )
        # GOBIN inside the staging dir: the binary only appears in the cache complete.
        run_command(
            ["go", "install", f"{_MODULE}@{COMPOSE_VERSION}"],
            log_path=log, what=f"building docker compose {COMPOSE_VERSION}", timeout=1800,
            env={**os.environ, "GOFLAGS": "-mod=mod", "GOBIN": str(staging)},
            error=InstallError,
        )  # fmt: skip
        (staging / "cmd").rename(staging / _BINARY)

    if has_compose_plugin():
        entry = cached_tool(cache, "compose-plugin", write_wrapper)
    else:
        entry = cached_tool(cache, f"compose-{COMPOSE_VERSION}", build_from_source)
    repo_link = repo_root() / ".cache" / "bin" / _BINARY
    link(repo_link, entry / _BINARY)
    return repo_link
