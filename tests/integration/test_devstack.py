"""The local stack starts real servers that real clients can use, and keeps data on restart.

One stack for the module. The restart tests stop it, start it again with the CLI
(as ``make stack`` does) and stop that with SIGTERM or by killing the CLI: each
start of the servers costs seconds of CPU, most of it Kafka's, so each start
serves more than one point.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from botocore.exceptions import ClientError
from videoimport_devstack import LocalStack, StackInfo, StackNotRunningError, read_stack_info

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=40)]

PART_SIZE = 5 * 1024 * 1024  # S3's minimum size for all parts but the last
PUTS_AT_ONCE = 8  # within the S3 client's pool of 10 connections


@pytest.fixture(scope="module")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(tmp_path_factory.mktemp("devstack"))
    local.start()
    try:
        yield local
    finally:
        local.stop()


@dataclass(frozen=True)
class Stored:
    """A row, a record and an object written before the restarts, which each must keep."""

    row: str
    topic: str
    payload: bytes
    partition: int
    offset: int
    key: str
    sha256: str


@pytest.fixture(scope="module")
async def stored(devstack: LocalStack) -> Stored:
    info = devstack.info
    row = f"restart-{uuid.uuid4()}"
    topic = f"devstack-restart-{uuid.uuid4().hex[:12]}"  # auto-created by the producer
    payload = f"survives-{uuid.uuid4()}".encode()
    key = f"restart/{uuid.uuid4()}.bin"
    await pg_write(info, row)
    partition, offset = await kafka_send(info, topic, payload)
    sha = await s3_multipart_put(info, key)
    return Stored(row, topic, payload, partition, offset, key, sha)


# ------------------------------------------------------------------ helpers


async def pg_write(info: StackInfo, value: str) -> None:
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS devstack_probe (value text PRIMARY KEY)")
        await conn.execute("INSERT INTO devstack_probe (value) VALUES ($1)", value)
    finally:
        await conn.close()


async def pg_has(info: StackInfo, value: str) -> bool:
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        found = await conn.fetchval("SELECT count(*) FROM devstack_probe WHERE value = $1", value)
    finally:
        await conn.close()
    return bool(found == 1)


async def kafka_send(info: StackInfo, topic: str, value: bytes) -> tuple[int, int]:
    """Send with an idempotent, acks=all producer; returns (partition, offset)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=info.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, value, key=b"devstack")
    finally:
        await producer.stop()
    return meta.partition, meta.offset


async def kafka_read_at(info: StackInfo, topic: str, partition: int, offset: int) -> bytes:
    consumer = AIOKafkaConsumer(bootstrap_servers=info.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert record.offset == offset
    assert record.value is not None
    return bytes(record.value)


@asynccontextmanager
async def s3_client(info: StackInfo) -> AsyncIterator[S3Client]:
    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=info.s3_endpoint,
        region_name=info.s3_region,
        aws_access_key_id=info.s3_access_key,
        aws_secret_access_key=info.s3_secret_key,
        config=AioConfig(s3={"addressing_style": "path"}),
    ) as client:
        yield client


async def s3_multipart_put(info: StackInfo, key: str) -> str:
    """Upload 5 MiB + 1 byte in two parts; returns the sha256 of what was sent."""
    data = os.urandom(PART_SIZE + 1)
    async with s3_client(info) as s3:
        upload = await s3.create_multipart_upload(Bucket=info.s3_bucket, Key=key)
        upload_id = upload["UploadId"]
        parts: list[CompletedPartTypeDef] = []
        for number, chunk in enumerate((data[:PART_SIZE], data[PART_SIZE:]), start=1):
            part = await s3.upload_part(
                Bucket=info.s3_bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
            )
            parts.append({"PartNumber": number, "ETag": part["ETag"]})
        await s3.complete_multipart_upload(
            Bucket=info.s3_bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    return hashlib.sha256(data).hexdigest()


async def s3_get_sha256(info: StackInfo, key: str) -> tuple[int, str]:
    async with s3_client(info) as s3:
        response = await s3.get_object(Bucket=info.s3_bucket, Key=key)
        async with response["Body"] as body:
            data = await body.read()
    return len(data), hashlib.sha256(data).hexdigest()


async def assert_kept(info: StackInfo, stored: Stored) -> None:
    assert await pg_has(info, stored.row)
    assert (
        await kafka_read_at(info, stored.topic, stored.partition, stored.offset) == stored.payload
    )
    assert await s3_get_sha256(info, stored.key) == (PART_SIZE + 1, stored.sha256)


def server_pids(data_dir: Path) -> list[int]:
    return list(json.loads((data_dir / "stack.json").read_text())["pids"].values())


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


@contextmanager
def cli_stack(data_dir: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], StackInfo]]:
    """``python -m videoimport_devstack up``, once it printed the StackInfo (that is,
    once every server is ready); killed on the way out if still running."""
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "videoimport_devstack", "up", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"the CLI exited early: {log.read_text()}"
        yield proc, StackInfo.from_json(line)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------ tests


def test_stack_json_describes_the_running_stack(devstack: LocalStack) -> None:
    info = read_stack_info(devstack.data_dir)
    assert info == devstack.info
    assert info.kafka_bootstrap.startswith("127.0.0.1:")
    assert info.s3_endpoint.startswith("http://127.0.0.1:")
    assert info.postgres_dsn.startswith("postgresql://videoimport@127.0.0.1:")
    assert StackInfo.from_json(info.to_json()) == info


async def test_postgres_accepts_a_query(devstack: LocalStack) -> None:
    conn = await asyncpg.connect(devstack.info.postgres_dsn)
    try:
        assert await conn.fetchval("SELECT current_user") == "videoimport"
        assert await conn.fetchval("SELECT current_database()") == "videoimport"
        assert await conn.fetchval("SHOW fsync") == "on"
    finally:
        await conn.close()
    value = f"query-{uuid.uuid4()}"
    await pg_write(devstack.info, value)
    assert await pg_has(devstack.info, value)


async def test_kafka_idempotent_producer_and_group_consumer(devstack: LocalStack) -> None:
    info = devstack.info
    topic = f"devstack-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=info.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    payload = f"hello-{uuid.uuid4()}".encode()
    await kafka_send(info, topic, payload)

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=info.kafka_bootstrap,
        group_id=f"devstack-test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert record.value == payload
    assert record.key == b"devstack"


async def test_s3_multipart_upload_round_trips(devstack: LocalStack) -> None:
    key = f"uploads/{uuid.uuid4()}.bin"
    sent = await s3_multipart_put(devstack.info, key)
    assert await s3_get_sha256(devstack.info, key) == (PART_SIZE + 1, sent)


async def test_s3_multipart_upload_can_be_aborted(devstack: LocalStack) -> None:
    info = devstack.info
    key = f"aborted/{uuid.uuid4()}.bin"
    async with s3_client(info) as s3:
        upload = await s3.create_multipart_upload(Bucket=info.s3_bucket, Key=key)
        upload_id = upload["UploadId"]
        await s3.upload_part(
            Bucket=info.s3_bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"partial"
        )
        await s3.abort_multipart_upload(Bucket=info.s3_bucket, Key=key, UploadId=upload_id)
        with pytest.raises(ClientError, match="NoSuchUpload"):
            await s3.abort_multipart_upload(Bucket=info.s3_bucket, Key=key, UploadId=upload_id)
        listed = await s3.list_objects_v2(Bucket=info.s3_bucket, Prefix="aborted/")
        assert listed.get("KeyCount", 0) == 0


async def test_s3_lists_more_than_a_thousand_keys_page_by_page(devstack: LocalStack) -> None:
    """Past 1000 keys a listing needs a continuation token; s3rver's own used single
    DES, which OpenSSL 3 lacks by default (the listing answered 500)."""
    info = devstack.info
    prefix = f"many-{uuid.uuid4().hex[:8]}/"
    keys = {f"{prefix}{n:05d}" for n in range(1003)}
    async with s3_client(info) as s3:
        slots = asyncio.Semaphore(PUTS_AT_ONCE)

        async def put(key: str) -> None:
            async with slots:
                await s3.put_object(Bucket=info.s3_bucket, Key=key, Body=b"x")

        await asyncio.gather(*(put(key) for key in keys))
        listed: set[str] = set()
        pages = 0
        async for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=info.s3_bucket, Prefix=prefix
        ):
            pages += 1
            listed.update(item["Key"] for item in page.get("Contents", []))
    assert listed == keys
    assert pages == 2


def test_a_second_stack_on_the_same_data_dir_is_refused(devstack: LocalStack) -> None:
    other = LocalStack(devstack.data_dir)
    with pytest.raises(Exception, match="already running"):
        other.start()
    assert read_stack_info(devstack.data_dir) == devstack.info


async def test_restart_keeps_data_and_ports_and_sigterm_stops_the_cli_cleanly(
    devstack: LocalStack, stored: Stored, tmp_path: Path
) -> None:
    before = devstack.info
    children = devstack.children()
    assert set(children) == {"postgres", "kafka", "s3"}
    devstack.stop()
    assert all(not child.alive() for child in children.values())
    assert not (devstack.data_dir / "stack.json").exists()
    with pytest.raises(StackNotRunningError):
        read_stack_info(devstack.data_dir)

    with cli_stack(devstack.data_dir, tmp_path / "cli.log") as (proc, after):
        assert read_stack_info(devstack.data_dir) == after
        await assert_kept(after, stored)
        # The ports were free again, so the stack re-used them.
        assert after == before
        pids = server_pids(devstack.data_dir)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not (devstack.data_dir / "stack.json").exists()
        assert _wait_gone(pids, 5) == []


async def test_restart_moves_off_taken_ports_and_children_die_with_a_killed_cli(
    devstack: LocalStack, stored: Stored, tmp_path: Path
) -> None:
    devstack.stop()  # already stopped when the test above ran
    old_ports = json.loads((devstack.data_dir / "ports.json").read_text())
    squatters: list[socket.socket] = []
    try:
        for port in old_ports.values():  # incl. the KRaft controller port
            sock = socket.socket()
            squatters.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen()
        with cli_stack(devstack.data_dir, tmp_path / "cli.log") as (proc, after):
            for sock in squatters:
                sock.close()
            new_ports = json.loads((devstack.data_dir / "ports.json").read_text())
            assert all(new_ports[name] != old_ports[name] for name in old_ports)
            assert after.kafka_bootstrap != f"127.0.0.1:{old_ports['kafka']}"
            await assert_kept(after, stored)

            pids = server_pids(devstack.data_dir)
            proc.kill()  # SIGKILL: no cleanup code runs in the parent
            proc.wait(timeout=10)
            assert _wait_gone(pids, 60) == [], "children outlived their parent"
            with pytest.raises(StackNotRunningError, match="stale"):
                read_stack_info(devstack.data_dir)
    finally:
        for sock in squatters:
            sock.close()
