"""Reading the event log as a user: ``videoimport events`` and ``videoimport history``.

    videoimport events [--job ID] [--project P] [--system-name S --external-id E]
                       [--type T ...] [--since TIME] [--until TIME]
                       [--from-position N] [--to-position N] [--limit N] [--follow]
    videoimport history PROJECT SYSTEM_NAME EXTERNAL_ID

``events`` prints JSON Lines in position order, a page at a time (bounded memory
on any log); ``--follow`` then keeps printing what is appended, woken by the
appends' NOTIFY and polling every second in case one is missed, until Ctrl-C.
``history`` prints one video's timeline as a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from typing import BinaryIO

import asyncpg
from videoimport_eventlog.logged import LoggedEvent, logged_event
from videoimport_eventlog.store import NOTIFY_CHANNEL

from videoimport_projects.event_filters import (
    EventFilter,
    count_arg,
    is_exhausted,
    page_query,
    parse_timestamp,
    position_arg,
)
from videoimport_projects.event_views import (
    TIMELINE_HEADERS,
    json_line,
    render_table,
    timeline,
)

COMMANDS = ("events", "history")
PAGE = 500
POLL_SECONDS = 1.0
_HEAD = "SELECT coalesce(max(position), 0) FROM events"


class LogReadFailed(Exception):
    """A request the operator can correct, or nothing to show; printed as one line."""


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    events = commands.add_parser(
        "events", parents=[common], help="print logged events as JSON Lines, in log order"
    )
    events.add_argument("--job", help="a job's events (its correlation id)")
    events.add_argument("--project")
    events.add_argument("--system-name", help="with --external-id: one video's events")
    events.add_argument("--external-id", help="with --system-name: one video's events")
    events.add_argument(
        "--type", dest="types", action="append", default=[], help="an event type (repeatable)"
    )
    events.add_argument("--since", type=parse_timestamp, help="occurred at or after (ISO 8601)")
    events.add_argument("--until", type=parse_timestamp, help="occurred before (ISO 8601)")
    events.add_argument("--from-position", type=position_arg, help="first position to read")
    events.add_argument("--to-position", type=position_arg, help="last position to read")
    events.add_argument("--limit", type=count_arg, help="stop after this many events")
    events.add_argument(
        "--follow", action="store_true", help="then print new events as they come (Ctrl-C ends)"
    )
    history = commands.add_parser(
        "history", parents=[common], help="one video's timeline: requests and results"
    )
    history.add_argument("project")
    history.add_argument("system_name")
    history.add_argument("external_id")


async def run(conn: asyncpg.Connection, args: argparse.Namespace) -> str:
    if args.command == "history":
        return await video_history(conn, args.project, args.system_name, args.external_id)
    try:
        where = EventFilter(
            job=args.job,
            project=args.project,
            system_name=args.system_name,
            external_id=args.external_id,
            types=tuple(args.types),
            since=args.since,
            until=args.until,
            from_position=args.from_position,
            to_position=args.to_position,
        )
    except ValueError as exc:
        raise LogReadFailed(f"{exc}: give --system-name and --external-id together") from None
    wakeup = Wakeup()
    with _stopped_by_signals(wakeup):
        try:
            await print_events(
                conn, where, sys.stdout.buffer, limit=args.limit, follow=args.follow, wakeup=wakeup
            )
        except BrokenPipeError:
            # The reader went away (``| head``): not an error. Point stdout at
            # /dev/null so the interpreter's last flush does not complain either.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return ""  # printed already


class Wakeup:
    """What ``--follow`` waits for between reads: an append's NOTIFY, the poll
    interval, or ``stop`` (Ctrl-C), whichever comes first."""

    def __init__(self, poll_interval: float = POLL_SECONDS) -> None:
        self.stopped = False
        self._event = asyncio.Event()
        self._poll_interval = poll_interval

    def notified(self, *_: object) -> None:
        self._event.set()

    def stop(self) -> None:
        self.stopped = True
        self._event.set()

    async def wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), self._poll_interval)
        self._event.clear()


@contextlib.contextmanager
def _stopped_by_signals(wakeup: Wakeup) -> Iterator[None]:
    """Ctrl-C and SIGTERM end ``--follow`` cleanly (exit 0) instead of a traceback."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, wakeup.stop)
    try:
        yield
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


async def read_page(
    conn: asyncpg.Connection, where: EventFilter, after: int, limit: int
) -> list[LoggedEvent]:
    sql, args = page_query(where, after, limit)
    return [logged_event(r) for r in await conn.fetch(sql, *args)]


async def print_events(
    conn: asyncpg.Connection,
    where: EventFilter,
    out: BinaryIO,
    *,
    limit: int | None = None,
    follow: bool = False,
    wakeup: Wakeup | None = None,
) -> int:
    """Write matching events as JSON Lines; returns how many were written."""
    wakeup = wakeup or Wakeup()
    if follow:  # before the first read, so nothing appended meanwhile goes unnoticed
        await conn.add_listener(NOTIFY_CHANNEL, wakeup.notified)
    written, after = 0, 0
    while not wakeup.stopped:
        # Positions become visible in order (see store): once a page comes back
        # short, everything up to this head was seen, matching or not.
        head: int = await conn.fetchval(_HEAD) if follow else 0
        want = PAGE if limit is None else min(PAGE, limit - written)
        page = await read_page(conn, where, after, want)
        out.write(b"".join(json_line(event) + b"\n" for event in page))
        out.flush()
        written += len(page)
        after = page[-1].position if page else after
        if limit is not None and written >= limit:
            break
        if len(page) == want:
            continue
        after = max(after, head)
        if not follow or is_exhausted(where, after):
            break
        await wakeup.wait()
    if follow:
        await conn.remove_listener(NOTIFY_CHANNEL, wakeup.notified)
    return written


async def video_history(
    conn: asyncpg.Connection, project: str, system_name: str, external_id: str
) -> str:
    where = EventFilter(project=project, system_name=system_name, external_id=external_id)
    events: list[LoggedEvent] = []
    while page := await read_page(conn, where, events[-1].position if events else 0, PAGE):
        events += page
    if not events:
        raise LogReadFailed(f"no events for video {system_name}/{external_id} in project {project}")
    rows = timeline(events)
    title = f"video {system_name}/{external_id} in project {project}: {len(rows)} events"
    return title + "\n\n" + render_table(TIMELINE_HEADERS, [r.cells() for r in rows])
