"""``videoimport projections rebuild [--check]``: rebuild the status read model from
the log, or compare a rebuild with the live tables.

The projector package holds the projection (``python -m videoimport_projector
rebuild``); this library does not depend on services, so the command runs that as a
child process with the same database and environment, passes its report through
and turns its exit status into the CLI's.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
from typing import Any

PROJECTOR = "videoimport_projector"
DIFFERENT = 1
"""The projector's exit status when ``--check`` found differences (2: it failed)."""


class ProjectionError(Exception):
    """The rebuild could not run, failed, or (``--check``) found differences."""


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    projections = commands.add_parser("projections", help="rebuild or check the status read model")
    actions = projections.add_subparsers(dest="action", required=True)
    rebuild = actions.add_parser(
        "rebuild",
        parents=[common],
        help=(
            "replay the log into shadow tables and swap them in at once (readers never see"
            " a partial status; a running projector carries on)"
        ),
    )
    rebuild.add_argument(
        "--check",
        action="store_true",
        help="compare the replay with the live tables, print the differences, change nothing",
    )


async def run(args: argparse.Namespace, database_url: str) -> str:
    """Run the projector's rebuild; returns its report (raises if it failed or differs)."""
    if importlib.util.find_spec(PROJECTOR) is None:
        raise ProjectionError(f"the projector ({PROJECTOR}) is not installed in this environment")
    command = ["-m", PROJECTOR, "rebuild", *(["--check"] if args.check else [])]
    # Its log goes to our stderr as it happens; its report comes back as our output.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        env={**os.environ, "VIDEOIMPORT_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    report = out.decode().rstrip("\n")
    if process.returncode == 0:
        return report
    if args.check and process.returncode == DIFFERENT:
        print(report, flush=True)
        raise ProjectionError("the rebuilt status read model differs from the live one")
    raise ProjectionError(f"the rebuild failed (exit status {process.returncode}); see its log")
