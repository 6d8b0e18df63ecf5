"""Helpers of the Docker test tier: whether it can run here, and the compose env file."""

from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

# `!override` in compose.override.yml (replacing the API's published port).
MIN_COMPOSE = (2, 24, 4)
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")


@functools.cache
def docker_unavailable() -> str | None:
    """Why the Docker tier cannot run on this machine, or None when it can."""
    if shutil.which("docker") is None:
        return "Docker tier skipped: no docker CLI on PATH"
    server = _docker("version", "--format", "{{.Server.Version}}")
    if server is None or server.returncode != 0:
        detail = server.stderr.strip().splitlines()[-1:] if server is not None else []
        why = f" ({detail[0]})" if detail else ""
        return f"Docker tier skipped: no Docker daemon reachable{why}"
    compose = _docker("compose", "version", "--short")
    if compose is None or compose.returncode != 0:
        return "Docker tier skipped: Docker's compose plugin is missing (`docker compose`)"
    found = tuple(int(part) for part in re.findall(r"\d+", compose.stdout)[:3])
    if found < MIN_COMPOSE:
        wanted = ".".join(map(str, MIN_COMPOSE))
        return (
            f"Docker tier skipped: needs Docker Compose {wanted}+, found {compose.stdout.strip()}"
        )
    return None


def _docker(*args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["docker", *args], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def compose_env(example: str) -> dict[str, str]:
    """A value for every variable ``.env.example`` assigns (commented ones excepted).

    Secrets get fresh random values, so the tier never runs with a placeholder or a
    value someone else knows: 32 random bytes as hex, which every secret of the file
    accepts (passwords in a URL, hex or base64 keys of at least 32 bytes, Garage's
    64-hex-digit secrets); S3 key IDs take Garage's form, "GK" and 24 hex digits. A
    setting whose example is a URL is not a secret and keeps the example's value.
    """
    values: dict[str, str] = {}
    for line in example.splitlines():
        match = _ASSIGNMENT.fullmatch(line.strip())
        if match is None:
            continue
        name, example_value = match.groups()
        if re.match(r"https?://", example_value):
            values[name] = example_value
        elif name.endswith("_ACCESS_KEY_ID"):
            values[name] = "GK" + secrets.token_hex(12)
        else:
            values[name] = secrets.token_hex(32)
    return values


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Write ``values`` as a compose env file readable by this user only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as env_file:
        env_file.writelines(f"{name}={value}\n" for name, value in values.items())
