"""docker-compose.yml stays a valid, complete description of the production stack."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / ".cache" / "bin" / "docker-compose"


def compose_config() -> dict[str, object]:
    result = subprocess.run(
        [str(COMPOSE), "-f", str(REPO / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, object] = json.loads(result.stdout)
    return config


def test_compose_accepts_the_file_and_runs_every_service() -> None:
    services = compose_config()["services"]
    assert isinstance(services, dict)
    assert {"postgres", "kafka", "minio", "api", "relay", "projector", "ingester", "notifier"} <= (
        set(services)
    )
    for name in ("api", "relay", "projector", "ingester", "notifier"):
        command = services[name]["command"]
        assert command[:2] == ["python", "-m"], command
        module = command[2]
        assert importlib.util.find_spec(module) is not None, f"{name} runs missing {module}"
        assert services[name]["environment"]["VIDEOIMPORT_DATABASE_URL"].startswith("postgresql://")
