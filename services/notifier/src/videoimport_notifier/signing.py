"""Standard Webhooks signatures (https://www.standardwebhooks.com/), pure.

The receiver verifies ``webhook-signature`` = ``v1,<base64 HMAC-SHA256>`` over
``{webhook-id}.{webhook-timestamp}.{raw body}``, keyed with the base64-decoded
part of the ``whsec_`` secret. The timestamp is the time of the attempt, so
each attempt is signed anew over the same body bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise ValueError("webhook secret must be whsec_ followed by base64") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(key: bytes | None, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers; without a key the request goes unsigned."""
    result = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if key is not None:
        result["webhook-signature"] = signature(key, msg_id, timestamp, body)
    return result
