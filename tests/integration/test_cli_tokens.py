"""The ``videoimport`` CLI as an operator runs it (a subprocess), against a real database."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import asyncpg
import pytest
from videoimport_projects import MetadataField, project_config

from .api_harness import IMPORT_URL, auth, batch, running_api

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VENV_SCRIPT = Path(sys.executable).parent / "videoimport"


async def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def videoimport(*args: str, dsn: str) -> tuple[int, str, str]:
    uv = shutil.which("uv")
    assert uv, "uv must be on PATH"
    return await run(uv, "run", "videoimport", *args, "--database-url", dsn)


def write_config(path: Path, document: object) -> str:
    path.write_text(json.dumps(document))
    return str(path)


async def test_create_a_project_and_a_token_that_authorises_a_post(
    pg_dsn: str, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "config.json",
        {"metadata": [{"handle": "title", "type": "text", "required": True, "maxLength": 200}]},
    )
    code, out, err = await videoimport("project", "create", "acme", "--config", config, dsn=pg_dsn)
    assert code == 0, err
    assert "acme" in out

    code, token, err = await videoimport("token", "create", "--project", "acme", dsn=pg_dsn)
    assert code == 0, err
    token = token.strip()
    assert token.startswith("vit_") and "\n" not in token

    code, read_token, err = await videoimport(
        "token", "create", "--project", "acme", "--scope", "public-api:read", dsn=pg_dsn
    )
    assert code == 0, err

    async with running_api(pg_dsn) as api:
        response = await api.http.post(IMPORT_URL, json=batch(1), headers=auth(token))
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"id"}
        denied = await api.http.post(IMPORT_URL, json=batch(1), headers=auth(read_token.strip()))
        assert denied.status_code == 403

    conn = await asyncpg.connect(pg_dsn)
    try:
        stored = await project_config(conn, "acme")
        assert stored is not None
        assert stored.metadata == [
            MetadataField(handle="title", type="text", required=True, maxLength=200)
        ]
        # Tokens are stored hashed, never in the clear.
        hashes = await conn.fetch("SELECT token_hash FROM api_tokens")
        assert len(hashes) == 2
        assert all(token.encode() not in bytes(row["token_hash"]) for row in hashes)
    finally:
        await conn.close()


async def test_operator_mistakes_are_one_line_errors(pg_dsn: str, tmp_path: Path) -> None:
    code, _, err = await videoimport("project", "create", "acme", dsn=pg_dsn)
    assert code == 0, err

    code, out, err = await videoimport("project", "create", "acme", dsn=pg_dsn)
    assert (code, out) == (1, "")
    assert err.strip() == "videoimport: error: project acme already exists"

    code, out, err = await videoimport("token", "create", "--project", "nobody", dsn=pg_dsn)
    assert (code, out) == (1, "")
    assert err.strip() == "videoimport: error: unknown project nobody"

    bad = write_config(tmp_path / "bad.json", {"metadata": [{"handle": "n", "type": "integer"}]})
    code, _, err = await videoimport("project", "set-config", "acme", "--config", bad, dsn=pg_dsn)
    assert code == 1
    assert err.startswith("videoimport: error: invalid config")
    assert "metadata[0].type" in err
    assert len(err.strip().splitlines()) == 1

    good = write_config(tmp_path / "good.json", {"metadata": [{"handle": "n", "type": "number"}]})
    code, _, err = await videoimport(
        "project", "set-config", "nobody", "--config", good, dsn=pg_dsn
    )
    assert (code, err.strip()) == (1, "videoimport: error: unknown project nobody")
    code, _, err = await videoimport("project", "set-config", "acme", "--config", good, dsn=pg_dsn)
    assert code == 0, err
    conn = await asyncpg.connect(pg_dsn)
    try:
        stored = await project_config(conn, "acme")
    finally:
        await conn.close()
    assert stored is not None
    assert stored.metadata == [MetadataField(handle="n", type="number")]


async def test_the_installed_script_reads_the_database_from_the_environment(
    pg_dsn: str,
) -> None:
    assert VENV_SCRIPT.exists(), f"{VENV_SCRIPT} is not installed (uv sync)"
    env = {"VIDEOIMPORT_DATABASE_URL": pg_dsn}
    code, _, err = await run(str(VENV_SCRIPT), "project", "create", "newsroom", env=env)
    assert code == 0, err
    code, token, err = await run(
        str(VENV_SCRIPT), "token", "create", "--project", "newsroom", env=env
    )
    assert code == 0, err
    assert token.strip().startswith("vit_")
