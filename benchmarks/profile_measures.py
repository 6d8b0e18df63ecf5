"""What the profile measures beside py-spy: CPU per process tree, database sessions,
statements and table writes, and the summary of py-spy's collapsed stacks."""

from __future__ import annotations

import asyncio
import contextlib
import linecache
import os
import resource
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg

RATE = 100  # py-spy samples per second
TICK = os.sysconf("SC_CLK_TCK")
# Leaf frames by file path, first match wins; C extensions show as the calling line.
LIBRARIES = (
    ("asyncpg", "asyncpg"), ("aiokafka", "aiokafka"), ("kafka/", "aiokafka"),
    ("aiobotocore", "aiobotocore"), ("botocore", "aiobotocore"), ("aiohttp", "aiohttp"),
    ("yarl", "aiohttp"), ("multidict", "aiohttp"), ("msgspec", "msgspec"), ("/json/", "json"),
    ("hashlib", "hashlib"), ("litestar", "litestar/uvicorn"), ("uvicorn", "litestar/uvicorn"),
    ("h11", "litestar/uvicorn"), ("structlog", "logging"), ("/logging/", "logging"),
    ("selectors.py", "epoll wait"), ("selector_events.py", "socket send/recv"),
    ("asyncio/", "event loop"),
)  # fmt: skip
CALLS = (("msgspec", "msgspec"), ("sha256", "hashlib"), ("hashlib", "hashlib"), ("json.", "json"))


def cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """utime+stime (+ reaped children's) of every process tree under ``roots``."""
    parent, ticks = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                data = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # exited meanwhile
            fields = data[data.rindex(")") + 2 :].split()
            parent[int(entry)] = int(fields[1])
            ticks[int(entry)] = sum(int(f) for f in fields[11:15])
    result = {}
    for name, root in roots.items():
        tree, frontier = {root}, [root]
        while frontier:
            children = [pid for pid, ppid in parent.items() if ppid in frontier]
            tree.update(children)
            frontier = children
        result[name] = sum(ticks.get(pid, 0) for pid in tree) / TICK
    return result


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / TICK


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client_ports(pids: dict[str, int], server_port: int) -> dict[int, str]:
    """Local TCP port → service, for every connection a service holds to ``server_port``."""
    inodes = {}
    for name, pid in pids.items():
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if (target := os.readlink(fd)).startswith("socket:["):
                    inodes[target[8:-1]] = name
    ports = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            remote_port = int(fields[2].rpartition(":")[2], 16)
            if remote_port == server_port and fields[9] in inodes:
                ports[int(fields[1].rpartition(":")[2], 16)] = inodes[fields[9]]
    return ports


# Each session of our database with the advisory lock it waits for, if any.
_SESSIONS = (
    "SELECT client_port, state, wait_event_type, wait_event, (SELECT objid FROM pg_locks l"
    " WHERE l.pid = a.pid AND NOT l.granted AND l.locktype = 'advisory' LIMIT 1) AS lock"
    " FROM pg_stat_activity a WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


async def sample_sessions(
    dsn: str, pids: dict[str, int], stop: asyncio.Event
) -> tuple[Counter[tuple[str, str]], int]:
    """Every 50 ms, what each service's database sessions do (state or wait event).

    Returns (service, what) → samples, and the number of samples: a count divided by
    the samples is the mean number of that service's sessions doing that.
    """
    seen, rounds = Counter[tuple[str, str]](), 0
    server_port = int(dsn.rpartition(":")[2].partition("/")[0])
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            if rounds % 20 == 0:
                ports = client_ports(pids, server_port)
            rows = await conn.fetch(_SESSIONS)
            for r in rows:
                what = (
                    r["state"]
                    if r["state"] != "active" or r["wait_event"] is None
                    else (f"waiting {r['wait_event_type']}/{r['wait_event']}")
                )
                if r["lock"] is not None:
                    what += f" (advisory lock {r['lock']})"
                seen[(ports.get(r["client_port"], "other"), what)] += 1
            rounds += 1
            await first_of_stop(stop, 0.05)
    finally:
        await conn.close()
    return seen, rounds


async def first_of_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def start_py_spy(pid: int, out: Path, seconds: int) -> subprocess.Popen[bytes]:
    argv = ["py-spy", "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw",
            "--nonblocking", "--full-filenames", "--subprocesses", "--duration", str(seconds),
            "--output", str(out)]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_py_spy(process: subprocess.Popen[bytes]) -> float:
    """SIGINT (py-spy then writes what it sampled); returns py-spy's own CPU seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0
    return usage.ru_utime + usage.ru_stime


def frame_parts(frame: str) -> tuple[str, str, int]:
    """``func (path:line)`` → (func, path, line)."""
    func, _, where = frame.rpartition(" (")
    path, _, line = where.rstrip(")").rpartition(":")
    return func, path, int(line) if line.isdigit() else 0


def short(path: str) -> str:
    for marker in ("site-packages/", "/src/", "python3.11/"):
        if marker in path:
            return path.rpartition(marker)[2]
    return path


def library(func: str, path: str, line: int) -> str:
    if "videoimport_" in path:
        source = linecache.getline(path, line)
        called = next((name for word, name in CALLS if word in source), None)
        package = short(path).split("/")[0]
        return f"{called} (from {package})" if called else package
    return next((name for marker, name in LIBRARIES if marker in path), f"other: {short(path)}")


def summarise_stacks(raw: Path) -> dict[str, Any]:
    selfs, cumulative, libraries = Counter[str](), Counter[str](), Counter[str]()
    total = 0
    for row in raw.read_text().splitlines() if raw.exists() else []:
        stack, _, count_text = row.rpartition(" ")
        if not count_text.isdigit():
            continue
        count, frames = int(count_text), [frame_parts(f) for f in stack.split(";") if f]
        total += count
        if not frames:
            continue
        func, path, line = frames[-1]
        selfs[f"{func} ({short(path)}:{line})"] += count
        libraries[library(func, path, line)] += count
        for name in {f"{f} ({short(p)})" for f, p, _ in frames}:
            cumulative[name] += count
    return {
        "samples": total,
        "cpu_s_estimate": total / RATE,
        "by_library": libraries.most_common(),
        "top_self": selfs.most_common(25),
        "top_cumulative": cumulative.most_common(40),
    }


async def statements(dsn: str, videos: int) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT calls, total_exec_time, rows, query FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()"
            " ORDER BY calls DESC"
        )
    finally:
        await conn.close()
    return [
        {"per_video": r["calls"] / videos, "calls": r["calls"], "ms": round(r["total_exec_time"]),
         "rows": r["rows"], "query": " ".join(r["query"].split())[:220]}
        for r in rows
    ]  # fmt: skip


async def table_writes(dsn: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del,"
            " pg_total_relation_size(relid) AS bytes FROM pg_stat_user_tables"
            " WHERE n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY n_tup_upd + n_tup_ins DESC"
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]
