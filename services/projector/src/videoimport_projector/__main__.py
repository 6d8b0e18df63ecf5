"""``python -m videoimport_projector [run|rebuild]``.

``run`` (the default) follows the log until SIGTERM; ``rebuild`` empties the
status read model, replays the whole log into it and exits.
"""

from __future__ import annotations

import asyncio
import sys

from videoimport_eventlog import runtime

from videoimport_projector.service import Projector
from videoimport_projector.settings import load

USAGE = "usage: python -m videoimport_projector [run|rebuild]"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "run"
    if command not in ("run", "rebuild") or len(args) > 1:
        raise SystemExit(USAGE)
    settings = load()
    runtime.configure_logging(settings.log_json, settings.log_level)
    projector = Projector(settings)
    if command == "rebuild":
        asyncio.run(projector.rebuild())
        return
    runtime.serve_metrics(settings.metrics_port)
    runtime.run_until_signalled(projector.run)


if __name__ == "__main__":
    main()
