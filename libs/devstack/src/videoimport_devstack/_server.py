"""The interface every server of the stack implements, plus small shared helpers."""

from __future__ import annotations

import abc
import asyncio
import hashlib
import signal
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ._process import ChildProcess, Deadline, RunAs
from .errors import ServerStartError, StartCancelledError

_T = TypeVar("_T")


@dataclass(frozen=True)
class LaunchSpec:
    argv: list[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    run_as: RunAs | None = None
    stop_signal: int = signal.SIGTERM


class Server(abc.ABC):
    """One server of the stack: install once, prepare its storage, launch, wait until ready."""

    name: str = "server"

    def __init__(self, data_dir: Path, cache_dir: Path) -> None:
        self.data_dir = data_dir
        self.cache_dir = cache_dir
        self.log_dir = data_dir / "logs"
        # Set by the stack when another server failed: stop waiting for this one.
        self.cancel = threading.Event()

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @abc.abstractmethod
    def port_names(self) -> tuple[str, ...]:
        """Names of the TCP ports this server needs (keys of ``ports.json``)."""

    @abc.abstractmethod
    def install(self) -> None:
        """Make the binaries available (idempotent, may download)."""

    @abc.abstractmethod
    def prepare(self, ports: Mapping[str, int]) -> None:
        """Write config and initialise storage on first use (runs in a worker thread)."""

    @abc.abstractmethod
    def launch(self) -> LaunchSpec:
        """The command that runs the server in the foreground."""

    @abc.abstractmethod
    def wait_ready(self, child: ChildProcess, deadline: Deadline) -> None:
        """Poll until a real client can use the server; raise ServerStartError otherwise."""

    # helpers ---------------------------------------------------------------

    def fail(self, child: ChildProcess | None, reason: str) -> ServerStartError:
        tail = child.tail() if child is not None else ""
        return ServerStartError(self.name, reason, tail)

    def ensure_alive(self, child: ChildProcess) -> None:
        code = child.popen.poll()
        if code is not None:
            raise self.fail(child, f"the process exited with code {code} (log: {child.log_path})")

    def poll_ready(
        self,
        child: ChildProcess,
        deadline: Deadline,
        probe: Callable[[], Awaitable[bool]],
        *,
        interval: float = 0.25,
    ) -> None:
        """Run ``probe`` in a private event loop until it returns True, the process exits
        or the deadline passes. Errors raised by the probe count as "not ready yet"."""

        async def loop() -> None:
            last_error = "no attempt made"
            while True:
                self.ensure_alive(child)
                if self.cancel.is_set():
                    raise StartCancelledError(self.name, "cancelled: another server failed")
                try:
                    attempt_timeout = max(0.5, min(10.0, deadline.remaining()))
                    if await asyncio.wait_for(probe(), timeout=attempt_timeout):
                        return
                    last_error = "probe returned not ready"
                except ServerStartError:
                    raise
                except Exception as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
                if deadline.expired():
                    raise self.fail(
                        child,
                        f"not ready after {deadline.seconds:.0f}s (last probe: {last_error})",
                    )
                await asyncio.sleep(min(interval, deadline.remaining()))

        asyncio.run(loop())


def file_sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run_async(coro_fn: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine function to completion in a private event loop (worker threads)."""

    async def main() -> _T:
        return await coro_fn()

    return asyncio.run(main())
