"""Fixtures shared by every test layer.

Integration and e2e tests talk to real servers: one local stack (PostgreSQL,
Apache Kafka, an S3 server) started for the whole session, and per test a fresh
database, topic prefix and bucket so tests never see each other's data.
In a parallel run (``pytest -n N``, as ``make test`` does) the controlling process
starts the stack before the workers and every worker uses it; tests keep apart by
their names, not by their stack. Set VIDEOIMPORT_TEST_STACK_DIR to the data dir of a
running ``make stack`` to reuse it instead of starting one.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest
from aiobotocore.session import get_session
from videoimport_devstack import LocalStack, StackInfo, read_stack_info
from videoimport_eventlog import schema

if TYPE_CHECKING:
    from aiobotocore.session import ClientCreatorContext
    from types_aiobotocore_s3 import S3Client

REPO = Path(__file__).resolve().parent.parent
DROP_DATABASE_SECONDS = 30.0


STACK_DIR_VARIABLE = "VIDEOIMPORT_TEST_STACK_DIR"
LONG_MARK = "long"


class _SharedStack:
    """The stack of a parallel run: started once by the controlling process, before
    the workers, which find it through ``VIDEOIMPORT_TEST_STACK_DIR``."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: pytest prunes old basetemp dirs, which would
        # delete a stack that a concurrent pytest session is still running on.
        self.data_dir = Path(tempfile.mkdtemp(prefix="videoimport-stack-"))
        self.local = LocalStack(self.data_dir)

    def start(self) -> None:
        self.local.install()
        self.local.start()

    def stop(self) -> None:
        self.local.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


_SHARED_STACK = pytest.StashKey[_SharedStack]()


def _runs_workers(config: pytest.Config) -> bool:
    """True in the controlling process of a parallel (pytest-xdist) run."""
    workers = getattr(config.option, "numprocesses", None)
    return bool(workers) and not hasattr(config, "workerinput")


def _only_unit_tests(config: pytest.Config) -> bool:
    paths = [str(arg).split("::")[0] for arg in config.args]
    return bool(paths) and all(
        Path(p).resolve().is_relative_to(REPO / "tests" / "unit") for p in paths
    )


JIT_FOR_SHORT_RUNS = "-XX:TieredStopAtLevel=1"
"""The Kafka servers of a test run live minutes and start up to ten times: the
JVM's quick compiler alone costs them about a third less CPU to start (4.7 s ->
3.2 s to ready) than compiling twice for a peak speed they never need."""


def pytest_configure(config: pytest.Config) -> None:
    # Set before any stack starts; the workers and their servers inherit it.
    os.environ.setdefault("JAVA_TOOL_OPTIONS", JIT_FOR_SHORT_RUNS)
    config.addinivalue_line(
        "markers",
        f"{LONG_MARK}(seconds=60): its file runs about that long; the longest start first",
    )
    if (
        _runs_workers(config)
        and not os.environ.get(STACK_DIR_VARIABLE)
        and not _only_unit_tests(config)
    ):
        shared = _SharedStack()
        config.stash[_SHARED_STACK] = shared
        try:
            shared.start()
        except BaseException:
            shared.stop()
            raise
        # The workers are started after this hook and inherit the environment.
        os.environ[STACK_DIR_VARIABLE] = str(shared.data_dir)


def pytest_unconfigure(config: pytest.Config) -> None:
    shared = config.stash.get(_SHARED_STACK, None)
    if shared is not None:
        os.environ.pop(STACK_DIR_VARIABLE, None)
        shared.stop()


def _expected_seconds(item: pytest.Item) -> float:
    mark = item.get_closest_marker(LONG_MARK)
    return 0.0 if mark is None else float(mark.kwargs.get("seconds", 60))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked ``long`` first, longest first: a parallel run hands out files in
    this order (``--no-loadscope-reorder``; by default xdist hands out the files
    with the most tests first), so the longest start at once instead of keeping
    one worker busy after the rest are done, and the quick unit tests come last."""
    items.sort(key=lambda item: -_expected_seconds(item))


@pytest.fixture(scope="session")
def stack() -> Iterator[StackInfo]:
    running = os.environ.get(STACK_DIR_VARIABLE)
    if running:
        yield read_stack_info(Path(running))
        return
    shared = _SharedStack()
    try:
        shared.start()
        yield shared.local.info
    finally:
        shared.stop()


def _with_database(dsn: str, database: str) -> str:
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{database}"


MIGRATED_AT_SETUP = frozenset({"conn", "database"})
"""Fixtures (of any module) by these names migrate the test's database as they set
up: such a test's database starts as a copy of one migrated once per process, the
same schema in a fraction of the time (their ``migrate`` then finds nothing to do).
Every other test gets an empty database, so a test of migrating keeps its point."""


@pytest.fixture(scope="session")
async def migrated_template(stack: StackInfo) -> AsyncIterator[str]:
    """A database with every migration applied, only ever copied (a template must
    have no connection while it is copied)."""
    name = "template_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(stack.postgres_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        connection = await asyncpg.connect(_with_database(stack.postgres_dsn, name))
        try:
            await schema.migrate(connection)
        finally:
            await connection.close()
    finally:
        await admin.close()
    yield name
    admin = await asyncpg.connect(stack.postgres_dsn)
    try:
        await drop_database(admin, name)
    finally:
        await admin.close()


@pytest.fixture
async def pg_dsn(
    stack: StackInfo, migrated_template: str, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A fresh database for one test: empty, or migrated when a fixture of the test
    migrates it anyway (``MIGRATED_AT_SETUP``)."""
    name = "t_" + uuid.uuid4().hex[:16]
    copy = (
        f' TEMPLATE "{migrated_template}"' if MIGRATED_AT_SETUP & set(request.fixturenames) else ""
    )
    admin = await asyncpg.connect(stack.postgres_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await admin.close()
    yield _with_database(stack.postgres_dsn, name)
    admin = await asyncpg.connect(stack.postgres_dsn)
    try:
        await drop_database(admin, name)
    finally:
        await admin.close()


async def drop_database(admin: asyncpg.Connection, name: str) -> None:
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


aws_session = functools.cache(get_session)
"""One session per test process: a new one parses the S3 service model again for
its first client, which was half the CPU of a test process."""


def s3_client(stack: StackInfo) -> ClientCreatorContext[S3Client]:
    """A client of the stack's S3 server, as admin."""
    return aws_session().create_client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.s3_access_key,
        aws_secret_access_key=stack.s3_secret_key,
        region_name=stack.s3_region,
    )


@pytest.fixture
async def s3_bucket(stack: StackInfo) -> str:
    """A fresh bucket for one test."""
    name = f"t{uuid.uuid4().hex[:16]}"
    async with s3_client(stack) as client:
        await client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return REPO / "tests" / "fixtures"
