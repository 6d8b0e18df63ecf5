"""``python -m videoimport_api``: serve the HTTP API until SIGTERM."""

from __future__ import annotations

import asyncio

import structlog
from videoimport_eventlog.runtime import configure_logging, run_until_signalled

from videoimport_api.bootstrap import serve
from videoimport_api.settings import load


def main() -> None:
    settings = load()
    configure_logging(settings.log_json)
    structlog.get_logger("videoimport_api").info(
        "api starting", host=settings.host, port=settings.port
    )

    async def run(stop: asyncio.Event) -> None:
        await serve(settings, stop)

    run_until_signalled(run)


if __name__ == "__main__":
    main()
