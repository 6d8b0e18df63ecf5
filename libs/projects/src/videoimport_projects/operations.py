"""Operator commands on the running system: dead letters and republishing.

    videoimport deadletters list [--state parked|retry|resolved] [--limit N]
    videoimport deadletters retry ID
    videoimport republish --from POSITION

``republish`` moves the relay's position back, so it publishes the log again
from ``POSITION`` (never forward: that would skip events). Consumers dedupe by
event id, so what they already handled changes nothing.
"""

from __future__ import annotations

import argparse

import asyncpg
from videoimport_eventlog import tracking

RELAY = "relay"


class OperationError(Exception):
    """A request the operator can correct; printed as one line."""


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    letters = commands.add_parser("deadletters", help="see and replay what consumers gave up on")
    actions = letters.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[common], help="list dead letters, oldest first")
    listing.add_argument("--state", choices=("parked", "retry", "resolved"))
    listing.add_argument("--limit", type=int, default=100)
    retry = actions.add_parser(
        "retry", parents=[common], help="let the owning consumer handle a letter again"
    )
    retry.add_argument("id", type=int)
    republish = commands.add_parser(
        "republish", parents=[common], help="publish the event log to Kafka again from a position"
    )
    republish.add_argument("--from", dest="position", type=int, required=True)


async def run(conn: asyncpg.Connection, args: argparse.Namespace) -> str:
    if args.command == "republish":
        return await republish_from(conn, args.position)
    # Imported here, not at the top: the CLI imports this module for every command,
    # and the dead letters bring logging and metrics, slow to import.
    from videoimport_eventlog import deadletters

    if args.action == "retry":
        letter = await deadletters.request_retry(conn, args.id)
        if letter is None:
            raise OperationError(f"no parked dead letter {args.id} with a logged event")
        return f"dead letter {letter.id} queued for {letter.consumer} to retry"
    letters = await deadletters.list_letters(conn, state=args.state, limit=args.limit)
    lines = ["id\tconsumer\tstate\tposition\tevent_id\tattempts\tcreated_at\terror"]
    lines += [
        "\t".join(
            str(v)
            for v in (
                letter.id,
                letter.consumer,
                letter.state,
                letter.position if letter.position is not None else "-",
                letter.event_id or "-",
                letter.attempts,
                letter.created_at.isoformat(timespec="seconds"),
                letter.error.replace("\n", " "),
            )
        )
        for letter in letters
    ]
    return "\n".join(lines)


async def republish_from(conn: asyncpg.Connection, position: int) -> str:
    if position < 1:
        raise OperationError("--from must be a log position of 1 or more")
    async with conn.transaction():
        current = await tracking.lock_position(conn, RELAY)
        target = min(current, position - 1)
        await tracking.save_position(conn, RELAY, target)
    return f"the relay publishes again from position {target + 1} (it was at {current})"
