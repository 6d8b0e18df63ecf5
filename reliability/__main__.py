"""``python -m reliability``: break a running deployment in every way we know, check it healed.

Starts its own local stack and every service in a temporary directory, runs the
scenarios one after another under a steady workload, and after each one waits
until every acknowledged job has finished and its webhook arrived, then checks
the invariants from outside (``invariants.py``). Prints one line of figures per
scenario, writes the table in ``docs/reliability.md`` (``--write-docs``) and
exits non-zero when anything was lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from .runner import DOCS, run, write_docs
from .scenarios import SCENARIOS, Plan


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), help="repeatable")
    parser.add_argument("--kills", type=int, default=20, help="kills per service (default 20)")
    parser.add_argument("--restarts", type=int, default=3, help="restarts per server (default 3)")
    parser.add_argument(
        "--interval", type=float, default=1.5, help="seconds between batches (default 1.5)"
    )
    parser.add_argument("--batch", type=int, default=10, help="videos per batch")
    parser.add_argument("--settle", type=float, default=600.0, help="seconds to heal, at most")
    parser.add_argument("--write-docs", action="store_true", help=f"update the table in {DOCS}")
    parser.add_argument("--keep", action="store_true", help="keep the stage's directory (logs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    plan = Plan(kills=args.kills, server_restarts=args.restarts, interval=args.interval)
    names = args.only or list(SCENARIOS)
    outcomes = asyncio.run(run(names, plan, batch=args.batch, settle=args.settle, keep=args.keep))
    print(f"{len(outcomes)} scenarios in {time.monotonic() - began:.0f} s", flush=True)
    if args.write_docs:
        write_docs(outcomes)
    return 0 if outcomes and all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
