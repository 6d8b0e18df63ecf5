"""``python -m videoimport_projector [run | rebuild [--check]]``.

``run`` (the default) follows the log until SIGTERM. ``rebuild`` replays the whole
log into shadow tables and swaps them in at once (readers never see a partial
status; a running projector goes on from there), prints what it wrote and exits.
``rebuild --check`` compares that replay with the live tables instead and prints
the differences; it changes nothing.

Exit status: 0 done (``--check``: no difference), 1 ``--check`` found differences,
2 the rebuild failed (logged).
"""

from __future__ import annotations

import asyncio
import sys

import structlog
from videoimport_eventlog import runtime

from videoimport_projector import differences
from videoimport_projector.rebuild import Outcome
from videoimport_projector.service import Projector
from videoimport_projector.settings import load

USAGE = "usage: python -m videoimport_projector [run | rebuild [--check]]"
DIFFERENT = 1
FAILED = 2
_COMMANDS = (["run"], ["rebuild"], ["rebuild", "--check"])

log = structlog.get_logger(__name__)


def report(outcome: Outcome, check: bool) -> str:
    if check:
        return differences.render(outcome.differences, outcome.position)
    written = ", ".join(f"{table} {rows}" for table, rows in outcome.written.items())
    return (
        f"rebuilt the status read model from {outcome.events} events"
        f" up to log position {outcome.position}; rows written: {written}"
    )


def main(argv: list[str] | None = None) -> None:
    args = (sys.argv[1:] if argv is None else argv) or ["run"]
    if args not in _COMMANDS:
        raise SystemExit(USAGE)
    settings = load()
    runtime.configure_logging(settings.log_json, settings.log_level)
    projector = Projector(settings)
    if args[0] == "rebuild":
        check = "--check" in args
        try:
            outcome = asyncio.run(projector.rebuild(check=check))
        except Exception:
            log.exception("rebuild failed; the live read model is unchanged")
            raise SystemExit(FAILED) from None
        print(report(outcome, check), flush=True)
        if check and outcome.differs:
            raise SystemExit(DIFFERENT)
        return
    runtime.serve_metrics(settings.metrics_port)
    runtime.run_until_signalled(projector.run)


if __name__ == "__main__":
    main()
