"""Child processes, ports, deadlines and log tails shared by the three servers."""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .errors import DevStackError, InstallError

_PR_SET_PDEATHSIG = 1
_T = TypeVar("_T")


class Deadline:
    """A point in (monotonic) time; polling loops check it instead of sleeping blindly."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds
        self.seconds = seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self._end


def poll_until(
    check: Callable[[], _T | None],
    deadline: Deadline,
    *,
    interval: float = 0.2,
    what: str,
) -> _T:
    """Call ``check`` until it returns a value other than None; TimeoutError at the deadline."""
    while True:
        result = check()
        if result is not None:
            return result
        if deadline.expired():
            raise TimeoutError(f"{what}: not ready after {deadline.seconds:.0f}s")
        time.sleep(min(interval, deadline.remaining()))


# --------------------------------------------------------------------------- ports


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on host:port now (SO_REUSEADDR, as servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pick_port(preferred: int | None, taken: Iterable[int], host: str = "127.0.0.1") -> int:
    """Re-use ``preferred`` when it is free, else let the kernel pick a free port."""
    avoid = set(taken)
    if preferred and preferred not in avoid and port_is_free(preferred, host):
        return preferred
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port
    raise DevStackError("could not find a free TCP port on 127.0.0.1")


def tcp_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- logs


def tail_file(path: Path, *, offset: int = 0, lines: int = 40, max_bytes: int = 64 * 1024) -> str:
    """The last ``lines`` lines of ``path`` written after byte ``offset`` ("" if none)."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(offset, size - max_bytes)
            fh.seek(start)
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def open_log(path: Path, header: str) -> tuple[int, int]:
    """Open ``path`` for appending, write a header line; returns (fd, offset before header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    offset = os.fstat(fd).st_size
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    os.write(fd, f"===== {stamp} {header} =====\n".encode())
    return fd, offset


# --------------------------------------------------------------------------- users


@dataclass(frozen=True)
class RunAs:
    """An unprivileged account to run a child as (used for PostgreSQL when we are root)."""

    name: str
    uid: int
    gid: int

    @classmethod
    def lookup(cls, name: str) -> RunAs:
        entry = pwd.getpwnam(name)
        return cls(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def _preexec(parent_pid: int, death_signal: int) -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl

    def preexec() -> None:
        # Runs in the child after fork and after setuid (which would clear the setting):
        # the kernel sends death_signal when the thread that spawned us dies.
        prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), death_signal)

    return preexec


def _credentials(run_as: RunAs | None) -> tuple[int | None, int | None, list[int] | None]:
    """(user, group, extra_groups) for subprocess: None keeps ours."""
    if run_as is None or os.geteuid() == run_as.uid:
        return None, None, None
    return run_as.uid, run_as.gid, []


def run_command(
    argv: Sequence[str],
    *,
    log_path: Path,
    what: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    run_as: RunAs | None = None,
    error: type[DevStackError] = DevStackError,
) -> None:
    """Run a short command to completion, its output appended to ``log_path``."""
    fd, offset = open_log(log_path, f"{what}: {' '.join(argv)}")
    user, group, extra_groups = _credentials(run_as)
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            timeout=timeout,
            check=False,
            start_new_session=True,
            preexec_fn=_preexec(os.getpid(), signal.SIGKILL),
            user=user,
            group=group,
            extra_groups=extra_groups,
        )
    except subprocess.TimeoutExpired as exc:
        raise error(
            f"{what} did not finish within {timeout:.0f}s\n{tail_file(log_path, offset=offset)}"
        ) from exc
    except OSError as exc:
        raise error(f"{what} could not be run ({argv[0]}): {exc}") from exc
    finally:
        os.close(fd)
    if proc.returncode != 0:
        raise error(
            f"{what} failed with exit code {proc.returncode} (log: {log_path})\n"
            f"{tail_file(log_path, offset=offset)}"
        )


# --------------------------------------------------------------------------- children


@dataclass
class ChildProcess:
    """A long-running server process started by the stack."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_offset: int
    stop_signal: int = signal.SIGTERM
    stopped: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        return tail_file(self.log_path, offset=self.log_offset, lines=lines)


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    run_as: RunAs | None = None,
    stop_signal: int = signal.SIGTERM,
) -> ChildProcess:
    """Start a server in its own process group, stdout+stderr appended to ``log_path``.

    PR_SET_PDEATHSIG ties the child to the *thread* calling this function: call it from a
    thread that lives as long as the child should (the stack uses one spawner thread).
    """
    fd, offset = open_log(log_path, f"start {name}: {' '.join(argv)}")
    user, group, extra_groups = _credentials(run_as)
    try:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_preexec(os.getpid(), stop_signal),
            user=user,
            group=group,
            extra_groups=extra_groups,
        )
    finally:
        os.close(fd)
    return ChildProcess(name, popen, log_path, offset, stop_signal)


def stop_children(children: Sequence[ChildProcess], timeout: float) -> None:
    """Send each child its stop signal, wait up to ``timeout``, then SIGKILL its group."""
    for child in children:
        if child.alive():
            try:
                os.kill(child.pid, child.stop_signal)
            except ProcessLookupError:
                pass
    deadline = Deadline(timeout)
    for child in children:
        try:
            child.popen.wait(timeout=deadline.remaining())
        except subprocess.TimeoutExpired:
            pass
    for child in children:
        if child.popen.poll() is None:
            # Not reaped yet, so the group id cannot have been recycled: kill the whole
            # group (e.g. postgres backends, not only the postmaster).
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            child.popen.wait(timeout=10)
        child.stopped = True


# --------------------------------------------------------------------------- tools


def which(tool: str) -> str | None:
    return shutil.which(tool)


def apt_install(packages: Sequence[str], *, log_path: Path, why: str) -> None:
    """``apt-get install`` the packages (root only), otherwise fail with a clear message."""
    if os.geteuid() != 0:
        raise InstallError(
            f"{why}: install the Debian packages {' '.join(packages)} "
            "(e.g. `sudo apt-get install -y " + " ".join(packages) + "`) and retry"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_command(
        ["apt-get", "update"],
        log_path=log_path,
        what="apt-get update",
        timeout=600,
        env=env,
        error=InstallError,
    )
    run_command(
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        log_path=log_path,
        what=f"apt-get install {' '.join(packages)}",
        timeout=1200,
        env=env,
        error=InstallError,
    )
