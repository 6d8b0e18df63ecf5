"""GET|HEAD /media/{key}: the stored bytes behind a signed, unexpired ``originalUrl``.

Real S3 (the local stack's) and the real app: a valid link streams (and honours
Range), a missing, tampered or expired signature is a 403, a key that is not of
the server's own shape is a 404 that never reaches the bucket.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from videoimport_api.adapters.s3 import MediaObject, MediaStore
from videoimport_api.domain.media_links import signature
from videoimport_api.handlers import Dependencies
from videoimport_devstack import StackInfo

from tests.conftest import s3_client

from .api_harness import (
    IMPORT_URL,
    STATUS_DDL,
    STATUS_URL,
    RunningApi,
    assert_error_shape,
    auth,
    batch,
    project_with_token,
    raw_request,
    running_api,
    signed_url,
)

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=30)]

MEDIA_ID = "m4xq7c2kdaw3hz5tb6ne"
KEY = f"acme/{MEDIA_ID}/0b6f4c1e-1234-4abc-8def-0123456789ab.mp4"
OUTSIDE = "outside.mp4"
"""An object outside the key shape, which no path trick may reach."""


class SpyStore:
    """The real store, recording every key asked for."""

    def __init__(self, inner: MediaStore) -> None:
        self.inner = inner
        self.keys: list[str] = []

    async def get(self, key: str, byte_range: str | None = None) -> MediaObject | None:
        self.keys.append(key)
        return await self.inner.get(key, byte_range)

    async def head(self, key: str) -> MediaObject | None:
        self.keys.append(key)
        return await self.inner.head(key)


@pytest.fixture
def spy() -> dict[str, SpyStore]:
    return {}


@pytest.fixture
async def api(
    pg_dsn: str, stack: StackInfo, s3_bucket: str, spy: dict[str, SpyStore]
) -> AsyncIterator[RunningApi]:
    def wrap(deps: Dependencies) -> Dependencies:
        assert deps.media is not None
        spy["store"] = SpyStore(deps.media)
        return dataclasses.replace(deps, media=spy["store"])  # type: ignore[arg-type]

    async with running_api(
        pg_dsn,
        wrap=wrap,
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
    async with s3_client(stack) as client:
        await client.put_object(Bucket=s3_bucket, Key=KEY, Body=data, ContentType="video/mp4")
        await client.put_object(Bucket=s3_bucket, Key=OUTSIDE, Body=b"not for you")
    return data


def assert_media_headers(headers: Any) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-disposition"] == f'inline; filename="{MEDIA_ID}.mp4"'


async def test_the_stored_object_is_served_byte_for_byte(api: RunningApi, stored: bytes) -> None:
    url = signed_url(api, KEY)
    response = await api.http.get(url)
    assert response.status_code == 200
    assert response.content == stored
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(stored)
    assert response.headers["accept-ranges"] == "bytes"
    assert_media_headers(response.headers)

    head = await api.http.head(url)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(stored)
    assert head.headers["content-type"] == "video/mp4"
    assert_media_headers(head.headers)


async def test_a_range_is_served_partially(api: RunningApi, stored: bytes) -> None:
    url = signed_url(api, KEY)
    response = await api.http.get(url, headers={"Range": "bytes=4-11"})
    assert response.status_code == 206
    assert response.content == stored[4:12]
    assert response.headers["content-range"] == f"bytes 4-11/{len(stored)}"
    assert_media_headers(response.headers)

    beyond = await api.http.get(url, headers={"Range": f"bytes={len(stored) + 10}-"})
    assert beyond.status_code == 416
    assert_error_shape(beyond.json(), 416)


async def test_a_missing_object_is_404(api: RunningApi, stored: bytes) -> None:
    missing = KEY.replace("0b6f4c1e", "ffffffff")
    for method in ("GET", "HEAD"):
        response = await api.http.request(method, signed_url(api, missing))
        assert response.status_code == 404, method
    assert_error_shape((await api.http.get(signed_url(api, missing))).json(), 404)


async def test_a_status_original_url_streams_with_range(api: RunningApi, stored: bytes) -> None:
    token = await project_with_token(api.settings.database_url, "acme")
    response = await api.http.post(IMPORT_URL, json=batch(1), headers=auth(token))
    job_id = response.json()["id"]
    conn = await asyncpg.connect(api.settings.database_url)
    try:
        await conn.execute(STATUS_DDL)
        await conn.execute(
            "INSERT INTO status_jobs VALUES ($1, 'acme', 'archive', 'success', 1, $2, $2, 1, 0, 0)",
            job_id,
            datetime.now(UTC),
        )
        await conn.execute(
            "INSERT INTO status_videos VALUES"
            " ($1, 0, 'archive', 'ext-0', 'success', NULL, NULL, $2, 'video/mp4', $3, 'created')",
            job_id,
            MEDIA_ID,
            KEY,
        )
    finally:
        await conn.close()
    status = await api.http.get(STATUS_URL, params={"id": job_id}, headers=auth(token))
    original_url = status.json()["videos"][0]["video"]["originalUrl"]
    assert original_url.startswith(f"{api.base_url}/media/{KEY}?expires=")

    # Used exactly as given, without any credentials.
    partial = await api.http.get(original_url, headers={"Range": "bytes=0-99"})
    assert partial.status_code == 206
    assert partial.content == stored[:100]
    assert_media_headers(partial.headers)
    whole = await api.http.get(original_url)
    assert (whole.status_code, whole.content) == (200, stored)


async def test_a_link_without_a_valid_signature_is_403(api: RunningApi, stored: bytes) -> None:
    valid = urlsplit(signed_url(api, KEY))
    expires = int(time.time()) + 3600
    sig = signature(api.deps.media_links.secret, KEY, expires)
    tampered = ("A" if sig[0] != "A" else "B") + sig[1:]
    other_key = KEY.replace(".mp4", ".webm")
    hour_ago = time.time() - api.settings.media_link_ttl - 3600
    refused = {
        "no signature": f"/media/{KEY}",
        "no expiry": f"/media/{KEY}?signature={sig}",
        "tampered signature": f"/media/{KEY}?expires={expires}&signature={tampered}",
        "extended expiry": f"/media/{KEY}?expires={expires + 60}&signature={sig}",
        "another object's signature": (f"/media/{other_key}?expires={expires}&signature={sig}"),
        "another server's signature": (
            f"/media/{KEY}?expires={expires}&signature={signature(b'x' * 32, KEY, expires)}"
        ),
        "expired": signed_url(api, KEY, now=hour_ago),
    }
    for case, url in refused.items():
        for method in ("GET", "HEAD"):
            response = await api.http.request(method, url)
            assert response.status_code == 403, (case, method)
            assert response.headers["x-content-type-options"] == "nosniff"
        body = (await api.http.get(url)).json()
        assert_error_shape(body, 403)
        assert body["error_details"][0]["field"] == "signature", case
    expired = (await api.http.get(refused["expired"])).json()
    assert expired["error_details"][0]["reason"] == "the link has expired"
    # And the valid link still works: only the refused ones were refused.
    assert (await api.http.get(f"{valid.path}?{valid.query}")).status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "/media/",
        "/media",
        "/media//",
        f"/media/../{OUTSIDE}",
        f"/media/acme/../{OUTSIDE}",
        f"/media/%2e%2e/{OUTSIDE}",
        f"/media/acme/%2e%2e/{OUTSIDE}",
        f"/media/acme%2f..%2f{OUTSIDE}",
        f"/media/{OUTSIDE}",
        "/media//etc/passwd",
        f"/media/{KEY}%00",
        f"/media/acme/{MEDIA_ID}/x%00.mp4",
        f"/media/{KEY.upper()}",
    ],
)
async def test_keys_not_of_the_servers_shape_are_404_and_never_reach_s3(
    api: RunningApi, stored: bytes, spy: dict[str, SpyStore], target: str
) -> None:
    for method in ("GET", "HEAD"):
        response = await raw_request(api, target, method)
        assert response.status == 404, (target, method)
        assert response.headers["x-content-type-options"] == "nosniff"
    # Even with a signature the server made for that very path.
    query = urlsplit(signed_url(api, target.removeprefix("/media").removeprefix("/"))).query
    assert (await raw_request(api, f"{target}?{query}")).status == 404, target
    assert_error_shape(json.loads((await raw_request(api, target)).body), 404)
    assert spy["store"].keys == []


async def test_instances_sharing_a_signing_key_accept_each_others_links(
    pg_dsn: str, stack: StackInfo, s3_bucket: str, stored: bytes
) -> None:
    s3 = {
        "s3_endpoint": stack.s3_endpoint,
        "s3_access_key": stack.s3_access_key,
        "s3_secret_key": stack.s3_secret_key,
        "s3_region": stack.s3_region,
        "s3_bucket": s3_bucket,
    }
    key = "ab" * 32
    async with (
        running_api(pg_dsn, media_signing_key=key, **s3) as first,
        running_api(pg_dsn, media_signing_key=key, **s3) as restarted,
        running_api(pg_dsn, **s3) as unkeyed,
    ):
        link = urlsplit(signed_url(first, KEY))
        path = f"{link.path}?{link.query}"
        assert (await restarted.http.get(path)).content == stored
        assert (await unkeyed.http.get(path)).status_code == 403
