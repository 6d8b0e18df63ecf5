"""Job ids: short, random, URL-safe."""

from __future__ import annotations

import secrets

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
JOB_ID_LENGTH = 12


def new_job_id() -> str:
    # 60 bits of randomness; a collision still only costs a retry (stream conflict).
    return "".join(secrets.choice(ALPHABET) for _ in range(JOB_ID_LENGTH))
