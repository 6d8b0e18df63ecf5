"""The API client commands: ``videoimport import|status|jobs``. They talk to the
import API over HTTP with a project's token and need no database.

    videoimport import FILE --system NAME [--webhook URL] [--context JSON]
        [--batch-size N] [--run LABEL] [--watch] [--json]
    videoimport status JOB [--json]
    videoimport jobs [--state S] [--system NAME] [--limit N] [--all] [--json]

Every command takes ``--api URL`` (default ``VIDEOIMPORT_API_URL``, else
``http://127.0.0.1:8000``), ``--token`` (default ``VIDEOIMPORT_TOKEN``) and
``--api-version``. Exit codes are in ``report``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from videoimport_projects.client.batches import MAX_BATCH, BatchFileError

if TYPE_CHECKING:
    from videoimport_projects.client.api import ImportApi

COMMANDS = ("import", "status", "jobs")
DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_API_VERSION = "2025-03"
JOB_STATES = ("started", "success", "failed")
MAX_LISTING_PAGE = 100
INTERRUPTED = 130


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}, not {value}")
        return value

    return parse


def add_commands(
    parsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument(
        "--api", help=f"API base URL (default: VIDEOIMPORT_API_URL, else {DEFAULT_API_URL})"
    )
    client.add_argument("--token", help="API token (default: VIDEOIMPORT_TOKEN)")
    client.add_argument("--api-version", default=DEFAULT_API_VERSION)
    client.add_argument("--json", action="store_true", help="print machine-readable JSON")

    upload = parsers.add_parser(
        "import",
        parents=[client],
        help="import the videos of a JSON or CSV file through the API",
        description=(
            "Sends FILE (.json: the request body or a list of videos; .csv: url,id,fileName"
            " and metadata.<key>[:json] columns; -: JSON on stdin) in jobs of at most"
            " --batch-size videos. Running the same command again does not import twice."
        ),
    )
    upload.add_argument("file", metavar="FILE")
    upload.add_argument("--system", help="systemName (overrides the file's)")
    upload.add_argument("--webhook", help="webhook URL (overrides the file's)")
    upload.add_argument("--context", help="context as a JSON object (overrides the file's)")
    upload.add_argument(
        "--batch-size", type=_bounded(1, MAX_BATCH), default=MAX_BATCH, help="videos per job"
    )
    upload.add_argument(
        "--run",
        default="",
        help="a label mixed into the idempotency keys: a new one imports an unchanged file again",
    )
    upload.add_argument("--watch", action="store_true", help="follow the jobs until finished")

    status = parsers.add_parser("status", parents=[client], help="one job's state and failures")
    status.add_argument("job", metavar="JOB")

    jobs = parsers.add_parser("jobs", parents=[client], help="the project's jobs, newest first")
    jobs.add_argument("--state", choices=JOB_STATES)
    jobs.add_argument("--system", help="only jobs of this systemName")
    jobs.add_argument(
        "--limit", type=_bounded(1, MAX_LISTING_PAGE), default=20, help="jobs per page"
    )
    jobs.add_argument("--all", action="store_true", help="follow every page")


def _api(args: argparse.Namespace) -> ImportApi:
    from videoimport_projects.client import commands
    from videoimport_projects.client.api import ImportApi

    base_url = args.api or os.environ.get("VIDEOIMPORT_API_URL") or DEFAULT_API_URL
    if not base_url.startswith(("http://", "https://")):
        raise commands.UsageError(f"--api must be an http:// or https:// URL, not {base_url!r}")
    token = args.token or os.environ.get("VIDEOIMPORT_TOKEN")
    if not token:
        raise commands.UsageError("no token: pass --token or set VIDEOIMPORT_TOKEN")
    return ImportApi(base_url, token, args.api_version)


def run(args: argparse.Namespace) -> int:
    """Runs one client command; every failure is a line on stderr and exit code 2."""
    # Imported here, not at the top: every command builds the parser, and only these
    # three need the HTTP client and the terminal rendering, slow to import.
    from rich.console import Console

    from videoimport_projects.client import commands
    from videoimport_projects.client.api import ApiFailure
    from videoimport_projects.client.report import EXIT_USAGE

    # No markup: job ids, external ids and reasons are printed exactly as they are.
    out = Console(highlight=False, markup=False)
    err = Console(stderr=True, highlight=False, markup=False)
    try:
        api = _api(args)
        try:
            if args.command == "import":
                return commands.import_file(api, args, out, err)
            if args.command == "status":
                return commands.show_status(api, args, out)
            return commands.list_jobs(api, args, out)
        finally:
            api.close()
    except (commands.UsageError, ApiFailure, BatchFileError) as exc:
        hint = " (check the token)" if getattr(exc, "status", None) in (401, 403) else ""
        print(f"videoimport: error: {exc}{hint}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("videoimport: interrupted; accepted jobs keep running", file=sys.stderr)
        return INTERRUPTED
