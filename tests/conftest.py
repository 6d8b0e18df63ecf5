"""Fixtures shared by every test layer.

Integration and e2e tests talk to real servers: one local stack (PostgreSQL,
Apache Kafka, an S3 server) started for the whole session, and per test a fresh
database, topic prefix and bucket so tests never see each other's data.
Set VIDEOIMPORT_TEST_STACK_DIR to the data dir of a running ``make stack`` to
reuse it instead of starting one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiobotocore.session import get_session
from videoimport_devstack import LocalStack, StackInfo, read_stack_info
from videoimport_eventlog import schema

REPO = Path(__file__).resolve().parent.parent
DROP_DATABASE_SECONDS = 30.0


@pytest.fixture(scope="session")
def stack() -> Iterator[StackInfo]:
    running = os.environ.get("VIDEOIMPORT_TEST_STACK_DIR")
    if running:
        yield read_stack_info(Path(running))
        return
    # Not under pytest's tmp_path: pytest prunes old basetemp dirs, which would
    # delete a stack that a concurrent pytest session is still running on.
    data_dir = Path(tempfile.mkdtemp(prefix="videoimport-stack-"))
    local = LocalStack(data_dir)
    local.install()
    try:
        yield local.start()
    finally:
        local.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _with_database(dsn: str, database: str) -> str:
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture
async def pg_dsn(stack: StackInfo) -> AsyncIterator[str]:
    """A fresh, empty database for one test."""
    name = "t_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(stack.postgres_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield _with_database(stack.postgres_dsn, name)
    admin = await asyncpg.connect(stack.postgres_dsn)
    try:
        await _drop_database(admin, name)
    finally:
        await admin.close()


async def _drop_database(admin: asyncpg.Connection, name: str) -> None:
    """DROP … WITH (FORCE), waiting out a backend our role may not terminate.

    FORCE ends the test's own connections, but an autovacuum worker on the
    database belongs to the server's superuser: the drop is refused until it ends
    (in a moment)."""
    deadline = time.monotonic() + DROP_DATABASE_SECONDS
    while True:
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test's database, migrated (modules may define their own)."""
    connection = await asyncpg.connect(pg_dsn)
    await schema.migrate(connection)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def topic_prefix() -> str:
    """Prefix for topic and consumer-group names, unique to one test."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
async def s3_bucket(stack: StackInfo) -> str:
    """A fresh bucket for one test."""
    name = f"t{uuid.uuid4().hex[:16]}"
    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.s3_access_key,
        aws_secret_access_key=stack.s3_secret_key,
        region_name=stack.s3_region,
    ) as client:
        await client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return REPO / "tests" / "fixtures"
