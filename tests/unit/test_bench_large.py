"""The large-video benchmark's generated bodies and the extra ingester processes (pure)."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pytest
from videoimport_devstack import StackInfo
from videoimport_devstack.services import SERVICES, ServiceSet, process_names, service_of
from videoimport_ingester.settings import Settings

from benchmarks.large import body_chunks, in_flight, size_label
from benchmarks.media import smallest, template, video_head

BLOCK = os.urandom(64 * 1024)
HEAD = smallest()


def body(name: str, size: int) -> bytes:
    return b"".join(body_chunks(name, size, BLOCK))


def boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """The top-level mp4 boxes: (type, offset, size)."""
    found, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        found.append((kind, offset, size))
        offset += size
    return found


@pytest.mark.parametrize("size", [HEAD, HEAD + 1, 100_000, 3 * len(BLOCK) + 17])
def test_a_body_has_exactly_the_asked_length_in_pieces_no_longer_than_the_block(
    size: int,
) -> None:
    pieces = list(body_chunks("a.mp4", size, BLOCK))
    assert sum(len(piece) for piece in pieces) == size
    assert all(0 < len(piece) <= len(BLOCK) for piece in pieces)


def test_a_body_is_the_sample_then_one_free_box_to_the_end_holding_the_names_hash() -> None:
    data = body("a.mp4", 200_000)
    assert data.startswith(template())
    last_kind, last_offset, last_size = boxes(data)[-1]
    assert (last_kind, last_offset + last_size) == (b"free", len(data))
    assert data[len(template()) + 8 : len(template()) + 40] == hashlib.sha256(b"a.mp4").digest()


def test_a_body_of_4_gib_or_more_has_a_64_bit_free_box() -> None:
    size = 5 * 2**30
    head = video_head("big.mp4", size)
    assert boxes(head)[-1] == (b"free", len(template()), size - len(template()))


def test_the_block_repeats_after_the_header_across_pieces() -> None:
    data = body("a.mp4", HEAD + 3 * len(BLOCK))
    assert data[HEAD:] == BLOCK * 3


def test_bodies_are_distinct_per_name_and_the_same_for_the_same_name() -> None:
    assert body("a.mp4", 50_000) != body("b.mp4", 50_000)
    assert body("a.mp4", 50_000) == body("a.mp4", 50_000)


def test_too_small_a_body_or_block_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        video_head("a.mp4", HEAD - 1)
    with pytest.raises(ValueError, match="longer than"):
        list(body_chunks("a.mp4", 100_000, b"x" * 10))


def test_the_baseline_runs_as_many_videos_at_once_as_the_ingester() -> None:
    settings = Settings(ingester_concurrency=8, ingester_job_limit=6, ingester_project_limit=6)
    assert in_flight(settings, 4) == 4
    assert in_flight(settings, 10) == 6


def test_sizes_are_labelled_in_decimal_units() -> None:
    assert size_label(1_000_000_000) == "1 GB"
    assert size_label(64_000_000) == "64 MB"


def test_one_ingester_keeps_the_service_list_as_it_was() -> None:
    assert process_names() == SERVICES
    assert [service_of(name) for name in SERVICES] == list(SERVICES)


def test_extra_ingesters_start_right_after_the_first_and_run_the_ingester() -> None:
    names = process_names(3)
    assert names == (
        "projector",
        "relay",
        "ingester",
        "ingester-2",
        "ingester-3",
        "notifier",
        "api",
    )
    assert service_of("ingester-3") == "ingester"


def test_each_ingester_process_gets_its_own_health_port(tmp_path: Path) -> None:
    stack = StackInfo(
        postgres_dsn="postgresql://127.0.0.1:1/x",
        kafka_bootstrap="127.0.0.1:2",
        s3_endpoint="http://127.0.0.1:3",
        s3_access_key="k",
        s3_secret_key="s",
        s3_bucket="b",
        s3_region="us-east-1",
    )
    services = ServiceSet(stack, tmp_path, ingesters=2)
    ports = {
        name: services.environment(name)["VIDEOIMPORT_HEALTH_PORT"]
        for name in ("ingester", "ingester-2")
    }
    assert len(set(ports.values())) == 2
    assert services.health_url("ingester-2").endswith(ports["ingester-2"])
    with pytest.raises(ValueError, match="at least 1"):
        ServiceSet(stack, tmp_path, ingesters=0)
