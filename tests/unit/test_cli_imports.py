"""Each ``videoimport`` command loads only the packages it uses: the CLI starts in a
fraction of the time when the database commands skip the HTTP client, the terminal
rendering and Kafka, and the API client commands skip Kafka.

Each case runs the command in a fresh interpreter, up to where it fails for want of
a server (a refused connection) or a token, then lists the top-level packages loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import errors as kafka_errors
from videoimport_eventlog.faults import is_outage

# Nothing listens on port 1: the command fails at connect, after all its imports.
NO_DATABASE = ("--database-url", "postgresql://127.0.0.1:1/nowhere")
RUN_COMMAND = """
from videoimport_projects import cli
assert cli.main(sys.argv[1:]) != 0, "the command should have failed without a server"
"""
HTTP_TERMINAL_KAFKA = {"httpx", "rich", "aiokafka"}


def loaded_packages(tmp_path: Path, code: str, *argv: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded once it ran ``code``."""
    probe = f"import json, sys\n{code}\n" + (
        'print(json.dumps(sorted({m.partition(".")[0] for m in sys.modules})))'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOIMPORT_")}
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "argv",
    [
        ("project", "create", "demo"),
        ("project", "set-config", "demo", "--config", "config.json"),
        ("token", "create", "--project", "demo"),
        ("webhook-secret", "show", "--project", "demo"),
        ("webhook", "redeliver", "job-1"),
        ("audit", "verify"),
        ("events", "--job", "job-1"),
        ("deadletters", "retry", "1"),
    ],
)
def test_database_commands_load_no_http_client_terminal_rendering_or_kafka(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    (tmp_path / "config.json").write_text("{}")
    loaded = loaded_packages(tmp_path, RUN_COMMAND, *argv, *NO_DATABASE)
    assert "asyncpg" in loaded  # the probe reached the connect
    assert loaded & HTTP_TERMINAL_KAFKA == set()


@pytest.mark.parametrize(
    "argv", [("status", "job-1"), ("jobs",), ("import", "videos.json", "--watch")]
)
def test_api_client_commands_load_no_kafka(tmp_path: Path, argv: tuple[str, ...]) -> None:
    loaded = loaded_packages(tmp_path, RUN_COMMAND, *argv)  # no token: refused before any request
    assert "httpx" in loaded  # the probe reached the client
    assert "aiokafka" not in loaded


def test_the_dead_letter_commands_load_no_kafka(tmp_path: Path) -> None:
    # ``deadletters list|retry`` run these after connecting: only the database.
    dead_letters = "from videoimport_eventlog import deadletters, faults"
    assert "aiokafka" not in loaded_packages(tmp_path, dead_letters)


def test_kafka_errors_are_still_told_apart_without_kafka_imported_up_front() -> None:
    assert is_outage(kafka_errors.KafkaConnectionError())
    assert is_outage(kafka_errors.KafkaTimeoutError())  # not retriable, an outage all the same
    assert is_outage(kafka_errors.RequestTimedOutError())  # retriable
    assert not is_outage(kafka_errors.TopicAuthorizationFailedError())
    assert is_outage(ConnectionRefusedError())
    assert not is_outage(ValueError("bad message"))
