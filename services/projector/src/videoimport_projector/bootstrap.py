"""Builds the projector's clients from its settings; nothing connects at import time."""

from __future__ import annotations

import asyncpg
from videoimport_eventlog import schema

from videoimport_projector.settings import ProjectorSettings


async def connect(settings: ProjectorSettings) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(settings.database_url)
    return conn


async def migrate(conn: asyncpg.Connection) -> None:
    await schema.migrate(conn)
