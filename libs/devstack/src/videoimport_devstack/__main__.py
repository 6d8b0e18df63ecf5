"""``python -m videoimport_devstack {up,install,compose,info}``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from . import asyncapi_tool, browser, compose_tool, media_tools
from .errors import DevStackError
from .info import read_stack_info
from .paths import CACHE_DIR_ENV, DATA_DIR_ENV, XDG_CACHE_HOME_ENV, default_data_dir
from .stack import DEFAULT_BUCKET, LocalStack


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m videoimport_devstack",
        description="Local dev stack: PostgreSQL, Kafka (KRaft) and an S3 server.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"state of the servers (default: ${DATA_DIR_ENV} or <repo>/.data)",
    )
    common.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=(
            f"downloaded and built tools, shared by every clone (default: ${CACHE_DIR_ENV},"
            f" else ${XDG_CACHE_HOME_ENV}/videoimport, else ~/.cache/videoimport)"
        ),
    )
    up = sub.add_parser(
        "up",
        parents=[common],
        help="install, start, print the StackInfo as a JSON line, run until SIGINT/SIGTERM",
    )
    up.add_argument("--bucket", default=DEFAULT_BUCKET, help="S3 bucket to create")
    up.add_argument("--start-timeout", type=float, default=180.0, metavar="SECONDS")
    sub.add_parser("install", parents=[common], help="only install what the servers need")
    sub.add_parser(
        "compose",
        parents=[common],
        help="provide a Docker Compose binary (for the compose file's test); print its path",
    )
    sub.add_parser("info", parents=[common], help="print the StackInfo of a running stack")
    return parser


def _log(message: str) -> None:
    print(f"devstack: {message}", file=sys.stderr, flush=True)


def _up(stack: LocalStack) -> int:
    stopping = threading.Event()
    starting = True

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.set()
        if starting:
            raise KeyboardInterrupt  # unwinds start(), which stops what it started

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    began = time.monotonic()
    try:
        info = stack.start()
    except KeyboardInterrupt:
        _log("interrupted during start")
        return 130
    starting = False
    _log(f"ready in {time.monotonic() - began:.1f}s; data in {stack.data_dir}; Ctrl-C stops")
    print(info.to_json(), flush=True)
    code = 0
    try:
        while not stopping.wait(1.0):
            dead = stack.dead_children()
            if dead:
                for name, rc in dead.items():
                    child = stack.children()[name]
                    _log(f"{name} exited with code {rc}; last lines of {child.log_path}:")
                    print(child.tail(), file=sys.stderr, flush=True)
                code = 1
                break
    finally:
        _log("stopping")
        stack.stop()
        _log("stopped")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="devstack: %(message)s", stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    data_dir: Path = args.data_dir or default_data_dir()
    try:
        if args.command == "info":
            print(read_stack_info(data_dir).to_json())
            return 0
        if args.command == "install":
            LocalStack(data_dir, args.cache_dir).install()
            # The AsyncAPI parser that `make test` validates docs/asyncapi.json with.
            asyncapi_tool.install(args.cache_dir, data_dir / "logs")
            # Headless Chromium, which the operator page's browser test drives.
            browser.install(args.cache_dir, data_dir / "logs")
            # ffprobe and ffmpeg, which the ingester runs on every stored video.
            media_tools.install(args.cache_dir, data_dir / "logs")
            return 0
        if args.command == "compose":
            print(compose_tool.install(args.cache_dir, data_dir / "logs"))
            return 0
        stack = LocalStack(
            data_dir, args.cache_dir, bucket=args.bucket, start_timeout=args.start_timeout
        )
        return _up(stack)
    except DevStackError as exc:
        _log(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
