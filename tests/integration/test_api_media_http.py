"""GET /media/{key} serves exactly the bytes stored in S3 (the target of ``originalUrl``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiobotocore.session import get_session
from videoimport_devstack import StackInfo

from .api_harness import RunningApi, assert_error_shape, running_api

pytestmark = pytest.mark.integration

KEY = "acme/m0123456789abcdefghi/0b6f4c1e-request.mp4"


@pytest.fixture
async def api(pg_dsn: str, stack: StackInfo, s3_bucket: str) -> AsyncIterator[RunningApi]:
    async with running_api(
        pg_dsn,
        s3_endpoint=stack.s3_endpoint,
        s3_access_key=stack.s3_access_key,
        s3_secret_key=stack.s3_secret_key,
        s3_region=stack.s3_region,
        s3_bucket=s3_bucket,
    ) as running:
        yield running


@pytest.fixture
async def stored(stack: StackInfo, s3_bucket: str, fixtures_dir: Path) -> bytes:
    data = (fixtures_dir / "sample.mp4").read_bytes()
    async with get_session().create_client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.s3_access_key,
        aws_secret_access_key=stack.s3_secret_key,
        region_name=stack.s3_region,
    ) as client:
        await client.put_object(Bucket=s3_bucket, Key=KEY, Body=data, ContentType="video/mp4")
    return data


async def test_the_stored_object_is_served_byte_for_byte(api: RunningApi, stored: bytes) -> None:
    response = await api.http.get(f"/media/{KEY}")
    assert response.status_code == 200
    assert response.content == stored
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(stored)
    assert response.headers["accept-ranges"] == "bytes"

    head = await api.http.head(f"/media/{KEY}")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(stored)
    assert head.headers["content-type"] == "video/mp4"


async def test_a_range_is_served_partially(api: RunningApi, stored: bytes) -> None:
    response = await api.http.get(f"/media/{KEY}", headers={"Range": "bytes=4-11"})
    assert response.status_code == 206
    assert response.content == stored[4:12]
    assert response.headers["content-range"] == f"bytes 4-11/{len(stored)}"

    beyond = await api.http.get(f"/media/{KEY}", headers={"Range": f"bytes={len(stored) + 10}-"})
    assert beyond.status_code == 416
    assert_error_shape(beyond.json(), 416)


async def test_a_missing_object_is_404(api: RunningApi, stored: bytes) -> None:
    for method in ("GET", "HEAD"):
        response = await api.http.request(method, "/media/acme/nothing-here.mp4")
        assert response.status_code == 404, method
    assert_error_shape((await api.http.get("/media/acme/nothing-here.mp4")).json(), 404)
