"""``/schema`` serves this deployment's OpenAPI document, ``/schema/swagger`` a page for it;
both without a token."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from openapi_spec_validator import validate

from .api_harness import VERSION, running_api

pytestmark = pytest.mark.integration


async def test_the_schema_is_valid_openapi_for_this_deployment(pg_dsn: str) -> None:
    async with running_api(pg_dsn, max_batch=5) as api:
        response = await api.http.get("/schema")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-content-type-options"] == "nosniff"
        document = response.json()
        validate(document)
        # The harness supports 2024-01 but also retires it: only 2025-03 is offered.
        assert document["components"]["parameters"]["apiVersion"]["schema"]["enum"] == [VERSION]
        videos = document["components"]["schemas"]["ImportRequest"]["properties"]["videos"]
        assert videos["maxItems"] == 5
        assert f"at most {api.settings.max_body_bytes} bytes" in document["info"]["description"]


async def test_the_swagger_page_loads_the_schema_under_a_strict_policy(pg_dsn: str) -> None:
    async with running_api(pg_dsn) as api:
        response = await api.http.get("/schema/swagger")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert 'url: "/schema"' in response.text
        policy = response.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["connect-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        # Only the pinned bundle and the one inline script (by hash) may run.
        assert "'unsafe-inline'" not in directives["script-src"]
        inline = re.findall(r"<script>(.*?)</script>", response.text, re.S)
        assert len(inline) == 1
        digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
        assert f"'sha256-{digest}'" in directives["script-src"].split()
        assert re.search(r"swagger-ui-dist@\d+\.\d+\.\d+/", directives["script-src"])
