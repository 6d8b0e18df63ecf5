"""Run every service of the project as its own process against a running stack.

Used by ``make run`` and by the end-to-end tests, so both exercise the same
processes a deployment runs: ``python -m videoimport_<service>``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from ._process import ChildProcess, Deadline, pick_port, spawn, stop_children
from .errors import ServerStartError
from .info import StackInfo

# Readers of the log first, the API (which clients reach) last.
SERVICES = ("projector", "relay", "ingester", "notifier", "api")
WORKERS = tuple(name for name in SERVICES if name != "api")
"""The services with a health listener of their own (the API serves it on its port)."""


def process_names(ingesters: int = 1) -> tuple[str, ...]:
    """The children to run, in start order: ``SERVICES`` with ``ingester-2``,
    ``ingester-3``… right after ``ingester`` when more than one ingester runs."""
    names: list[str] = []
    for name in SERVICES:
        names.append(name)
        if name == "ingester":
            names += [f"ingester-{number}" for number in range(2, ingesters + 1)]
    return tuple(names)


def service_of(process: str) -> str:
    """The service a child runs (``ingester-2`` runs the ingester)."""
    return process.partition("-")[0]


class ServiceSet:
    def __init__(
        self,
        stack: StackInfo,
        log_dir: Path,
        *,
        api_port: int | None = None,
        topic_prefix: str = "",
        bucket: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        ingesters: int = 1,
    ) -> None:
        if ingesters < 1:
            raise ValueError("ingesters must be at least 1")
        self.stack = stack
        self.log_dir = log_dir
        self.api_port = pick_port(api_port, ())
        # Extra ingester processes share the database and topics (one consumer group).
        self.processes = process_names(ingesters)
        # Picked once: a restarted worker listens where tools already probe it.
        self.health_ports: dict[str, int] = {}
        for name in (process for process in self.processes if process != "api"):
            taken = (self.api_port, *self.health_ports.values())
            self.health_ports[name] = pick_port(None, taken)
        self.topic_prefix = topic_prefix
        self.bucket = bucket or stack.s3_bucket
        self.extra_env = dict(extra_env or {})
        self.children: dict[str, ChildProcess] = {}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def health_url(self, name: str) -> str:
        """Base URL of ``name``'s ``/health/live`` and ``/health/ready`` (the API's own
        port for the API), as the service's environment sets it."""
        if name == "api":
            return self.api_url
        port = self.environment(name).get("VIDEOIMPORT_HEALTH_PORT", "0")
        if not port or port == "0":
            raise ValueError(f"{name} has no health listener (VIDEOIMPORT_HEALTH_PORT={port!r})")
        return f"http://127.0.0.1:{port}"

    def environment(self, name: str | None = None) -> dict[str, str]:
        """What service ``name`` runs with (``extra_env`` wins over the stack's defaults)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOIMPORT_")}
        env.update(
            {
                "VIDEOIMPORT_DATABASE_URL": self.stack.postgres_dsn,
                "VIDEOIMPORT_KAFKA_BOOTSTRAP": self.stack.kafka_bootstrap,
                "VIDEOIMPORT_TOPIC_PREFIX": self.topic_prefix,
                "VIDEOIMPORT_S3_ENDPOINT": self.stack.s3_endpoint,
                "VIDEOIMPORT_S3_ACCESS_KEY": self.stack.s3_access_key,
                "VIDEOIMPORT_S3_SECRET_KEY": self.stack.s3_secret_key,
                "VIDEOIMPORT_S3_BUCKET": self.bucket,
                "VIDEOIMPORT_S3_REGION": self.stack.s3_region,
                # The local stack serves videos and receives webhooks on loopback.
                "VIDEOIMPORT_ALLOW_PRIVATE_URLS": "true",
                "VIDEOIMPORT_HOST": "127.0.0.1",
                "VIDEOIMPORT_PORT": str(self.api_port),
                "VIDEOIMPORT_MEDIA_BASE_URL": f"{self.api_url}/media",
                "VIDEOIMPORT_LOG_JSON": "true",
            }
        )
        if name in self.health_ports:
            env["VIDEOIMPORT_HEALTH_PORT"] = str(self.health_ports[name])
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 90.0) -> str:
        """Start all services; returns the API's base URL once it answers /health.

        Call it from a thread that outlives the services (the main thread): each
        child is tied to the thread that spawned it and dies when that thread ends.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for name in self.processes:
                self.start_one(name)
            self._wait_healthy(Deadline(timeout))
        except BaseException:
            self.stop()
            raise
        return self.api_url

    def start_one(self, name: str) -> None:
        """(Re)start one service, e.g. after ``crash`` (same thread rule as ``start``)."""
        self.children[name] = spawn(
            name,
            [sys.executable, "-m", f"videoimport_{service_of(name)}"],
            log_path=self.log_dir / f"{name}.log",
            env=self.environment(name),
        )

    def crash(self, name: str) -> None:
        """SIGKILL one service: no cleanup, no goodbye, as in a power cut."""
        child = self.children[name]
        os.killpg(child.pid, signal.SIGKILL)
        child.popen.wait(timeout=30)
        child.stopped = True

    def dead(self) -> dict[str, int]:
        return {
            name: child.popen.returncode
            for name, child in self.children.items()
            if not child.alive() and not child.stopped
        }

    def stop(self, timeout: float = 30.0) -> None:
        # Reverse order: stop taking requests before the workers behind them go.
        stop_children(list(reversed(self.children.values())), timeout)

    def _wait_healthy(self, deadline: Deadline) -> None:
        while True:
            dead = self.dead()
            if dead:
                name = next(iter(dead))
                raise ServerStartError(
                    name, f"exited with {dead[name]}", self.children[name].tail()
                )
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if deadline.expired():
                raise ServerStartError(
                    "api", "/health did not answer 200 in time", self.children["api"].tail()
                )
            time.sleep(0.2)
