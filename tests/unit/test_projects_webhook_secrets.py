"""Webhook secrets and token ids, without a database: format, strength, never shown."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from videoimport_projects import token_id
from videoimport_projects.cli import main
from videoimport_projects.webhook_secrets import (
    MIN_KEY_BYTES,
    WebhookSecret,
    new_secret,
    secret_key,
)


def test_a_new_secret_is_whsec_and_base64_of_32_random_bytes() -> None:
    made = {new_secret() for _ in range(100)}
    assert len(made) == 100
    for secret in made:
        assert secret.startswith("whsec_")
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        assert len(key) == 32 >= MIN_KEY_BYTES
        assert secret_key(secret) == key


def test_the_secret_stays_out_of_reprs() -> None:
    secret = new_secret()
    row = WebhookSecret(
        id=7, project="acme", secret=secret, created_at=datetime.now(UTC), expires_at=None
    )
    assert secret not in repr(row) and secret.removeprefix("whsec_") not in repr(row)


def test_a_token_id_is_the_start_of_its_hash() -> None:
    digest = hashlib.sha256(b"vit_abc").digest()
    assert token_id(digest) == digest.hex()[:16]


@pytest.mark.parametrize(
    "argv",
    [
        ["token", "create", "--project", "p", "--expires-in-days", "0"],
        ["token", "create", "--project", "p", "--expires-in-days", "-3"],
        ["token", "create", "--project", "p", "--expires-in-days", "1.5"],
        ["webhook-secret", "rotate", "--project", "p", "--overlap-hours", "-1"],
        ["webhook-secret", "rotate", "--project", "p", "--overlap-hours", "nan"],
        ["webhook-secret", "show"],
        ["token", "revoke"],
    ],
)
def test_bad_arguments_are_usage_errors_before_any_database(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*argv, "--database-url", "postgresql://0.0.0.0:1/x"])
    assert caught.value.code == 2
