"""The ingester process, until stopped:

consumes videoimport.videos (VideoImportRequested) → emits VideoImported / VideoImportSkipped / VideoImportFailed

- a keyed Kafka consumer (``Intake``) only queues each request as a row of
  ``ingest_tasks``, so offsets commit at once and a rebalance or a stop never
  waits for a download; a message that cannot be queued is parked as a dead
  letter (an undecodable one at once, others after ``ingester_attempts``);
- ``ingester_concurrency`` workers claim queued requests fairly (at most
  ``ingester_project_limit`` per project and ``ingester_job_limit`` per job
  running, across instances; ``adapters/tasks.py``); the row is deleted in the
  transaction that commits the terminal event. Each queued row wakes one idle
  worker. While ``Ingester.handle`` runs, its watch
  (``adapters/in_flight.py``) renews the lease, writes the phase and bytes to the
  row, and abandons a download whose video got its result elsewhere (a
  cancelled job); a request claimed with its result already there is not
  downloaded at all. A failure is retried per the ``RetryPolicy``: an outage
  (database, broker or S3 away) without counting, anything else counted; once
  the attempts are used up the video ends ``failed`` / ``internal_error``;
- a loop queues again the dead letters an operator marked for retry;
- the sweeper (``sweeper.py``) deletes media objects a re-import superseded once
  ``superseded_grace`` has passed, and records each as ``MediaObjectDeleted``.
  As the uploads ledger's janitor it also aborts/deletes what a killed worker
  left in S3 and nothing settled within ``unsettled_upload_grace``.

The workers and the sweeper start before the consumer has joined its group: a
restarted instance takes up expired leases and queued rows at once, while the join
waits out the session of a member killed without leaving the group; SIGTERM during
the join stops at once.

SIGTERM: nothing new is claimed; what runs gets ``shutdown_grace`` seconds, then
it is cancelled (multipart uploads aborted) and its rows are released, so
another instance takes them at once.
"""  # noqa: E501

from __future__ import annotations

import asyncio

import structlog
from videoimport_eventlog import health
from videoimport_eventlog.consumer import KeyedConcurrentConsumer
from videoimport_eventlog.kafka import ensure_topics, leave_group
from videoimport_eventlog.loop import unless_stopped

from videoimport_ingester import bootstrap
from videoimport_ingester.intake import Intake
from videoimport_ingester.settings import Settings
from videoimport_ingester.sweeper import Sweeper
from videoimport_ingester.workers import Workers

log = structlog.get_logger(__name__)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Consume and work until ``stop`` is set; exits within about ``shutdown_grace``."""
    topic = bootstrap.videos_topic(settings)
    await ensure_topics(settings.kafka_bootstrap, settings.kafka_partitions, topics=[topic])
    policy = bootstrap.retry_policy(settings)
    async with (
        bootstrap.build_ingester(settings) as ingester,
        health.serving(
            settings.host, settings.health_port, bootstrap.health_probes(settings, ingester)
        ),
    ):
        workers = Workers(ingester, settings, policy)
        intake = Intake(ingester.pool, workers.wake)
        consumer = bootstrap.consumer(settings)
        keyed = KeyedConcurrentConsumer(
            consumer,
            intake.on_record,
            max_in_flight=settings.ingester_intake_in_flight,
            policy=policy,
            on_give_up=intake.on_give_up,
            drain_timeout=settings.shutdown_grace,
        )
        consumer.subscribe([topic], listener=keyed.listener())
        sweeper = Sweeper(
            ingester.pool,
            ingester.uploader,
            settings.superseded_sweep_interval,
            policy,
            unsettled_grace=settings.unsettled_upload_grace,
        )
        # The queue in PostgreSQL is the work and Kafka only feeds it: the workers
        # start before the consumer joins its group, which after a kill waits out the
        # dead member's session (about 10 s) while leases and queued rows are ready.
        working = asyncio.create_task(workers.run(stop))
        sweeping = asyncio.create_task(sweeper.run(stop))
        loops: tuple[asyncio.Task[None], ...] = (working, sweeping)
        try:
            # SIGTERM during the join stops at once rather than after the dead session.
            joined, _ = await unless_stopped(consumer.start(), stop)
            if joined:
                log.info(
                    "ingester started",
                    topic=topic,
                    group=bootstrap.group_id(settings),
                    owner=workers.owner,
                )
                loops = (asyncio.create_task(keyed.run()), working, sweeping)
                stopped = asyncio.ensure_future(stop.wait())
                await asyncio.wait({*loops, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stop.set()  # whatever ended first, the rest stops too
            keyed.stop()
            await asyncio.gather(*loops, return_exceptions=True)
        finally:
            stop.set()
            keyed.stop()
            try:
                # Done already unless the consumer failed to start: the workers then
                # finish or release what they hold (shutdown_grace) before the pool
                # closes.
                await asyncio.gather(*loops, return_exceptions=True)
            finally:
                for task in loops:
                    task.cancel()
            await leave_group(consumer)
        for task in loops:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure  # the consumer (or the workers) failed on their own
        log.info("ingester stopped")
