"""``videoimport``: the operator's command line for projects, API tokens, webhook
secrets, dead letters and republishing.

    videoimport project create NAME [--config FILE]
    videoimport project set-config NAME --config FILE
    videoimport token create|list|revoke, videoimport webhook-secret show|rotate
    (see ``credentials``)
    videoimport deadletters list|retry ID, videoimport republish --from POSITION
    (see ``operations``)
    videoimport webhook redeliver JOB (see ``redelivery``)
    videoimport projections rebuild [--check] (see ``projections``)
    videoimport audit verify (see ``audit``)
    videoimport import FILE, videoimport status JOB, videoimport jobs: the API client,
    no database (see ``client``)
    videoimport events [filters] [--follow], videoimport history PROJECT SYSTEM ID
    (see ``log_reader``)

The database is ``--database-url``, else ``VIDEOIMPORT_DATABASE_URL``, else the
PostgreSQL of the running local stack (``<data dir>/stack.json``, data dir from
``VIDEOIMPORT_DATA_DIR`` or the nearest ``.data`` above the current directory).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import msgspec
from videoimport_eventlog import schema

from videoimport_projects import (
    audit,
    client,
    credentials,
    log_reader,
    operations,
    projections,
    redelivery,
)
from videoimport_projects.config import ProjectConfig, parse_config
from videoimport_projects.registry import (
    ProjectExists,
    UnknownProject,
    UnknownToken,
    create_project,
    set_config,
)

STACK_FILE = "stack.json"
PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class CliError(Exception):
    """A problem the operator can fix; printed as one line."""


class _StackInfo(msgspec.Struct):
    postgres_dsn: str


def _data_dir() -> Path | None:
    configured = os.environ.get("VIDEOIMPORT_DATA_DIR")
    if configured:
        return Path(configured)
    here = Path.cwd().resolve()
    for directory in (here, *here.parents):
        if (directory / ".data" / STACK_FILE).is_file():
            return directory / ".data"
    return None


def database_url(explicit: str | None) -> str:
    if explicit:
        return explicit
    from_env = os.environ.get("VIDEOIMPORT_DATABASE_URL")
    if from_env:
        return from_env
    data_dir = _data_dir()
    stack_file = data_dir / STACK_FILE if data_dir else None
    if stack_file is None or not stack_file.is_file():
        raise CliError(
            "no database: pass --database-url, set VIDEOIMPORT_DATABASE_URL,"
            " or start the local stack (no .data/stack.json found)"
        )
    try:
        return msgspec.json.decode(stack_file.read_bytes(), type=_StackInfo).postgres_dsn
    except (OSError, msgspec.DecodeError) as exc:
        raise CliError(f"cannot read {stack_file}: {exc}") from exc


def read_config(path: str | None) -> ProjectConfig:
    if path is None:
        return ProjectConfig()
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        return parse_config(raw)
    except (ValueError, msgspec.DecodeError) as exc:
        raise CliError(f"invalid config {path}: {exc}") from exc


def check_project_name(name: str) -> str:
    # Project names end up in object keys and URLs: keep them to a safe alphabet.
    if not PROJECT_NAME.fullmatch(name):
        raise CliError(f"invalid project name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


async def _run(args: argparse.Namespace) -> str:
    if args.command == "project":
        check_project_name(args.name)
    # Read the config before connecting: a typo should not need a database to be reported.
    config = read_config(args.config) if hasattr(args, "config") else None
    try:
        conn = await asyncpg.connect(database_url(args.database_url))
    except (OSError, asyncpg.PostgresError) as exc:
        raise CliError(f"cannot connect to the database: {exc}") from exc
    try:
        await schema.migrate(conn)
        if args.command == "projections":
            # The projector rebuilds in a process of its own, on the same database.
            return await projections.run(args, database_url(args.database_url))
        if args.command in ("deadletters", "republish"):
            return await operations.run(conn, args)
        if args.command == "audit":
            return await audit.run(conn, args)
        if args.command in log_reader.COMMANDS:
            return await log_reader.run(conn, args)
        if args.command == "webhook":
            return await redelivery.run(conn, args)
        if args.command in credentials.COMMANDS:
            return await credentials.run(conn, args)
        if args.command == "project" and args.action == "create":
            assert config is not None
            await create_project(conn, args.name, config)
            return f"created project {args.name}"
        if args.command == "project" and args.action == "set-config":
            assert config is not None
            await set_config(conn, args.name, config)
            return f"updated the config of project {args.name}"
        raise CliError(f"unknown command {args.command}")
    except ProjectExists as exc:
        raise CliError(f"project {exc} already exists") from exc
    except UnknownProject as exc:
        raise CliError(f"unknown project {exc}") from exc
    except UnknownToken as exc:
        raise CliError(str(exc)) from exc
    except (operations.OperationError, redelivery.RedeliveryRefused) as exc:
        raise CliError(str(exc)) from exc
    except (audit.AuditFailed, log_reader.LogReadFailed) as exc:
        raise CliError(str(exc)) from exc
    except projections.ProjectionError as exc:
        raise CliError(str(exc)) from exc
    finally:
        await conn.close()


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database-url",
        help="PostgreSQL DSN (default: VIDEOIMPORT_DATABASE_URL, else the local stack's)",
    )
    parser = argparse.ArgumentParser(
        prog="videoimport",
        description=(
            "Manage the video import: projects, tokens, webhook secrets and redelivery,"
            " dead letters, republishing; import files and follow jobs through the API."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)

    project = commands.add_parser("project", help="create or configure a project")
    project_actions = project.add_subparsers(dest="action", required=True)
    create = project_actions.add_parser("create", parents=[common], help="create a project")
    create.add_argument("name")
    create.add_argument("--config", help="JSON file with the metadata config")
    configure = project_actions.add_parser(
        "set-config", parents=[common], help="replace a project's metadata config"
    )
    configure.add_argument("name")
    configure.add_argument("--config", required=True, help="JSON file with the metadata config")

    credentials.add_commands(commands, common)
    operations.add_commands(commands, common)
    redelivery.add_commands(commands, common)
    audit.add_commands(commands, common)
    log_reader.add_commands(commands, common)
    projections.add_commands(commands, common)
    client.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in client.COMMANDS:
        return client.run(args)
    try:
        output = asyncio.run(_run(args))
    except CliError as exc:
        print(f"videoimport: error: {exc}", file=sys.stderr)
        return 1
    # For ``token create`` and ``webhook-secret show|rotate`` the output is the token
    # or the secret alone, so scripts can capture it.
    if output:  # commands that stream (``events``) have printed already
        print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
