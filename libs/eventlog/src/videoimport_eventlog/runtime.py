"""Process plumbing shared by every service: logging, metrics, signals, pools."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

import asyncpg
import structlog


def configure_logging(json: bool | None = None, level: str = "INFO") -> None:
    """JSON lines when not on a terminal (production), readable lines otherwise."""
    use_json = (not sys.stderr.isatty()) if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def serve_metrics(port: int) -> None:
    """Prometheus text on ``http://0.0.0.0:<port>/metrics``; 0 switches it off."""
    if port:
        from prometheus_client import start_http_server

        start_http_server(port)


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)``; SIGTERM/SIGINT set ``stop`` so it can finish cleanly."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


async def skip_pool_reset(conn: asyncpg.Connection) -> None:
    """A pool's ``reset=``: return a connection to the pool as it is.

    asyncpg's default reset (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL``) costs a round trip per release and undoes session state that a
    pool user of ours never creates: every advisory lock taken on a pooled
    connection is transaction-scoped (released at commit), nothing runs a plain
    ``SET``, ``LISTEN`` or ``DECLARE … WITH HOLD`` on one, and the connections
    that do hold session state (the relay's leader lock, ``LogWakeup``'s LISTEN)
    are dedicated ones. An open transaction is still rolled back and listener
    callbacks dropped: asyncpg does that before calling this, whatever ``reset`` is.
    A pool user that starts keeping session state must not use this.
    """
