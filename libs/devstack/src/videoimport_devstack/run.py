"""``make run``: the local stack, every service, a demo project and token.

Prints how to reach it (api, token, kafka, the demo helper's URLs, and the
command that shows the demo project's webhook secret), then runs until Ctrl-C or
SIGTERM and stops everything. State lives in ``.data/``, so a later run finds
earlier jobs, media and blobs.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from . import demo_server
from ._process import pick_port
from .paths import default_data_dir, repo_root
from .services import ServiceSet
from .stack import LocalStack
from .supervisor import Supervisor

DEMO_PROJECT = "demo"
SERVICE_STOP_SECONDS = 15.0
STACK_STOP_SECONDS = 12.0
"""Together under the 30 s an orchestrator gives a stopping process."""


def _cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "videoimport_projects.cli", *args, "--database-url", dsn],
        capture_output=True,
        text=True,
        check=False,
    )


def ensure_demo_token(data_dir: Path, dsn: str) -> str:
    """The demo project and a write token; the token is kept in the data dir."""
    config = repo_root() / "deploy" / "demo-project.json"
    created = _cli(dsn, "project", "create", DEMO_PROJECT, "--config", str(config))
    if created.returncode != 0 and "exists" not in created.stderr:
        raise SystemExit(created.stderr.strip())
    token_file = data_dir / "demo-token"
    if token_file.exists() and created.returncode != 0:
        return token_file.read_text().strip()
    issued = _cli(dsn, "token", "create", "--project", DEMO_PROJECT)
    if issued.returncode != 0:
        raise SystemExit(issued.stderr.strip())
    token = issued.stdout.strip()
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return token


def _saved_ports(data_dir: Path) -> dict[str, int]:
    try:
        saved: dict[str, int] = json.loads((data_dir / "run.json").read_text())
        return saved
    except (OSError, ValueError):
        return {}


def operator_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``VIDEOIMPORT_*`` variables ``make run`` passes on to every service."""
    return {k: v for k, v in environ.items() if k.startswith("VIDEOIMPORT_")}


def supervise(
    services: ServiceSet, stack: LocalStack, stopping: threading.Event, log_dir: Path
) -> None:
    """Until ``stopping``: restart any service or server that exits, with backoff.

    Gives up (returns, so everything stops) on one that keeps dying.
    """
    supervisor = Supervisor()
    now = time.monotonic()
    for name in services.children:
        supervisor.started(f"service {name}", now)
    for name in stack.children():
        supervisor.started(f"server {name}", now)
    while not stopping.wait(0.5):
        now = time.monotonic()
        dead = {f"server {n}": c for n, c in stack.dead_children().items()}
        dead.update({f"service {n}": c for n, c in services.dead().items()})
        for what, code in dead.items():
            if supervisor.pending(what):
                continue
            delay = supervisor.died(what, now, random.random())
            if delay is None:
                print(f"{what} keeps exiting ({code}); giving up, see {log_dir}", file=sys.stderr)
                return
            print(
                f"{what} exited ({code}); restarting in {delay:.1f} s"
                f" (restart {supervisor.restarts.get(what, 0) + 1}); see {log_dir}",
                file=sys.stderr,
                flush=True,
            )
        for what in supervisor.due(now):
            kind, _, name = what.partition(" ")
            try:
                if kind == "server":
                    stack.restart(name)
                else:
                    services.start_one(name)
            except Exception as exc:
                # As good as another exit: try again later, with a longer wait.
                print(f"{what} could not be restarted: {exc}", file=sys.stderr, flush=True)
                supervisor.restarted(what, time.monotonic())
                if supervisor.died(what, time.monotonic(), random.random()) is None:
                    print(f"{what} cannot be restarted; giving up", file=sys.stderr)
                    return
                continue
            supervisor.restarted(what, time.monotonic())
            print(f"{what} restarted", file=sys.stderr, flush=True)
    if supervisor.restarts:
        summary = ", ".join(f"{k} x{v}" for k, v in sorted(supervisor.restarts.items()))
        print(f"restarts: {summary}", file=sys.stderr, flush=True)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    data_dir = default_data_dir()
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack = LocalStack(data_dir, stop_timeout=STACK_STOP_SECONDS)
    services: ServiceSet | None = None
    try:
        print(
            "starting the local stack (first run installs Kafka, PostgreSQL, s3rver)...", flush=True
        )
        info = stack.start()
        ports = _saved_ports(data_dir)
        demo_port = pick_port(ports.get("demo"), ())
        services = ServiceSet(
            info,
            data_dir / "logs",
            api_port=ports.get("api", 8000),
            # The operator's own settings win over the local stack's defaults,
            # e.g. VIDEOIMPORT_ALLOW_PRIVATE_URLS=false turns the address guard on.
            extra_env=operator_settings(os.environ),
        )
        (data_dir / "run.json").write_text(
            json.dumps({"api": services.api_port, "demo": demo_port})
        )
        demo = demo_server.serve(
            repo_root() / "tests" / "fixtures", data_dir / "webhooks.jsonl", demo_port
        )
        api_url = services.start()
        token = ensure_demo_token(data_dir, info.postgres_dsn)
        print(f"api: {api_url}")
        print(f"token: {token}")
        print(f"kafka: {info.kafka_bootstrap}")
        print(f"samples: http://127.0.0.1:{demo_port}/samples/sample.mp4")
        print(f"webhooks: http://127.0.0.1:{demo_port}/webhooks")
        # Each project signs with its own secret; printing it here would put it in logs.
        print(f"webhook secret: uv run videoimport webhook-secret show --project {DEMO_PROJECT}")
        print(f"logs: {data_dir / 'logs'}  (Ctrl-C stops everything)", flush=True)
        supervise(services, stack, stopping, data_dir / "logs")
        demo.shutdown()
    finally:
        print("stopping...", flush=True)
        if services is not None:
            # Each service finishes or abandons its work within its own grace
            # (the ingester's is 10 s); the whole stop stays under 30 s.
            services.stop(timeout=SERVICE_STOP_SECONDS)
        stack.stop()


if __name__ == "__main__":
    main()
