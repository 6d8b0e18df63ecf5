"""``videoimport token list|revoke|create --expires-in-days`` and ``videoimport
webhook-secret show|rotate`` as an operator runs them, against a real database and
the API running in-process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from videoimport_eventlog import schema
from videoimport_projects import hash_token, token_id, webhook_secrets

from .api_harness import IMPORT_URL, auth, batch, running_api
from .test_cli_tokens import videoimport

pytestmark = pytest.mark.integration


async def ok(*args: str, dsn: str) -> str:
    code, out, err = await videoimport(*args, dsn=dsn)
    assert code == 0, err
    return out


async def one_line_error(*args: str, dsn: str) -> str:
    code, out, err = await videoimport(*args, dsn=dsn)
    assert (code, out) == (1, ""), err
    lines = [line for line in err.splitlines() if line.startswith("videoimport: error: ")]
    assert len(lines) == 1, err
    return lines[0].removeprefix("videoimport: error: ")


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await schema.migrate(conn)
    return conn


async def test_show_and_rotate_print_exactly_the_secret(pg_dsn: str) -> None:
    await ok("project", "create", "acme", dsn=pg_dsn)
    conn = await connect(pg_dsn)
    try:
        [first] = await webhook_secrets.valid_secrets(conn, "acme")
        assert await ok("webhook-secret", "show", "--project", "acme", dsn=pg_dsn) == (
            first.secret + "\n"
        )

        before = datetime.now(UTC)
        rotated = await ok("webhook-secret", "rotate", "--project", "acme", dsn=pg_dsn)
        new, old = await webhook_secrets.valid_secrets(conn, "acme")
        assert rotated == new.secret + "\n"
        assert (new.expires_at, old.secret) == (None, first.secret)
        assert old.expires_at is not None
        overlap = old.expires_at - before
        assert timedelta(hours=24) - timedelta(minutes=1) < overlap < timedelta(hours=24, minutes=1)
        assert await ok("webhook-secret", "show", "--project", "acme", dsn=pg_dsn) == rotated

        shorter = await ok(
            "webhook-secret", "rotate", "--project", "acme", "--overlap-hours", "2", dsn=pg_dsn
        )
        newest, *older = await webhook_secrets.valid_secrets(conn, "acme")
        assert shorter == newest.secret + "\n"
        # Both earlier secrets now end within the 2 h (never later than they would have).
        assert [s.secret for s in older] == [new.secret, first.secret]
        assert all(
            s.expires_at is not None and s.expires_at < before + timedelta(hours=2, minutes=1)
            for s in older
        )

        # No overlap: the previous secrets stop at once (a leaked secret).
        now_only = await ok(
            "webhook-secret", "rotate", "--project", "acme", "--overlap-hours", "0", dsn=pg_dsn
        )
        [alone] = await webhook_secrets.valid_secrets(conn, "acme")
        assert now_only == alone.secret + "\n"
        assert len({first.secret, new.secret, newest.secret, alone.secret}) == 4
    finally:
        await conn.close()

    assert await one_line_error("webhook-secret", "show", "--project", "nobody", dsn=pg_dsn) == (
        "unknown project nobody"
    )
    assert await one_line_error("webhook-secret", "rotate", "--project", "nobody", dsn=pg_dsn) == (
        "unknown project nobody"
    )


async def test_token_list_shows_ids_scopes_and_dates_never_a_token(pg_dsn: str) -> None:
    await ok("project", "create", "acme", dsn=pg_dsn)
    await ok("project", "create", "other", dsn=pg_dsn)
    writer = (await ok("token", "create", "--project", "acme", dsn=pg_dsn)).strip()
    reader = (
        await ok(
            "token",
            "create",
            "--project",
            "acme",
            "--scope",
            "public-api:read",
            "--expires-in-days",
            "7",
            dsn=pg_dsn,
        )
    ).strip()
    elsewhere = (await ok("token", "create", "--project", "other", dsn=pg_dsn)).strip()
    await ok("token", "revoke", token_id(hash_token(writer)), dsn=pg_dsn)

    listing = await ok("token", "list", "--project", "acme", dsn=pg_dsn)
    for token in (writer, reader, elsewhere):
        assert token not in listing
        assert token.removeprefix("vit_")[:8] not in listing
        assert hash_token(token).hex() not in listing  # only a prefix of the hash
    header, *rows = listing.strip().split("\n")
    assert header.split("\t") == ["id", "scopes", "created_at", "expires_at", "revoked_at"]
    by_id = {row.split("\t")[0]: row.split("\t") for row in rows}
    assert set(by_id) == {token_id(hash_token(writer)), token_id(hash_token(reader))}
    _, scopes, created, expires, revoked = by_id[token_id(hash_token(writer))]
    assert (scopes, expires) == ("public-api:write", "-")
    assert datetime.fromisoformat(revoked) >= datetime.fromisoformat(created)
    _, scopes, created, expires, revoked = by_id[token_id(hash_token(reader))]
    assert (scopes, revoked) == ("public-api:read", "-")
    lifetime = datetime.fromisoformat(expires) - datetime.fromisoformat(created)
    assert timedelta(days=7) - timedelta(minutes=1) < lifetime < timedelta(days=7, minutes=1)

    assert await one_line_error("token", "list", "--project", "nobody", dsn=pg_dsn) == (
        "unknown project nobody"
    )


async def test_a_revoked_token_gets_401_at_once(pg_dsn: str) -> None:
    await ok("project", "create", "acme", dsn=pg_dsn)
    token = (await ok("token", "create", "--project", "acme", dsn=pg_dsn)).strip()
    kept = (await ok("token", "create", "--project", "acme", dsn=pg_dsn)).strip()
    ident = token_id(hash_token(token))
    async with running_api(pg_dsn) as api:
        accepted = await api.http.post(IMPORT_URL, json=batch(1), headers=auth(token))
        assert accepted.status_code == 200, accepted.text

        out = await ok("token", "revoke", ident, dsn=pg_dsn)
        assert out.strip() == f"revoked token {ident} of project acme"
        # The same API process, the very next request: no cache keeps it alive.
        refused = await api.http.post(IMPORT_URL, json=batch(1), headers=auth(token))
        assert refused.status_code == 401, refused.text
        status = await api.http.get(
            IMPORT_URL + "/status", params={"id": accepted.json()["id"]}, headers=auth(token)
        )
        assert status.status_code == 401
        # Other tokens of the project are untouched.
        still = await api.http.post(IMPORT_URL, json=batch(1), headers=auth(kept))
        assert still.status_code == 200, still.text

    again = await ok("token", "revoke", ident[:8].upper(), dsn=pg_dsn)
    assert again.startswith(f"token {ident} of project acme was already revoked at ")
    assert await one_line_error("token", "revoke", "0" * 16, dsn=pg_dsn) == f"no token {'0' * 16}"
    assert "not a token id" in await one_line_error("token", "revoke", token, dsn=pg_dsn)
    assert "not a token id" in await one_line_error("token", "revoke", "abc", dsn=pg_dsn)


async def test_an_expired_token_gets_401(pg_dsn: str) -> None:
    await ok("project", "create", "acme", dsn=pg_dsn)
    token = (
        await ok("token", "create", "--project", "acme", "--expires-in-days", "1", dsn=pg_dsn)
    ).strip()
    assert token.startswith("vit_") and "\n" not in token
    conn = await connect(pg_dsn)
    try:
        async with running_api(pg_dsn) as api:
            accepted = await api.http.post(IMPORT_URL, json=batch(1), headers=auth(token))
            assert accepted.status_code == 200, accepted.text
            # A day passes: the expiry moves into the past, as time would.
            moved = await conn.execute(
                "UPDATE api_tokens SET expires_at = now() - interval '1 second'"
                " WHERE token_hash = $1",
                hash_token(token),
            )
            assert moved == "UPDATE 1"
            refused = await api.http.post(IMPORT_URL, json=batch(1), headers=auth(token))
            assert refused.status_code == 401, refused.text
    finally:
        await conn.close()
