"""S3-compatible server (s3rver from npm) keeping objects as files under ``<data_dir>/s3``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from ._cache import npm_tool
from ._process import ChildProcess, Deadline, apt_install, which
from ._server import LaunchSpec, Server
from .errors import InstallError

# s3rver's built-in account; it checks V2 signatures only (V4 ones are accepted unchecked).
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"
REGION = "us-east-1"
_MIN_NODE = 18


def node_major_version(node: str) -> int:
    out = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False, timeout=60
    ).stdout
    match = re.match(r"v(\d+)", out.strip())
    if not match:
        raise InstallError(f"cannot tell the version of {node}: {out.strip()!r}")
    return int(match.group(1))


class S3Server(Server):
    name = "s3"

    def __init__(self, data_dir: Path, cache_dir: Path, deploy_dir: Path, bucket: str) -> None:
        super().__init__(data_dir, cache_dir)
        self.app_dir = deploy_dir / "s3"
        self.objects_dir = data_dir / "s3"
        self.bucket = bucket
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def port_names(self) -> tuple[str, ...]:
        return ("s3",)

    def install(self) -> None:
        log = self.log_dir / "install.log"
        if which("node") is None or which("npm") is None:
            apt_install(["nodejs", "npm"], log_path=log, why="the S3 server runs on Node.js")
        node = which("node")
        if node is None or which("npm") is None:
            raise InstallError("node and npm are needed for the S3 server (s3rver)")
        if node_major_version(node) < _MIN_NODE:
            raise InstallError(f"s3rver needs Node.js {_MIN_NODE}+ (found {node})")
        npm_tool(
            self.cache_dir, self.app_dir, package="s3rver", npm_args=[],
            env={**os.environ, "NODE_ENV": "production"}, log_path=log,
        )  # fmt: skip

    def prepare(self, ports: Mapping[str, int]) -> None:
        self.port = ports["s3"]
        self.objects_dir.mkdir(parents=True, exist_ok=True)

    def launch(self) -> LaunchSpec:
        node = which("node")
        if node is None:
            raise InstallError("node not found: run `python -m videoimport_devstack install`")
        argv = [
            node, str(self.app_dir / "server.js"),
            "--address", "127.0.0.1", "--port", str(self.port),
            "--directory", str(self.objects_dir), "--bucket", self.bucket,
        ]  # fmt: skip
        return LaunchSpec(argv=argv, cwd=self.app_dir, stop_signal=signal.SIGTERM)

    def wait_ready(self, child: ChildProcess, deadline: Deadline) -> None:
        url = f"{self.endpoint}/{self.bucket}"

        def head_bucket() -> bool:
            # HEAD Bucket answers 200 only once the server listens and the bucket exists.
            request = urllib.request.Request(url, method="HEAD")
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    return int(response.status) == 200
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        async def probe() -> bool:
            return await asyncio.to_thread(head_bucket)

        self.poll_ready(child, deadline, probe)
