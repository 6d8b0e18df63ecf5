"""docker-compose.yml stays a complete, safe description of the production stack.

Everything is read from what Docker Compose itself renders (``config --format json``)
with the values of ``.env.example`` or of a generated env file; the two commands the
file adds beyond the images (the migration one-shot and the healthcheck) are run for
real, against the test stack's PostgreSQL and a real health listener.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import asyncpg
from videoimport_eventlog import health, schema
from videoimport_ingester.settings import Settings as IngesterSettings
from videoimport_notifier.settings import NotifierSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / ".cache" / "bin" / "docker-compose"
ENV_EXAMPLE = REPO / ".env.example"
APP_SERVICES = ("api", "relay", "projector", "ingester", "notifier")
STATEFUL = ("postgres", "kafka", "garage")
# Credentials this file or its images shipped as defaults at some point.
KNOWN_DEFAULTS = {"videoimport", "videoimport-secret", "minioadmin", "postgres", "changeme"}
_DURATION = re.compile(r"(\d+)(h|m|s)")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|SIGNING_KEY")


def env_names() -> list[str]:
    """The variables .env.example documents (set, not commented out)."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    return [line.split("=", 1)[0] for line in lines if line and not line.startswith("#")]


def render(env_file: Path) -> subprocess.CompletedProcess[str]:
    # Nothing from this process's environment may fill a variable: only the file.
    environ = {k: v for k, v in os.environ.items() if k not in env_names()}
    files = ["-f", str(REPO / "docker-compose.yml"), "--env-file", str(env_file)]
    return subprocess.run(
        [str(COMPOSE), *files, "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        env=environ,
    )


def compose_config(env_file: Path = ENV_EXAMPLE) -> dict[str, Any]:
    result = render(env_file)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def generated_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An env file with a fresh random value for every documented variable."""
    values = {name: f"{name.lower()}-{secrets.token_hex(8)}" for name in env_names()}
    path = tmp_path / "test.env"
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path, values


def seconds(duration: str) -> int:
    """A duration as compose renders it (``2m30s``) in seconds."""
    unit = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * unit[u] for n, u in _DURATION.findall(duration))


def named_mounts(service: dict[str, Any]) -> dict[str, str]:
    return {v["target"]: v["source"] for v in service.get("volumes", []) if v["type"] == "volume"}


def under(path: str, mounts: dict[str, str]) -> bool:
    return any(path == target or path.startswith(target + "/") for target in mounts)


def garage_config(services: dict[str, Any]) -> dict[str, Any]:
    mounted = [v for v in services["garage"]["volumes"] if v["target"] == "/etc/garage.toml"]
    assert len(mounted) == 1, "Garage reads /etc/garage.toml"
    parsed: dict[str, Any] = tomllib.loads(Path(mounted[0]["source"]).read_text())
    return parsed


def test_compose_accepts_the_file_and_runs_every_service() -> None:
    services = compose_config()["services"]
    assert set(STATEFUL) | set(APP_SERVICES) | {"migrate", "s3-init"} <= set(services)
    for name in APP_SERVICES:
        command = services[name]["command"]
        assert command[:2] == ["python", "-m"], command
        module = command[2]
        assert importlib.util.find_spec(module) is not None, f"{name} runs missing {module}"
        assert services[name]["environment"]["VIDEOIMPORT_DATABASE_URL"].startswith("postgresql://")


def test_without_the_env_file_compose_refuses_naming_the_missing_secret(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = render(empty)
    assert result.returncode != 0
    assert re.search(r"set [A-Z0-9_]+ in \.env", result.stderr), result.stderr
    # Each secret on its own: leaving out any one of them is refused, by name.
    full, values = generated_env(tmp_path)
    for name in values:
        if name == "VIDEOIMPORT_MEDIA_BASE_URL":  # a URL, not a secret: it has a default
            continue
        partial = tmp_path / f"without-{name}.env"
        partial.write_text("".join(f"{k}={v}\n" for k, v in values.items() if k != name))
        result = render(partial)
        assert result.returncode != 0, f"compose renders without {name}"
        assert f"set {name} in .env" in result.stderr, result.stderr
    assert render(full).returncode == 0


def test_secrets_come_from_the_env_file_and_no_default_is_left(tmp_path: Path) -> None:
    env_file, values = generated_env(tmp_path)
    services = compose_config(env_file)["services"]
    password = values["POSTGRES_PASSWORD"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == password
    for name in (*APP_SERVICES, "migrate"):
        url = services[name]["environment"]["VIDEOIMPORT_DATABASE_URL"]
        assert f"videoimport:{password}@postgres" in url, name
    api = services["api"]["environment"]
    assert api["VIDEOIMPORT_MEDIA_SIGNING_KEY"] == values["VIDEOIMPORT_MEDIA_SIGNING_KEY"]
    generated = set(values.values())
    for name, service in services.items():
        env = service.get("environment") or {}
        # Webhooks are signed with each project's secret; the shared one is gone.
        assert "VIDEOIMPORT_WEBHOOK_SECRET" not in env, name
        for key, value in env.items():
            in_url = re.match(r"\w+://[^:/@]+:([^@]+)@", str(value))
            if in_url:
                value = in_url.group(1)
            elif not _SECRET_NAME.search(key):
                continue
            assert value not in KNOWN_DEFAULTS, f"{name}.{key} is a known default"
            assert value in generated, f"{name}.{key} does not come from the env file"


def test_every_stateful_server_writes_to_its_named_volume() -> None:
    config = compose_config()
    services = config["services"]
    declared = set(config["volumes"])
    for name in STATEFUL:
        mounts = named_mounts(services[name])
        assert mounts and set(mounts.values()) <= declared, name
    postgres = services["postgres"]
    assert under(postgres["environment"]["PGDATA"], named_mounts(postgres))
    kafka = services["kafka"]
    # Exactly the mount: the image's default (/tmp/kraft-combined-logs) is not on it.
    assert kafka["environment"]["KAFKA_LOG_DIRS"] in named_mounts(kafka)
    garage_mounts = named_mounts(services["garage"])
    toml = garage_config(services)
    for key in ("metadata_dir", "data_dir"):
        assert under(toml[key], garage_mounts), f"Garage's {key} {toml[key]} is not on a volume"
    assert toml["metadata_dir"] != toml["data_dir"]


def test_every_image_is_pinned() -> None:
    for name, service in compose_config()["services"].items():
        image = service["image"]
        if "@sha256:" in image:
            continue
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"


def test_app_services_are_probed_and_may_finish_their_work() -> None:
    services = compose_config()["services"]
    for name in APP_SERVICES:
        service = services[name]
        check = service.get("healthcheck") or {}
        assert not check.get("disable") and "/health/ready" in " ".join(check["test"]), name
        port = service["environment"].get("VIDEOIMPORT_HEALTH_PORT", "")
        assert name == "api" or int(port) > 0, f"{name} serves no health port"
        assert seconds(service["stop_grace_period"]) > 10, f"{name} keeps Docker's 10 s"
    ingester = services["ingester"]
    drain = float(
        ingester["environment"].get("VIDEOIMPORT_SHUTDOWN_GRACE", IngesterSettings().shutdown_grace)
    )
    assert seconds(ingester["stop_grace_period"]) >= drain + 10
    notifier = NotifierSettings(database_url="", kafka_bootstrap="")
    in_flight = notifier.webhook_timeout + notifier.shutdown_grace
    assert seconds(services["notifier"]["stop_grace_period"]) >= in_flight


def test_services_start_after_their_servers_schema_and_bucket() -> None:
    services = compose_config()["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["s3-init"]["depends_on"]["garage"]["condition"] == "service_healthy"
    for name in APP_SERVICES:
        depends = {k: v["condition"] for k, v in services[name]["depends_on"].items()}
        assert depends == {
            "migrate": "service_completed_successfully",
            "s3-init": "service_completed_successfully",
            "kafka": "service_healthy",
        }, name


def test_instances_two_ingesters_and_standbys_for_the_log_readers() -> None:
    services = compose_config()["services"]

    def instances(module: str) -> int:
        return sum(
            (s.get("deploy") or {}).get("replicas", 1)
            for s in services.values()
            if (s.get("command") or [])[:3] == ["python", "-m", module]
        )

    assert instances("videoimport_ingester") == 2
    assert instances("videoimport_relay") >= 2
    assert instances("videoimport_projector") >= 2


def test_services_use_keys_scoped_to_the_bucket_not_the_admin_token(tmp_path: Path) -> None:
    env_file, values = generated_env(tmp_path)
    services = compose_config(env_file)["services"]
    admin = {values["GARAGE_ADMIN_TOKEN"], values["GARAGE_RPC_SECRET"]}
    expected = {"api": "S3_API", "ingester": "S3_INGESTER"}
    init = services["s3-init"]["environment"]
    toml = garage_config(services)
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert not admin & set(env.values()), f"{name} gets Garage's admin secrets"
        assert not any(key.startswith("GARAGE_") for key in env), name
        if name not in expected:
            assert "VIDEOIMPORT_S3_SECRET_KEY" not in env, f"{name} needs no S3 key"
            continue
        prefix = expected[name]
        assert env["VIDEOIMPORT_S3_ACCESS_KEY"] == values[f"{prefix}_ACCESS_KEY_ID"]
        assert env["VIDEOIMPORT_S3_SECRET_KEY"] == values[f"{prefix}_SECRET_KEY"]
        # The key s3-init scopes is this one, to this bucket, signed for Garage's region.
        assert init[f"{prefix}_ACCESS_KEY_ID"] == env["VIDEOIMPORT_S3_ACCESS_KEY"]
        assert init["S3_BUCKET"] == env["VIDEOIMPORT_S3_BUCKET"]
        assert env["VIDEOIMPORT_S3_REGION"] == toml["s3_api"]["s3_region"]
    assert values["S3_API_ACCESS_KEY_ID"] != values["S3_INGESTER_ACCESS_KEY_ID"]


async def test_the_migration_one_shot_brings_an_empty_database_to_the_latest_schema(
    pg_dsn: str,
) -> None:
    command = compose_config()["services"]["migrate"]["command"]
    assert command[:2] == ["python", "-c"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command[1:],
        env={**os.environ, "VIDEOIMPORT_DATABASE_URL": pg_dsn},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    assert f"schema at version {schema.latest_version()}" in out.decode()
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await schema.applied_versions(conn) == {m.version for m in schema.migrations()}
    finally:
        await conn.close()


async def test_the_healthcheck_passes_when_ready_and_fails_when_not() -> None:
    test = compose_config()["services"]["ingester"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    database_up = True

    async def database() -> None:
        if not database_up:
            raise ConnectionError("down")

    async def run_check() -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *test[2:],
            env={**os.environ, "VIDEOIMPORT_HEALTH_PORT": str(port)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await asyncio.wait_for(process.wait(), timeout=30)

    assert await run_check() != 0, "nothing listens yet"
    async with health.serving("127.0.0.1", port, {"postgres": database}):
        assert await run_check() == 0
        database_up = False
        assert await run_check() != 0, "a 503 must fail the check"
