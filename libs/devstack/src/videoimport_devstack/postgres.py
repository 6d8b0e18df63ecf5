"""PostgreSQL from the Debian packages, one cluster under ``<data_dir>/postgres``."""

from __future__ import annotations

import importlib
import os
import re
import signal
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._process import ChildProcess, Deadline, RunAs, apt_install, run_command
from ._server import LaunchSpec, Server
from .errors import DevStackError, InstallError

DB_NAME = "videoimport"
DB_USER = "videoimport"
SUPERUSER = "postgres"
_SYSTEM_USER = "postgres"  # created by Debian's postgresql-common
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes, incl. "/.s.PGSQL.NNNNN"
_NO_MAIN_CLUSTER = Path("/etc/postgresql-common/createcluster.d/videoimport-devstack.conf")


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding initdb and postgres."""
    root = Path("/usr/lib/postgresql")
    candidates = []
    for bin_dir in root.glob("*/bin") if root.is_dir() else []:
        if (bin_dir / "initdb").is_file() and (bin_dir / "postgres").is_file():
            major = re.match(r"\d+", bin_dir.parent.name)
            candidates.append((int(major.group()) if major else 0, bin_dir))
    return max(candidates)[1] if candidates else None


def _can_search(path: Path, user: RunAs, groups: set[int]) -> bool:
    st = path.stat()
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def make_traversable(path: Path, user: RunAs) -> list[Path]:
    """Give ``user`` search (x) permission on every ancestor of ``path`` that lacks it.

    Needed when we are root and the data dir sits under a private directory (e.g. pytest's
    /tmp/pytest-of-root, mode 0700). Only o+x is added: nothing becomes listable.
    """
    groups = {user.gid, *os.getgrouplist(user.name, user.gid)}
    changed = []
    for ancestor in reversed(path.resolve().parents):
        if not _can_search(ancestor, user, groups):
            os.chmod(ancestor, ancestor.stat().st_mode | stat.S_IXOTH)
            changed.append(ancestor)
    return changed


class PostgresServer(Server):
    name = "postgres"

    def __init__(self, data_dir: Path, cache_dir: Path) -> None:
        super().__init__(data_dir, cache_dir)
        self.cluster_dir = data_dir / "postgres"
        self.socket_dir = data_dir / "pgsocket"
        self.port = 0

    @property
    def dsn(self) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def port_names(self) -> tuple[str, ...]:
        return ("postgres",)

    def _run_as(self) -> RunAs | None:
        """Root cannot run PostgreSQL: use the ``postgres`` system account then."""
        if os.geteuid() != 0:
            return None
        try:
            return RunAs.lookup(_SYSTEM_USER)
        except KeyError:
            raise InstallError(
                f"running as root but there is no '{_SYSTEM_USER}' user to run PostgreSQL as "
                "(it is created by the Debian postgresql package)"
            ) from None

    def _bin(self, tool: str) -> str:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise InstallError(
                "PostgreSQL is not installed: run `python -m videoimport_devstack install`"
            )
        return str(bin_dir / tool)

    def install(self) -> None:
        if find_bin_dir() is not None:
            return
        if os.geteuid() == 0:
            # Keep the package from creating and starting its own "main" cluster
            # (postgresql-common's createcluster.conf includes this directory).
            _NO_MAIN_CLUSTER.parent.mkdir(parents=True, exist_ok=True)
            _NO_MAIN_CLUSTER.write_text("create_main_cluster = false\n")
        apt_install(
            ["postgresql"],
            log_path=self.log_dir / "install.log",
            why="PostgreSQL (initdb/postgres under /usr/lib/postgresql/*/bin) was not found",
        )
        if find_bin_dir() is None:
            raise InstallError("apt-get installed postgresql but no initdb/postgres was found")

    def prepare(self, ports: Mapping[str, int]) -> None:
        self.port = ports["postgres"]
        run_as = self._run_as()
        for directory in (self.cluster_dir, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
            if run_as is not None:
                os.chown(directory, run_as.uid, run_as.gid)
        if run_as is not None:
            make_traversable(self.cluster_dir, run_as)
        if (self.cluster_dir / "PG_VERSION").is_file():
            return
        if any(self.cluster_dir.iterdir()):
            raise DevStackError(
                f"{self.cluster_dir} is neither empty nor a PostgreSQL cluster (no PG_VERSION): "
                "an earlier initdb failed? Remove the directory and start again."
            )
        run_command(
            [
                self._bin("initdb"), "-D", str(self.cluster_dir), "-U", SUPERUSER,
                "--auth-local=trust", "--auth-host=trust", "--encoding=UTF8",
                "--locale=C.UTF-8", "--no-instructions",
            ],
            log_path=self.log_dir / "postgres-initdb.log", what="initdb", timeout=300,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
            cwd=self.cluster_dir, run_as=run_as,
        )  # fmt: skip

    def launch(self) -> LaunchSpec:
        socket_dirs = str(self.socket_dir)
        if len(socket_dirs) > _SOCKET_PATH_MAX:
            socket_dirs = ""  # too long for a unix socket path: TCP only
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": socket_dirs,
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "max_connections": "200",
            "shared_buffers": "128MB",
            "logging_collector": "off",
            "log_line_prefix": "%m [%p] %q%u@%d ",
            "log_min_messages": "warning",
            "log_connections": "off",
        }
        argv = [self._bin("postgres"), "-D", str(self.cluster_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return LaunchSpec(
            argv=argv,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
            cwd=self.cluster_dir,
            run_as=self._run_as(),
            # SIGINT = "fast" shutdown: does not wait for clients to disconnect.
            stop_signal=signal.SIGINT,
        )

    def wait_ready(self, child: ChildProcess, deadline: Deadline) -> None:
        asyncpg = importlib.import_module("asyncpg")

        async def probe() -> bool:
            conn = await asyncpg.connect(
                host="127.0.0.1", port=self.port, user=SUPERUSER, database="postgres", timeout=3
            )
            try:
                await self._bootstrap(conn)
            finally:
                await conn.close()
            return True

        self.poll_ready(child, deadline, probe)

    async def _bootstrap(self, conn: Any) -> None:
        """Create the application role and database once."""
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", DB_USER):
            await conn.execute(f"CREATE ROLE {DB_USER} LOGIN CREATEDB PASSWORD '{DB_USER}'")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DB_NAME):
            await conn.execute(f"CREATE DATABASE {DB_NAME} OWNER {DB_USER}")
