"""Builds the projector's clients from its settings; nothing connects at import time."""

from __future__ import annotations

import asyncpg
from videoimport_eventlog import health, schema

from videoimport_projector.settings import ProjectorSettings


async def connect(settings: ProjectorSettings) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(settings.database_url)
    return conn


async def migrate(conn: asyncpg.Connection) -> None:
    await schema.migrate(conn)


def health_probes(settings: ProjectorSettings) -> dict[str, health.Probe]:
    """The projector reads the log and writes the read model; it never touches Kafka."""
    return {"postgres": health.PostgresProbe(settings.database_url)}
