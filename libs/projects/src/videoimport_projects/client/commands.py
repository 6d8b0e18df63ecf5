"""The three client commands, over an ``ImportApi``: import a file, show a job, list jobs.

Results go to stdout (job ids, the summary, tables, or the ``--json`` document);
progress goes to stderr, so ``--json`` output can be piped as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console

from videoimport_projects.client.api import ApiFailure, ImportApi
from videoimport_projects.client.batches import (
    BatchFile,
    idempotency_key,
    read_batch_file,
    request_bodies,
)
from videoimport_projects.client.report import (
    EXIT_OK,
    FailedVideo,
    JobOutcome,
    counts_line,
    exit_code,
    failed_video,
    failure_table,
    jobs_table,
    outcome_of,
    summary_line,
)
from videoimport_projects.client.watch import PlainBoard, board_for, watch_jobs


class UsageError(Exception):
    """The command line asks for something impossible; exit code 2."""


class _Accepted(msgspec.Struct, frozen=True):
    id: str
    batch: int
    videos: int
    replayed: bool


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from exc


def _context(raw: str | None, batch_file: BatchFile) -> dict[str, Any] | None:
    if raw is None:
        return batch_file.context
    try:
        context = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"--context is not valid JSON: {exc}") from exc
    if not isinstance(context, dict):
        raise UsageError("--context must be a JSON object")
    return context


def _submit(
    api: ImportApi, args: argparse.Namespace, bodies: list[dict[str, Any]], out: Console
) -> list[_Accepted]:
    accepted: list[_Accepted] = []
    for index, body in enumerate(bodies):
        key = idempotency_key(args.api_version, body, index, args.run)
        try:
            job_id, replayed = api.submit(body, key)
        except ApiFailure as exc:
            done = ", ".join(a.id for a in accepted)
            earlier = (
                f"; jobs {done} were accepted already and running the same command again"
                " does not import them twice"
                if accepted
                else ""
            )
            raise ApiFailure(
                f"batch {index + 1}/{len(bodies)}: {exc}{earlier}", exc.status
            ) from exc
        accepted.append(_Accepted(job_id, index + 1, len(body["videos"]), replayed))
        if not args.json:
            again = " (accepted before: not imported twice)" if replayed else ""
            count = len(body["videos"])
            out.print(f"job {job_id}: batch {index + 1}/{len(bodies)}, {count} videos{again}")
    return accepted


def import_file(api: ImportApi, args: argparse.Namespace, out: Console, err: Console) -> int:
    batch_file = read_batch_file(args.file, _read(args.file))
    system_name = args.system or batch_file.system_name
    if not system_name:
        raise UsageError("no systemName: pass --system or put systemName in the JSON file")
    bodies = request_bodies(
        batch_file,
        system_name=system_name,
        webhook=args.webhook or batch_file.webhook,
        context=_context(args.context, batch_file),
        batch_size=args.batch_size,
    )
    accepted = _submit(api, args, bodies, out)
    jobs = [msgspec.to_builtins(a) for a in accepted]
    if not args.watch:
        if args.json:
            _print_json({"jobs": jobs})
        return EXIT_OK
    board = PlainBoard(sys.stderr) if args.json else board_for(err)
    outcomes = watch_jobs(api, [a.id for a in accepted], board)
    failures = _failures(api, outcomes)
    if args.json:
        for job, outcome in zip(jobs, outcomes, strict=True):
            job.update(_outcome_json(outcome))
        _print_json({"jobs": jobs, "failed": [_failure_json(f) for f in failures]})
    else:
        out.print(summary_line(outcomes))
        if failures:
            out.print(failure_table(failures))
    return exit_code(outcomes)


def _failures(api: ImportApi, outcomes: list[JobOutcome]) -> list[FailedVideo]:
    return [
        failed_video(o.job_id, video)
        for o in outcomes
        if o.counts.failed
        for video in api.failed_videos(o.job_id)
    ]


def _outcome_json(outcome: JobOutcome) -> dict[str, Any]:
    return {
        "state": outcome.state,
        "finished": outcome.finished,
        "overview": msgspec.to_builtins(outcome.counts),
    }


def _failure_json(failure: FailedVideo) -> dict[str, Any]:
    return {
        "job": failure.job_id,
        "externalId": failure.external_id,
        "code": failure.code,
        "reason": failure.reason,
    }


def show_status(api: ImportApi, args: argparse.Namespace, out: Console) -> int:
    status = api.status(args.job)
    if args.json:
        _print_json(status)
        return EXIT_OK
    outcome = outcome_of(args.job, status)
    finished = f", finished {status.get('finishedAt')}" if outcome.finished else ", running"
    out.print(f"job {args.job}: {outcome.state} (started {status.get('startedAt')}{finished})")
    out.print(counts_line(outcome.counts))
    if outcome.counts.failed:
        out.print(failure_table([failed_video(args.job, v) for v in api.failed_videos(args.job)]))
    return EXIT_OK


def list_jobs(api: ImportApi, args: argparse.Namespace, out: Console) -> int:
    query: dict[str, str | int] = {"limit": args.limit}
    if args.state:
        query["state"] = args.state
    if args.system:
        query["systemName"] = args.system
    jobs: list[dict[str, Any]] = []
    while True:
        page = api.jobs(**query)
        jobs.extend(j for j in page.get("jobs") or [] if isinstance(j, dict))
        cursor = page.get("nextCursor")
        if not args.all or not isinstance(cursor, str) or not cursor:
            break
        query["cursor"] = cursor
    more = cursor if isinstance(cursor, str) and cursor and not args.all else None
    if args.json:
        _print_json({"jobs": jobs, "nextCursor": more})
    else:
        out.print(jobs_table(jobs))
        if more:
            out.print("more jobs: --all lists every page")
    return EXIT_OK
