"""Our signatures as a receiver checks them: with the ``standardwebhooks`` package."""

from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError
from videoimport_notifier import signing
from videoimport_notifier.settings import retired_variables
from videoimport_projects.webhook_secrets import new_secret

BODY = b'{"id":"abcdefghijkl","state":"success"}'


def signed(*secrets: str) -> dict[str, str]:
    keys = [signing.secret_key(s) for s in secrets]
    return signing.headers(keys, "whd_x", int(time.time()), BODY)


def test_a_receiver_verifies_with_its_secret_and_not_with_another() -> None:
    mine, other = new_secret(), new_secret()
    headers = signed(mine)
    assert Webhook(mine).verify(BODY, headers) == {"id": "abcdefghijkl", "state": "success"}
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(BODY, headers)


def test_with_two_secrets_either_verifies() -> None:
    old, new, stranger = new_secret(), new_secret(), new_secret()
    headers = signed(new, old)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(BODY, headers)


def test_the_retired_global_secret_is_named_never_shown() -> None:
    value = new_secret()
    retired = retired_variables({"VIDEOIMPORT_WEBHOOK_SECRET": value, "VIDEOIMPORT_X": "1"})
    assert list(retired) == ["VIDEOIMPORT_WEBHOOK_SECRET"]
    assert value not in retired["VIDEOIMPORT_WEBHOOK_SECRET"]
    assert retired_variables({"VIDEOIMPORT_WEBHOOK_SECRET": ""}) == {}
