"""Turn one ``VideoImportRequested`` into exactly one terminal event.

The Kafka side (``intake.Intake``) only queues each request (``ingest_tasks``), so
offsets commit at once. ``Ingester.handle`` is what a worker runs for a queued
request: load (inbox, project config, registry row), decide, download if
needed, then commit the inbox row, the registry change and the event in one
transaction, which also deletes the request's queue row. The registry row is
re-read under ``FOR UPDATE`` in that transaction: if another job changed it
since the decision, the decision is made again. When that transaction
replaces the row's stored object, the old key is recorded in
``superseded_objects`` for the sweeper (``sweeper.py``), with its poster.
A downloaded video is probed from the stored object (``adapters/media_probe.py``):
its media info and container's mime type, the project's duration limit, and a
poster frame stored beside it.
Every S3 write is first recorded in the uploads ledger; the commit drops the
entries of the objects it registers (the video, its poster), and the request's
other writes are aborted/deleted right after it (``adapters/unsettled_uploads.py``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import asyncpg
import structlog
from videoimport_eventlog import store, tracking
from videoimport_events import Envelope, FailureCode, VideoImportRequested, video_state
from videoimport_projects import ProjectConfig, parse_config
from videoimport_projects.media_decision import Decision, MediaRecord

from videoimport_ingester import domain, probe
from videoimport_ingester.adapters import metrics, registry, superseded, tasks, unsettled_uploads
from videoimport_ingester.adapters.http_fetch import FetchError
from videoimport_ingester.adapters.media_probe import MediaProbe
from videoimport_ingester.adapters.s3_upload import S3Uploader
from videoimport_ingester.domain import CONSUMER, Resolution, StoredObject
from videoimport_ingester.scheduling import ProgressReport
from videoimport_ingester.transfer import Transfer

__all__ = ["CONSUMER", "Ingester", "RegistryContended"]

MAX_ROUNDS = 3
"""Decisions per request before giving up for now (the worker retries later)."""

log = structlog.get_logger(__name__)


class _Changed(Exception):
    def __init__(self, current: MediaRecord | None) -> None:
        self.current = current


class RegistryContended(Exception):
    """The registry row kept changing under us; retried by the worker."""


class Ingester:
    def __init__(
        self,
        pool: asyncpg.Pool,
        transfer: Transfer,
        uploader: S3Uploader,
        media: MediaProbe,
        *,
        superseded_grace: float = 7 * 24 * 3600.0,
    ) -> None:
        self._pool = pool
        self._transfer = transfer
        self._uploader = uploader
        self._media = media
        self._superseded_grace = superseded_grace
        self._uploads = unsettled_uploads.UnsettledUploads(pool, uploader)

    @property
    def uploader(self) -> S3Uploader:
        return self._uploader

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def handle(
        self, envelope: Envelope, report: ProgressReport | None = None
    ) -> domain.TerminalEvent | None:
        """Handle one request; returns the event appended, None when nothing was.

        Its ``ingest_tasks`` row (if any) is gone when an event is returned: it is
        deleted with the commit of the result (or once that commit's leftover
        writes are settled). When None is returned the row is the caller's to finish.

        Raises for what is not the source's fault (database, S3, a bug): the
        worker retries, and the inbox makes a redo append nothing twice.
        ``report`` is told how the download goes and when the result is being stored.
        """
        request = _request_of(envelope)
        with _bound(envelope, request):
            return await self._handle(envelope, request, report or ProgressReport())

    async def fail(
        self, envelope: Envelope, code: FailureCode, reason: str
    ) -> domain.TerminalEvent | None:
        """End the video ``failed`` (through the same inbox + event transaction)."""
        request = _request_of(envelope)
        with _bound(envelope, request):
            decision = domain.Fail(code=code, reason=reason)
            resolution = domain.resolve(request, decision)
            return await self._commit(envelope, request, decision, resolution, None, None)

    async def _handle(
        self, envelope: Envelope, request: VideoImportRequested, report: ProgressReport
    ) -> domain.TerminalEvent | None:
        loaded = await self._load(envelope.id, request)
        if loaded is None:
            log.info("already handled")
            # A crash right after that commit may have left writes unsettled.
            await self._uploads.settle_request(envelope.id)
            return None
        config, existing = loaded
        stored: StoredObject | None = None
        for _ in range(MAX_ROUNDS):
            decision = domain.decide(request, config, existing)
            resolution, stored = await self._carry_out(
                envelope, request, config, decision, stored, report
            )
            report.storing()
            try:
                return await self._commit(envelope, request, decision, resolution, existing, stored)
            except _Changed as changed:
                log.info("registry changed since the decision, deciding again")
                existing = changed.current
        raise RegistryContended(f"registry row kept changing ({MAX_ROUNDS} rounds)")

    async def _load(
        self, request_id: str, request: VideoImportRequested
    ) -> tuple[ProjectConfig | None, MediaRecord | None] | None:
        """The project's config and the registry row; None when already handled."""
        async with self._pool.acquire() as conn:
            loaded = await registry.load(
                conn,
                CONSUMER,
                request_id,
                request.project,
                request.system_name,
                request.external_id,
            )
        if loaded.handled:
            return None
        config = None if loaded.config is None else parse_config(loaded.config)
        return config, loaded.existing

    async def _carry_out(
        self,
        envelope: Envelope,
        request: VideoImportRequested,
        config: ProjectConfig | None,
        decision: Decision,
        stored: StoredObject | None,
        report: ProgressReport,
    ) -> tuple[Resolution, StoredObject | None]:
        if not isinstance(decision, domain.Download) or config is None:
            # A download of an earlier round that a concurrent change made moot
            # is not registered, so the commit leaves its ledger entry for
            # deletion.
            return domain.resolve(request, decision), None
        if stored is None:

            def key_for(extension: str) -> str:
                return domain.storage_key(
                    request.project, decision.media_id, envelope.id, extension
                )

            journal = self._uploads.journal(envelope.id)
            try:
                copied = await self._transfer.copy(
                    request.url, key_for, journal, report, max_bytes=config.max_file_size
                )
            except FetchError as exc:
                log.info("download failed", code=exc.code, reason=exc.reason)
                return domain.failed(request, exc.code, exc.reason), None
            # Not registered when rejected: the commit leaves its ledger entry for deletion.
            examined = await self._media.examine(copied, journal, config.max_duration)
            if isinstance(examined, probe.Rejected):
                log.info("stored file rejected", code=examined.code, reason=examined.reason)
                return domain.failed(request, examined.code, examined.reason), None
            stored = examined
        return domain.resolve(request, decision, stored), stored

    async def _commit(
        self,
        envelope: Envelope,
        request: VideoImportRequested,
        decision: Decision,
        resolution: Resolution,
        decided_on: MediaRecord | None,
        stored: StoredObject | None,
    ) -> domain.TerminalEvent | None:
        depends_on_registry = resolution.record is not None or isinstance(decision, domain.Skip)
        new = store.NewEvent(
            event=resolution.event,
            stream_id=domain.stream_id(request.job_id, request.index),
            stream_version=1,
            correlation_id=request.job_id,
            project=request.project,
            causation_id=envelope.id,
        )
        kept = domain.kept_writes(resolution, stored)
        leftovers: list[domain.UnsettledUpload] | None = None
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    if await tracking.claim_message(conn, CONSUMER, envelope.id):
                        if depends_on_registry:
                            await self._write_registry(conn, request, resolution, decided_on)
                        unsettled = await unsettled_uploads.settle_in_commit(
                            conn, envelope.id, kept
                        )
                        # The log's append lock is held from here to the commit: only
                        # the append and the queue row's delete run under it. The
                        # delete comes after the append: until the lock is ours, the
                        # row stays unlocked for the watch's progress writes.
                        await store.append(conn, [new])
                        if not unsettled:
                            # Nothing to settle after the commit: the queue row
                            # goes with it (no crash point leaves it to be redone).
                            await tasks.finish(conn, envelope.id)
                        leftovers = unsettled  # set after the append: a conflict rolls back all
                    else:
                        log.info("handled concurrently by another instance")
            except store.StreamConflict:
                log.info("result already recorded elsewhere (another instance, a cancel)")
                await tracking.claim_message(conn, CONSUMER, envelope.id)  # its keys are final
        # Settling raises on an outage although the event is committed: the
        # worker retries the request, which is handled and only settles again.
        if leftovers is None:
            # Whatever this attempt wrote is not registered: settle it too.
            await self._uploads.settle_request(envelope.id)
            return None
        state = video_state(resolution.event)
        metrics.RESULTS.labels(state=state).inc()
        log.info("video import result", state=state, event_type=type(resolution.event).__name__)
        if leftovers:
            # The row stays until they are settled: a crash before then leaves it,
            # and its next claim finds the request handled and settles them.
            await self._uploads.settle_all(leftovers, by="request")
            async with self._pool.acquire() as conn:
                await tasks.finish(conn, envelope.id)
        return resolution.event

    async def _write_registry(
        self,
        conn: asyncpg.Connection,
        request: VideoImportRequested,
        resolution: Resolution,
        decided_on: MediaRecord | None,
    ) -> None:
        current = await registry.find(
            conn, request.project, request.system_name, request.external_id, for_update=True
        )
        if not domain.same_record(current, decided_on):
            raise _Changed(current)
        record = resolution.record
        if record is None:
            return
        if current is None:
            if not await registry.insert(conn, record):
                # Inserted concurrently: FOR UPDATE had no row to lock yet.
                raise _Changed(
                    await registry.find(
                        conn, request.project, request.system_name, request.external_id
                    )
                )
        else:
            await registry.update(conn, record)
            if current.storage_key != record.storage_key:  # its poster goes with it
                await superseded.record(conn, current, self._superseded_grace)


def _request_of(envelope: Envelope) -> VideoImportRequested:
    if not isinstance(envelope.data, VideoImportRequested):
        raise TypeError(f"not a VideoImportRequested: {envelope.type}")
    return envelope.data


def _bound(envelope: Envelope, request: VideoImportRequested) -> AbstractContextManager[None]:
    return structlog.contextvars.bound_contextvars(
        job_id=request.job_id,
        index=request.index,
        project=request.project,
        system_name=request.system_name,
        external_id=request.external_id,
        event_id=envelope.id,
    )
