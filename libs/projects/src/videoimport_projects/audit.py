"""``videoimport audit verify``: check that the event log is complete and unchanged.

    videoimport audit verify [--batch N] [--anchor POSITION:HASH]

Walks the hash chain from position 1 to the head the log had when the command
started, ``N`` rows at a time (bounded memory on any log), with a progress bar
when stderr is a terminal. Prints ``log verified: N events, chain intact (head
<hex>)``; note the head hash somewhere else: a later run that still reaches it
proves nothing up to there changed since (the chain has no secret, so whoever
can rewrite the table could re-seal it; the noted head is what they cannot
change); ``--anchor`` is that check. Fails naming the first position that is
missing (a gap) or no longer hashes as sealed (altered or reordered).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import TextIO

import asyncpg
from videoimport_eventlog import audit_trail, store
from videoimport_eventlog.chain import ChainVerifier

from videoimport_projects.event_filters import count_arg

PROGRESS_EVERY = 0.1
"""Seconds between redraws of the progress bar."""


class AuditFailed(Exception):
    """The log did not verify; the message names where and why."""


@dataclass(frozen=True)
class Anchor:
    """A head noted earlier: the chain must still pass through it."""

    position: int
    hash: bytes


def anchor_arg(text: str) -> Anchor:
    position, _, digest = text.partition(":")
    try:
        anchor = Anchor(int(position), bytes.fromhex(digest))
    except ValueError:
        anchor = Anchor(0, b"")
    if anchor.position < 1 or len(anchor.hash) != 32:
        raise argparse.ArgumentTypeError(
            f"not POSITION:HASH (a position and 64 hex digits, as verify prints): {text!r}"
        )
    return anchor


def progress_bar(done: int, total: int, width: int = 30) -> str:
    """``verifying [#######-------]  1,234/5,678 events  21%``."""
    share = 1.0 if total <= 0 else min(done / total, 1.0)
    filled = int(share * width)
    return (
        f"verifying [{'#' * filled}{'-' * (width - filled)}]"
        f"  {done:,}/{total:,} events  {share:.0%}"
    )


class _ProgressBar:
    """Redraws one line of a terminal in place, at most every ``PROGRESS_EVERY`` s."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self._total = total
        self._stream = stream
        self._drawn_at = 0.0
        self._width = 0

    def __call__(self, verifier: ChainVerifier) -> None:
        now = time.monotonic()
        if now - self._drawn_at < PROGRESS_EVERY and verifier.checked < self._total:
            return
        self._drawn_at = now
        line = progress_bar(verifier.checked, self._total)
        self._width = max(self._width, len(line))
        self._stream.write("\r" + line)
        self._stream.flush()

    def clear(self) -> None:
        if self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    audit = commands.add_parser("audit", help="check the event log's hash chain")
    actions = audit.add_subparsers(dest="action", required=True)
    verify = actions.add_parser(
        "verify",
        parents=[common],
        help="walk the whole log and check that nothing was altered, removed or reordered",
    )
    verify.add_argument(
        "--batch", type=count_arg, default=1000, help="rows read per query (default: 1000)"
    )
    verify.add_argument(
        "--anchor",
        type=anchor_arg,
        metavar="POSITION:HASH",
        help="a head noted from an earlier run: fail unless the log still passes through it",
    )


async def run(conn: asyncpg.Connection, args: argparse.Namespace) -> str:
    terminal = sys.stderr if sys.stderr.isatty() else None
    return await verify(conn, batch=args.batch, terminal=terminal, anchor=args.anchor)


async def verify(
    conn: asyncpg.Connection, *, batch: int, terminal: TextIO | None, anchor: Anchor | None = None
) -> str:
    # Verify up to the head as it is now: events appended meanwhile are for the next run.
    head: int = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
    bar = _ProgressBar(head, terminal) if terminal is not None else None
    try:
        verified = await audit_trail.check_chain(conn, batch=batch, up_to=head, progress=bar)
    except store.ChainBroken as broken:
        raise AuditFailed(
            f"log NOT verified: position {broken.position}: {broken.problem}"
            f" ({broken.position - 1} events before it verified)"
        ) from None
    finally:
        if bar is not None:
            bar.clear()
    verdict = f"log verified: {verified.checked} events, chain intact (head {verified.head.hex()})"
    if anchor is None:
        return verdict
    if anchor.position > verified.checked:
        raise AuditFailed(
            f"log NOT verified: it ends at position {verified.checked}, before the anchor at"
            f" position {anchor.position} (events were removed from its end)"
        )
    # The chain verified, so the stored hash is the recomputed one.
    sealed = await conn.fetchval("SELECT hash FROM events WHERE position = $1", anchor.position)
    if bytes(sealed) != anchor.hash:
        raise AuditFailed(
            f"log NOT verified: position {anchor.position}: not the anchor's hash (the log up to"
            " there was rewritten and sealed again)"
        )
    return f"{verdict}; passes through the anchor at position {anchor.position}"
