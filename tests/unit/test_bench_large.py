"""The large-video benchmark's generated bodies and the extra ingester processes (pure)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from videoimport_devstack import StackInfo
from videoimport_devstack.services import SERVICES, ServiceSet, process_names, service_of
from videoimport_ingester.settings import Settings

from benchmarks.large import body_chunks, in_flight, size_label
from benchmarks.transfer import FTYP

BLOCK = os.urandom(4096)


def body(name: str, size: int) -> bytes:
    return b"".join(body_chunks(name, size, BLOCK))


@pytest.mark.parametrize("size", [1, len(FTYP), 100, 4096, 4097, 3 * 4096 + 17, 10 * 4096])
def test_a_body_has_exactly_the_asked_length_in_pieces_no_longer_than_the_block(
    size: int,
) -> None:
    pieces = list(body_chunks("a.mp4", size, BLOCK))
    assert sum(len(piece) for piece in pieces) == size
    assert all(0 < len(piece) <= len(BLOCK) for piece in pieces)


def test_a_body_starts_with_an_mp4_ftyp_box_then_the_names_hash() -> None:
    data = body("a.mp4", 20_000)
    assert data.startswith(FTYP)
    assert data[len(FTYP) : len(FTYP) + 32] == hashlib.sha256(b"a.mp4").digest()


def test_the_block_repeats_after_the_header_across_pieces() -> None:
    head = len(FTYP) + 32
    data = body("a.mp4", head + 3 * len(BLOCK))
    assert data[head:] == BLOCK * 3


def test_bodies_are_distinct_per_name_and_the_same_for_the_same_name() -> None:
    assert body("a.mp4", 50_000) != body("b.mp4", 50_000)
    assert body("a.mp4", 50_000) == body("a.mp4", 50_000)


def test_a_block_no_longer_than_the_header_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than"):
        list(body_chunks("a.mp4", 100, b"x" * 10))


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
