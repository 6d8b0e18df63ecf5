"""Operator commands for what a project's clients hold: API tokens and webhook secrets.

    videoimport token create --project NAME [--scope S ...] [--expires-in-days N]
    videoimport token list --project NAME
    videoimport token revoke ID
    videoimport webhook-secret show --project NAME
    videoimport webhook-secret rotate --project NAME [--overlap-hours H]

``token create``, ``webhook-secret show`` and ``rotate`` print the token or the
secret alone, so scripts can capture it. ``token list`` never shows a token: a
token is named by its id (the first hex digits of its sha256). A revoked or
expired token is refused by the API on its next request. ``rotate`` keeps the
previous secret valid for the overlap (24 h by default, 0 ends it at once), and
the notifier signs with both meanwhile.
"""

from __future__ import annotations

import argparse
import math
from datetime import datetime, timedelta

import asyncpg

from videoimport_projects import webhook_secrets
from videoimport_projects.registry import (
    WRITE_SCOPE,
    TokenInfo,
    create_token,
    list_tokens,
    revoke_token,
)

COMMANDS = ("token", "webhook-secret")
MAX_EXPIRY_DAYS = 3650
MAX_OVERLAP_HOURS = 24 * 90


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if not 1 <= days <= MAX_EXPIRY_DAYS:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_EXPIRY_DAYS} days")
    return days


def _hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {text!r}") from None
    if not (math.isfinite(hours) and 0 <= hours <= MAX_OVERLAP_HOURS):
        raise argparse.ArgumentTypeError(f"must be 0 to {MAX_OVERLAP_HOURS} hours")
    return hours


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    token = commands.add_parser("token", help="issue, list and revoke API tokens")
    token_actions = token.add_subparsers(dest="action", required=True)
    create = token_actions.add_parser(
        "create", parents=[common], help="issue a token; prints only the token"
    )
    create.add_argument("--project", required=True)
    create.add_argument(
        "--scope",
        action="append",
        help=f"scope to grant (repeatable; default {WRITE_SCOPE})",
    )
    create.add_argument(
        "--expires-in-days",
        type=_days,
        metavar="N",
        help="the token stops working N days from now (default: never)",
    )
    listing = token_actions.add_parser(
        "list", parents=[common], help="a project's tokens: id, scopes, dates (never the token)"
    )
    listing.add_argument("--project", required=True)
    revoke = token_actions.add_parser(
        "revoke", parents=[common], help="revoke a token at once, by its id from `token list`"
    )
    revoke.add_argument("id")

    secret = commands.add_parser("webhook-secret", help="show or rotate a project's webhook secret")
    secret_actions = secret.add_subparsers(dest="action", required=True)
    show = secret_actions.add_parser(
        "show", parents=[common], help="print the project's current secret alone"
    )
    show.add_argument("--project", required=True)
    rotate = secret_actions.add_parser(
        "rotate",
        parents=[common],
        help="create a new secret and print it alone; the old one stays valid for the overlap",
    )
    rotate.add_argument("--project", required=True)
    rotate.add_argument(
        "--overlap-hours",
        type=_hours,
        default=webhook_secrets.DEFAULT_OVERLAP.total_seconds() / 3600,
        metavar="H",
        help="how long the previous secret stays valid (default 24; 0 ends it at once)",
    )


async def run(conn: asyncpg.Connection, args: argparse.Namespace) -> str:
    """Raises ``UnknownProject`` / ``UnknownToken`` for the CLI to report."""
    if args.command == "webhook-secret":
        if args.action == "show":
            return (await webhook_secrets.ensure_secret(conn, args.project)).secret
        overlap = timedelta(hours=args.overlap_hours)
        return (await webhook_secrets.rotate_secret(conn, args.project, overlap)).secret
    if args.action == "create":
        days = args.expires_in_days
        expires_in = None if days is None else timedelta(days=days)
        return await create_token(conn, args.project, args.scope or [WRITE_SCOPE], expires_in)
    if args.action == "list":
        return _token_table(await list_tokens(conn, args.project))
    info, now = await revoke_token(conn, args.id)
    if now:
        return f"revoked token {info.id} of project {info.project}"
    since = _when(info.revoked_at)
    return f"token {info.id} of project {info.project} was already revoked at {since}"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="seconds")


def _token_table(tokens: list[TokenInfo]) -> str:
    lines = ["id\tscopes\tcreated_at\texpires_at\trevoked_at"]
    lines += [
        "\t".join(
            (
                info.id,
                ",".join(info.scopes),
                _when(info.created_at),
                _when(info.expires_at),
                _when(info.revoked_at),
            )
        )
        for info in tokens
    ]
    return "\n".join(lines)
