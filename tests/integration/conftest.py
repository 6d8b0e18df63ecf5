"""Fixtures of the API's integration tests: the real API on a socket, and a token.

A module that needs other settings or another project defines its own ``api`` or
``token``, which wins over these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .api_harness import RunningApi, project_with_token, running_api


@pytest.fixture
async def api(pg_dsn: str) -> AsyncIterator[RunningApi]:
    """The API with the harness's defaults, on a fresh database."""
    async with running_api(pg_dsn) as running:
        yield running


@pytest.fixture
async def token(api: RunningApi) -> str:
    """A write token of project ``acme``."""
    return await project_with_token(api.settings.database_url, "acme")
