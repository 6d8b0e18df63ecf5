"""Standard Webhooks signatures (https://www.standardwebhooks.com/), pure.

The receiver verifies ``webhook-signature`` = ``v1,<base64 HMAC-SHA256>`` over
``{webhook-id}.{webhook-timestamp}.{raw body}``, keyed with the base64-decoded
part of the ``whsec_`` secret. The header carries one ``v1,<sig>`` per key,
space-separated (Standard Webhooks allows several), so during a rotation overlap
a receiver holding either the old or the new secret verifies the request. The
timestamp is the time of the attempt, so each attempt is signed anew over the
same body bytes. There is no unsigned request: ``headers`` refuses an empty list
of keys, and ``secret_key`` refuses keys under 24 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from videoimport_projects.webhook_secrets import MIN_KEY_BYTES, SECRET_PREFIX, secret_key

__all__ = ["MIN_KEY_BYTES", "SECRET_PREFIX", "headers", "secret_key", "signature"]


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers, signed with every key (at least one)."""
    if not keys:
        raise ValueError("a webhook is never sent unsigned: no key given")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(k, msg_id, timestamp, body) for k in keys),
    }
