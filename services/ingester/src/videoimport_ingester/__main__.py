"""``python -m videoimport_ingester``: download requested videos into the media bucket."""

from __future__ import annotations

import asyncio

from videoimport_eventlog import runtime

from videoimport_ingester import service
from videoimport_ingester.settings import load


def main() -> None:
    settings = load()
    runtime.configure_logging(json=settings.log_json, level=settings.log_level)
    runtime.serve_metrics(settings.metrics_port)

    async def serve(stop: asyncio.Event) -> None:
        await service.run(settings, stop)

    runtime.run_until_signalled(serve)


if __name__ == "__main__":
    main()
