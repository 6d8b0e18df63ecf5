"""``--watch``: poll every job's status until all finished, showing progress.

On a terminal each job gets a live progress bar (done/total, failures); anywhere
else (a pipe, a CI log) a plain line is printed whenever a job's counts change,
so the output holds no control codes. The status is asked for with ``limit=1``:
a running job then reports its counts without listing its videos.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import IO, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from videoimport_projects.client.api import ImportApi
from videoimport_projects.client.report import JobOutcome, outcome_of, progress_line

FIRST_INTERVAL = 1.0
MAX_INTERVAL = 5.0
"""A quiet round makes the next wait 1.5 times longer (up to this); a change resets it."""


class Board(Protocol):
    def update(self, outcome: JobOutcome) -> None: ...

    def close(self) -> None: ...


class LiveBoard:
    """A rich progress bar per job, redrawn in place."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("job {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[state]}"),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}
        self.progress.start()

    def update(self, outcome: JobOutcome) -> None:
        c = outcome.counts
        state = outcome.state if outcome.finished else ""
        task = self.tasks.get(outcome.job_id)
        if task is None:
            task = self.progress.add_task(
                outcome.job_id, total=c.total or None, failed=c.failed, state=state
            )
            self.tasks[outcome.job_id] = task
        self.progress.update(
            task, completed=c.done, total=c.total or None, failed=c.failed, state=state
        )

    def close(self) -> None:
        self.progress.stop()


class PlainBoard:
    """A line per change, for output that is not a terminal."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.last: dict[str, str] = {}

    def update(self, outcome: JobOutcome) -> None:
        line = progress_line(outcome)
        if self.last.get(outcome.job_id) != line:
            self.last[outcome.job_id] = line
            print(line, file=self.out, flush=True)

    def close(self) -> None:
        pass


def board_for(console: Console) -> Board:
    if console.is_terminal:
        return LiveBoard(console)
    return PlainBoard(console.file)


def watch_jobs(
    api: ImportApi,
    job_ids: Sequence[str],
    board: Board,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[JobOutcome]:
    """Every job's outcome once all are finished, in the order of ``job_ids``."""
    outcomes: dict[str, JobOutcome] = {}
    pending = list(job_ids)
    interval = FIRST_INTERVAL
    try:
        while pending:
            changed = False
            for job_id in pending:
                outcome = outcome_of(job_id, api.status(job_id, limit=1))
                changed = changed or outcomes.get(job_id) != outcome
                outcomes[job_id] = outcome
                board.update(outcome)
            pending = [j for j in pending if not outcomes[j].finished]
            if pending:
                interval = FIRST_INTERVAL if changed else min(interval * 1.5, MAX_INTERVAL)
                sleep(interval)
    finally:
        board.close()
    return [outcomes[j] for j in job_ids]
