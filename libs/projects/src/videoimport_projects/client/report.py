"""What the client commands print and how they exit, from the API's documents.

Exit codes: 0 every video succeeded or was skipped (or, without ``--watch``, every
job was accepted), 1 some video failed, 2 a usage error, an unreadable file, an
API that refused or could not be reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from rich.table import Table
from rich.text import Text

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class Counts(msgspec.Struct, frozen=True):
    total: int = 0
    success: int = 0
    skipped: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        return self.success + self.skipped + self.failed


class JobOutcome(msgspec.Struct, frozen=True):
    job_id: str
    finished: bool
    state: str
    counts: Counts


class FailedVideo(msgspec.Struct, frozen=True):
    job_id: str
    external_id: str
    code: str | None
    reason: str | None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def counts_of(status: dict[str, Any]) -> Counts:
    """A running job reports ``progress``, a finished one ``overview``."""
    raw = status.get("overview") or status.get("progress") or {}
    if not isinstance(raw, dict):
        raw = {}
    return Counts(
        total=_int(raw.get("total")),
        success=_int(raw.get("success")),
        skipped=_int(raw.get("skipped")),
        failed=_int(raw.get("failed")),
    )


def outcome_of(job_id: str, status: dict[str, Any]) -> JobOutcome:
    return JobOutcome(
        job_id=job_id,
        finished=status.get("finished") is True,
        state=str(status.get("state", "unknown")),
        counts=counts_of(status),
    )


def failed_video(job_id: str, video: dict[str, Any]) -> FailedVideo:
    def text(key: str) -> str | None:
        value = video.get(key)
        return value if isinstance(value, str) else None

    return FailedVideo(
        job_id=job_id,
        external_id=text("externalId") or "?",
        code=text("code"),
        reason=text("reason"),
    )


def exit_code(outcomes: Iterable[JobOutcome]) -> int:
    """1 when a video failed (a cancelled video counts as failed) or a job failed."""
    failed = any(o.counts.failed > 0 or o.state == "failed" for o in outcomes)
    return EXIT_FAILED if failed else EXIT_OK


def progress_line(outcome: JobOutcome) -> str:
    """One line for a terminal-less watch: ``job abc: 3/5 done, 1 failed``."""
    c = outcome.counts
    if outcome.finished:
        return (
            f"job {outcome.job_id} finished ({outcome.state}): {c.success} succeeded,"
            f" {c.skipped} skipped, {c.failed} failed of {c.total}"
        )
    return f"job {outcome.job_id}: {c.done}/{c.total} done, {c.failed} failed"


def counts_line(c: Counts) -> str:
    return f"{c.total} videos: {c.success} succeeded, {c.skipped} skipped, {c.failed} failed"


def summary_line(outcomes: Sequence[JobOutcome]) -> str:
    total = Counts(
        total=sum(o.counts.total for o in outcomes),
        success=sum(o.counts.success for o in outcomes),
        skipped=sum(o.counts.skipped for o in outcomes),
        failed=sum(o.counts.failed for o in outcomes),
    )
    jobs = f"{len(outcomes)} job" + ("s" if len(outcomes) != 1 else "")
    return f"{jobs}, {counts_line(total)}"


def failure_table(failures: Sequence[FailedVideo]) -> Table:
    table = Table(title=f"Failed videos ({len(failures)})", title_justify="left")
    for column in ("job", "externalId", "code", "reason"):
        table.add_column(column, overflow="fold")
    for f in failures:
        table.add_row(
            *(Text(cell) for cell in (f.job_id, f.external_id, f.code or "", f.reason or ""))
        )
    return table


def jobs_table(jobs: Sequence[dict[str, Any]]) -> Table:
    table = Table()
    for column in ("job", "state", "system", "started", "finished", "done", "failed"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        counts = counts_of(job)
        cells = (
            job.get("id", "?"),
            job.get("state", "?"),
            job.get("systemName", ""),
            job.get("startedAt") or "",
            job.get("finishedAt") or "",
            f"{counts.done}/{counts.total}",
            counts.failed,
        )
        table.add_row(*(Text(str(cell)) for cell in cells))
    return table
