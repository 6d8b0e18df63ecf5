"""The status read model in PostgreSQL (owned by the projector; the API only reads it).

``status_jobs`` and ``status_videos`` are what the API serves.
``projector_job_state`` keeps each job's folded state (webhook, context, the
result per video) so a batch needs one lookup per job instead of a replay.

Every write takes the ``Tables`` it goes to (default: the live ones), so a
rebuild folds the log into shadow copies with this very code (see ``rebuild``).
The module itself is a ``Model`` of the live tables, ``Tables`` one of any.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import asyncpg
import msgspec

from videoimport_projector.domain import JobState, VideoRow, webhook_view


@dataclass(frozen=True)
class Tables:
    """Where the read model is written: the live tables or a rebuild's shadow copies.

    The names go into SQL as they are: they come from code, never from input.
    """

    jobs: str
    videos: str
    states: str

    def names(self) -> tuple[str, str, str]:
        return (self.jobs, self.videos, self.states)

    async def load_jobs(
        self, conn: asyncpg.Connection, job_ids: Iterable[str]
    ) -> dict[str, JobState]:
        return await load_jobs(conn, job_ids, self)

    async def save_jobs(self, conn: asyncpg.Connection, states: Iterable[JobState]) -> None:
        await save_jobs(conn, states, self)

    async def save_videos(self, conn: asyncpg.Connection, rows: Iterable[VideoRow]) -> None:
        await save_videos(conn, rows, self)

    async def expire_links(self, conn: asyncpg.Connection, storage_keys: Iterable[str]) -> None:
        await expire_links(conn, storage_keys, self)


class Model(Protocol):
    """What ``handlers.apply`` folds into: this module (the live tables) or a ``Tables``."""

    async def load_jobs(
        self, conn: asyncpg.Connection, job_ids: Iterable[str]
    ) -> dict[str, JobState]: ...
    async def save_jobs(self, conn: asyncpg.Connection, states: Iterable[JobState]) -> None: ...
    async def save_videos(self, conn: asyncpg.Connection, rows: Iterable[VideoRow]) -> None: ...
    async def expire_links(self, conn: asyncpg.Connection, storage_keys: Iterable[str]) -> None: ...


LIVE = Tables(jobs="status_jobs", videos="status_videos", states="projector_job_state")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(JobState)


async def load_jobs(
    conn: asyncpg.Connection, job_ids: Iterable[str], tables: Tables = LIVE
) -> dict[str, JobState]:
    rows = await conn.fetch(
        f"SELECT job_id, state::text AS state FROM {tables.states} WHERE job_id = ANY($1)",
        list(job_ids),
    )
    return {r["job_id"]: _decoder.decode(r["state"]) for r in rows}


async def save_jobs(
    conn: asyncpg.Connection, states: Iterable[JobState], tables: Tables = LIVE
) -> None:
    states = list(states)
    if not states:
        return
    await conn.executemany(
        f"INSERT INTO {tables.states} (job_id, state) VALUES ($1, $2::json)"
        " ON CONFLICT (job_id) DO UPDATE SET state = EXCLUDED.state",
        [(s.job_id, _encoder.encode(s).decode()) for s in states],
    )
    rows = []
    for s in states:
        overview = s.overview()
        hook = webhook_view(s)
        rows.append(
            (
                s.job_id,
                s.project,
                s.system_name,
                s.status,
                s.video_count,
                s.started_at,
                s.finished_at if s.status != "started" else None,
                overview.success,
                overview.skipped,
                overview.failed,
                None if hook is None else hook.state,
                None if hook is None else hook.attempts,
                None if hook is None else hook.last_status,
                None if hook is None else hook.last_error,
                None if hook is None else hook.next_attempt_at,
                None if hook is None else hook.delivered_at,
            )
        )
    await conn.executemany(
        f"INSERT INTO {tables.jobs} (job_id, project, system_name, state, video_count, started_at,"
        " finished_at, success, skipped, failed, webhook_state, webhook_attempts,"
        " webhook_last_status, webhook_last_error, webhook_next_attempt_at,"
        " webhook_delivered_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        " ON CONFLICT (job_id) DO UPDATE SET project = EXCLUDED.project,"
        " system_name = EXCLUDED.system_name, state = EXCLUDED.state,"
        " video_count = EXCLUDED.video_count, started_at = EXCLUDED.started_at,"
        " finished_at = EXCLUDED.finished_at, success = EXCLUDED.success,"
        " skipped = EXCLUDED.skipped, failed = EXCLUDED.failed,"
        " webhook_state = EXCLUDED.webhook_state, webhook_attempts = EXCLUDED.webhook_attempts,"
        " webhook_last_status = EXCLUDED.webhook_last_status,"
        " webhook_last_error = EXCLUDED.webhook_last_error,"
        " webhook_next_attempt_at = EXCLUDED.webhook_next_attempt_at,"
        " webhook_delivered_at = EXCLUDED.webhook_delivered_at",
        rows,
    )


async def save_videos(
    conn: asyncpg.Connection, rows: Iterable[VideoRow], tables: Tables = LIVE
) -> None:
    values = [
        (
            r.job_id,
            r.idx,
            r.system_name,
            r.external_id,
            r.state,
            r.reason,
            r.code,
            r.media_id,
            r.mime_type,
            r.storage_key,
            r.outcome,
            r.size,
            r.sha256,
            None if r.media_info is None else _encoder.encode(r.media_info).decode(),
            r.poster_key,
        )
        for r in rows
    ]
    if not values:
        return
    # A terminal row is never overwritten by a "requested" one (see domain.newer_row).
    await conn.executemany(
        f"INSERT INTO {tables.videos} AS v (job_id, idx, system_name, external_id, state,"
        " reason, code, media_id, mime_type, storage_key, outcome, size, sha256, media_info,"
        " poster_key)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::json, $15)"
        " ON CONFLICT (job_id, idx) DO UPDATE SET system_name = EXCLUDED.system_name,"
        " external_id = EXCLUDED.external_id, state = EXCLUDED.state,"
        " reason = EXCLUDED.reason, code = EXCLUDED.code, media_id = EXCLUDED.media_id,"
        " mime_type = EXCLUDED.mime_type, storage_key = EXCLUDED.storage_key,"
        " outcome = EXCLUDED.outcome, size = EXCLUDED.size, sha256 = EXCLUDED.sha256,"
        " media_info = EXCLUDED.media_info, poster_key = EXCLUDED.poster_key"
        " WHERE EXCLUDED.state IS NOT NULL OR v.state IS NULL",
        values,
    )


async def expire_links(
    conn: asyncpg.Connection, storage_keys: Iterable[str], tables: Tables = LIVE
) -> None:
    """Every result pointing at one of ``storage_keys`` (a deleted object) loses its link.

    ``save_videos`` never writes ``link_expired``, so a repeated result keeps the mark.
    """
    keys = sorted(set(storage_keys))
    if keys:
        await conn.execute(
            f"UPDATE {tables.videos} SET link_expired = true"
            " WHERE storage_key = ANY($1::text[]) AND NOT link_expired",
            keys,
        )
