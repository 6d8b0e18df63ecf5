"""Schemathesis fuzzes the real API on a real socket with the document it serves.

Every operation gets generated requests that fit the document and requests that do
not, with a valid token, without one and with an unknown one. Each answer must be
documented (status code, content type, body schema, headers) and none may be a 5xx.
Nothing generated can leave loopback: no ingester or notifier runs here, and the
API's own dry-run probe is held to loopback (``loopback_only_urls``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .api_harness import IMPORT_URL, auth, batch, project_with_token, running_api

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=26)]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 15}
UNAUTHORIZED_EXAMPLES = 8
SEEDED_EXAMPLES = 10
BAD_TOKEN = auth("vit_not-a-token-of-this-deployment")
LOOPBACK_URL = "^http://127[.]0[.]0[.]1:9/[a-z0-9]{0,16}$"
"""Port 9 (discard): nothing listens, nothing is fetched (no ingester or notifier runs)."""


def has_inputs(operation: Any) -> bool:
    return any(True for _ in operation.iter_parameters()) or len(operation.body) > 0


def run(strategy: st.SearchStrategy[Any], examples: int, base_url: str, headers: Any) -> None:
    """``examples`` generated cases from ``strategy``, each sent and checked (blocking)."""

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def send(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

    send()


def loopback_only(document: dict[str, Any]) -> dict[str, Any]:
    """The document as this loopback-only deployment reads it: every ``url`` and
    ``webhook`` on loopback, so generated imports that fit it are accepted."""
    schemas = document["components"]["schemas"]
    loopback = {"type": "string", "pattern": LOOPBACK_URL}
    schemas["VideoRequest"]["properties"]["url"] = loopback
    schemas["ImportRequest"]["properties"]["webhook"] = {"anyOf": [loopback, {"type": "null"}]}
    return document


def fuzz(document: dict[str, Any], base_url: str, token: str, job_id: str) -> int:
    """Fuzz every operation; the number of operations fuzzed."""
    schema = schemathesis.openapi.from_dict(loopback_only(document))
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        authenticated = operation.path.startswith("/api/")
        for mode, examples in EXAMPLES.items():
            if mode == GenerationMode.NEGATIVE and not has_inputs(operation):
                continue  # nothing to get wrong
            run(operation.as_strategy(generation_mode=mode), examples, base_url, auth(token))
        if authenticated:
            for headers in ({}, BAD_TOKEN):
                run(operation.as_strategy(), UNAUTHORIZED_EXAMPLES, base_url, headers)
        if any(p.name == "id" for p in operation.query):
            # A job that exists, so status, cancel, retry and redelivery get past the 404.
            seeded = operation.as_strategy(query={"id": job_id})
            run(seeded, SEEDED_EXAMPLES, base_url, auth(token))
    return len(operations)


async def test_every_answer_is_documented_and_none_is_a_server_error(pg_dsn: str) -> None:
    async with running_api(pg_dsn, allow_private_urls=True, loopback_only_urls=True) as api:
        token = await project_with_token(pg_dsn, "fuzz")
        running = batch(3)
        for index, video in enumerate(running["videos"]):
            video["url"] = f"http://127.0.0.1:9/{index}.mp4"  # never fetched: no ingester runs
        accepted = await api.http.post(IMPORT_URL, json=running, headers=auth(token))
        assert accepted.status_code == 200, accepted.text
        document = (await api.http.get("/schema")).json()
        fuzzed = await asyncio.to_thread(fuzz, document, api.base_url, token, accepted.json()["id"])
        assert fuzzed == sum(len(item) for item in document["paths"].values())


@pytest.mark.parametrize(
    ("method", "route"),
    [("GET", "/status"), ("POST", "/cancel"), ("POST", "/retry"), ("POST", "/webhook/redeliver")],
)
async def test_a_job_id_the_database_cannot_hold_is_a_400(
    pg_dsn: str, method: str, route: str
) -> None:
    """Found by the fuzzing: a NUL in ``id`` reached PostgreSQL, which refuses it (a 500)."""
    async with running_api(pg_dsn) as api:
        token = await project_with_token(pg_dsn, "fuzz")
        response = await api.http.request(
            method, f"{IMPORT_URL}{route}", params={"id": "ab\x00c"}, headers=auth(token)
        )
        assert response.status_code == 400, response.text
        assert response.json()["error_details"][0]["field"] == "id"
