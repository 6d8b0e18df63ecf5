"""LocalStack: PostgreSQL + Kafka + S3 started as local child processes."""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO

from ._process import ChildProcess, Deadline, pick_port, spawn, stop_children
from ._server import Server
from .errors import DevStackError, StartCancelledError
from .info import StackInfo, remove_stack_file, write_stack_file
from .kafka import KafkaServer
from .paths import default_cache_dir, deploy_dir
from .postgres import PostgresServer
from .s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server

log = logging.getLogger("videoimport_devstack")

PORTS_FILE = "ports.json"
DEFAULT_BUCKET = "videoimport"


class LocalStack:
    """Runs the three servers of the dev stack on 127.0.0.1, their state under ``data_dir``.

    ``start()`` installs what is missing, starts the servers in parallel, waits until real
    clients can use each of them and writes ``<data_dir>/stack.json``. ``stop()`` stops every
    child that was started (also after a failed start). Restarting on the same data dir keeps
    all data; the ports chosen are kept in ``<data_dir>/ports.json`` and re-used when free.
    """

    def __init__(
        self,
        data_dir: Path,
        cache_dir: Path | None = None,
        *,
        bucket: str = DEFAULT_BUCKET,
        start_timeout: float = 180.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.cache_dir = Path(cache_dir).resolve() if cache_dir else default_cache_dir()
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        deploy = deploy_dir()
        self.postgres = PostgresServer(self.data_dir, self.cache_dir)
        self.kafka = KafkaServer(self.data_dir, self.cache_dir, deploy)
        self.s3 = S3Server(self.data_dir, self.cache_dir, deploy, bucket)
        self._servers: tuple[Server, ...] = (self.postgres, self.kafka, self.s3)
        self._children: dict[str, ChildProcess] = {}
        self._children_lock = threading.Lock()
        self._spawner: ThreadPoolExecutor | None = None
        self._dir_lock: IO[str] | None = None
        self._info: StackInfo | None = None
        self._installed = False

    # ------------------------------------------------------------------ public

    @property
    def info(self) -> StackInfo:
        if self._info is None:
            raise DevStackError("the local stack is not started")
        return self._info

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def children(self) -> dict[str, ChildProcess]:
        with self._children_lock:
            return dict(self._children)

    def install(self) -> None:
        """Install what the servers need (idempotent; quick once done)."""
        began = time.monotonic()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.postgres.install()  # may run apt-get: not in parallel with anything
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="devstack-install") as pool:
            futures = [pool.submit(self.kafka.install), pool.submit(self.s3.install)]
        for future in futures:
            future.result()
        self._installed = True
        log.info("installed in %.1fs", time.monotonic() - began)

    def start(self) -> StackInfo:
        """Start all three servers and wait until they are ready; returns how to reach them."""
        if self._info is not None or self._children:
            raise DevStackError("the local stack is already started; stop() it first")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._lock_data_dir()
        atexit.register(self.stop)
        try:
            if not self._installed:
                self.install()
            ports = self._allocate_ports()
            self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devstack-spawn")
            deadline = Deadline(self.start_timeout)
            for server in self._servers:
                server.cancel.clear()
            pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="devstack-start")
            try:
                futures = [pool.submit(self._start_one, s, ports, deadline) for s in self._servers]
                self._raise_first_error(futures)
            except BaseException:
                # e.g. Ctrl-C while waiting: make the workers give up before joining them.
                for server in self._servers:
                    server.cancel.set()
                raise
            finally:
                pool.shutdown(wait=True)
            self._info = StackInfo(
                postgres_dsn=self.postgres.dsn,
                kafka_bootstrap=self.kafka.bootstrap,
                s3_endpoint=self.s3.endpoint,
                s3_access_key=ACCESS_KEY,
                s3_secret_key=SECRET_KEY,
                s3_bucket=self.s3.bucket,
                s3_region=REGION,
            )
            pids = {name: child.pid for name, child in self.children().items()}
            write_stack_file(self.data_dir, self._info, os.getpid(), pids)
            return self._info
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every child (signal, wait up to ``stop_timeout``, then SIGKILL). Idempotent."""
        atexit.unregister(self.stop)
        for server in self._servers:
            server.cancel.set()
        with self._children_lock:
            children = list(self._children.values())
            self._children.clear()
        try:
            stop_children(children, self.stop_timeout)
        finally:
            if self._info is not None:
                remove_stack_file(self.data_dir)
            self._info = None
            if self._spawner is not None:
                self._spawner.shutdown(wait=True)
                self._spawner = None
            self._unlock_data_dir()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def restart(self, name: str, timeout: float = 120.0) -> None:
        """Start again a server that exited, on the same ports and data; waits until ready.

        The services keep their connection settings, so they reconnect by themselves.
        """
        server = next(s for s in self._servers if s.name == name)
        ports = {
            str(k): int(v) for k, v in json.loads((self.data_dir / PORTS_FILE).read_text()).items()
        }
        with self._children_lock:
            old = self._children.pop(name, None)
        if old is not None:
            stop_children([old], 5.0)  # the rest of its process group, if any is left
        server.cancel.clear()
        self._start_one(server, ports, Deadline(timeout))
        pids = {n: child.pid for n, child in self.children().items()}
        write_stack_file(self.data_dir, self.info, os.getpid(), pids)

    def dead_children(self) -> dict[str, int]:
        """Servers that exited on their own since start, with their exit codes."""
        return {
            name: code
            for name, child in self.children().items()
            if (code := child.popen.poll()) is not None
        }

    # ------------------------------------------------------------------ internals

    def _start_one(self, server: Server, ports: dict[str, int], deadline: Deadline) -> None:
        began = time.monotonic()
        try:
            server.prepare(ports)
            prepared = time.monotonic()
            spec = server.launch()
            spawner = self._spawner
            if spawner is None or server.cancel.is_set():
                raise StartCancelledError(server.name, "cancelled: the stack is stopping")
            # Spawned on the one long-lived spawner thread: PR_SET_PDEATHSIG fires when the
            # thread that forked a child exits, and these worker threads end after start().
            child = spawner.submit(
                spawn,
                server.name,
                spec.argv,
                log_path=server.log_path,
                env=spec.env,
                cwd=spec.cwd,
                run_as=spec.run_as,
                stop_signal=spec.stop_signal,
            ).result()
            with self._children_lock:
                self._children[server.name] = child
            server.wait_ready(child, deadline)
            log.info(
                "%s ready in %.1fs (storage %.1fs, then the server %.1fs); log: %s",
                server.name,
                time.monotonic() - began,
                prepared - began,
                time.monotonic() - prepared,
                server.log_path,
            )
        except BaseException:
            for other in self._servers:
                if other is not server:
                    other.cancel.set()
            raise

    @staticmethod
    def _raise_first_error(futures: list[Future[None]]) -> None:
        errors = [exc for f in futures if (exc := f.exception()) is not None]
        if not errors:
            return
        primary = [e for e in errors if not isinstance(e, StartCancelledError)] or errors
        if len(primary) > 1:
            others = "\n\n".join(str(e) for e in primary[1:])
            primary[0].add_note(f"other servers failed too:\n{others}")
        raise primary[0]

    def _allocate_ports(self) -> dict[str, int]:
        path = self.data_dir / PORTS_FILE
        try:
            stored = {str(k): int(v) for k, v in json.loads(path.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            stored = {}
        ports: dict[str, int] = {}
        for server in self._servers:
            for name in server.port_names():
                ports[name] = pick_port(stored.get(name), ports.values())
        path.write_text(json.dumps(ports, indent=2) + "\n")
        return ports

    def _lock_data_dir(self) -> None:
        fh = (self.data_dir / ".lock").open("w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise DevStackError(
                f"another local stack is already running on {self.data_dir}"
            ) from None
        self._dir_lock = fh

    def _unlock_data_dir(self) -> None:
        if self._dir_lock is not None:
            self._dir_lock.close()
            self._dir_lock = None
