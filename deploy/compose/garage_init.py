"""Give the compose stack its bucket and two keys scoped to it, through Garage's admin API.

Run by the ``s3-init`` service of docker-compose.yml on every ``up``; each step looks
first, so a second run changes nothing. Standard library only.

- the bucket ``S3_BUCKET`` (global alias);
- the ingester's key (``S3_INGESTER_*``): read and write on that bucket only;
- the API's key (``S3_API_*``): read on that bucket only.

Neither key is owner of the bucket (no policy, CORS or website changes) nor may create
buckets, and each has no other bucket: the run fails if Garage says otherwise, for
instance when a key ID in .env is already used elsewhere. Secrets are never printed.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

KEY_ID = re.compile(r"GK[0-9a-f]{24,64}")
SECRET = re.compile(r"[0-9a-f]{64}")
READY_DEADLINE = 120.0
"""Seconds to wait for Garage to report a healthy cluster (its layout applied)."""

# (environment prefix, key name in Garage, permissions on the bucket)
KEYS = (
    ("S3_INGESTER", "videoimport-ingester", {"read": True, "write": True, "owner": False}),
    ("S3_API", "videoimport-api", {"read": True, "write": False, "owner": False}),
)


class SetupError(Exception):
    """Something an operator has to fix; printed as one line."""


class Admin:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def call(self, endpoint: str, query: dict[str, str] | None = None, body: Any = None) -> Any:
        """The endpoint's JSON answer; None for a 404 (no such bucket or key)."""
        url = f"{self.url}/v2/{endpoint}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            detail = exc.read().decode(errors="replace")[:500]
            raise SetupError(f"{endpoint}: HTTP {exc.code} {detail}") from None
        return json.loads(text) if text else {}


def wait_until_healthy(admin: Admin) -> None:
    deadline = time.monotonic() + READY_DEADLINE
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            health = admin.call("GetClusterHealth")
            last = str(health.get("status")) if health else "no answer"
            if last == "healthy":
                return
        except (OSError, SetupError) as exc:
            last = str(exc)
        time.sleep(1)
    raise SetupError(f"Garage not healthy after {READY_DEADLINE:.0f} s: {last}")


def ensure_bucket(admin: Admin, alias: str) -> str:
    info = admin.call("GetBucketInfo", {"globalAlias": alias})
    if info is None:
        info = admin.call("CreateBucket", body={"globalAlias": alias})
        print(f"created bucket {alias}")
    bucket_id: str = info["id"]
    return bucket_id


def ensure_key(admin: Admin, key_id: str, secret: str, name: str) -> None:
    info = admin.call("GetKeyInfo", {"id": key_id, "showSecretKey": "true"})
    if info is None:
        admin.call(
            "ImportKey", body={"accessKeyId": key_id, "secretAccessKey": secret, "name": name}
        )
        print(f"imported key {key_id} ({name})")
    elif info.get("secretAccessKey") != secret:
        raise SetupError(f"key {key_id} exists in Garage with another secret than .env gives")


def scope_key(admin: Admin, bucket_id: str, key_id: str, wanted: dict[str, bool]) -> None:
    """Exactly ``wanted`` on the bucket.

    Garage's Allow turns on the flags sent as true and leaves the others as they were;
    Deny turns off those sent as true. Hence both, with every flag sent.
    """
    target = {"bucketId": bucket_id, "accessKeyId": key_id}
    admin.call("AllowBucketKey", body={**target, "permissions": wanted})
    revoke = {flag: not on for flag, on in wanted.items()}
    admin.call("DenyBucketKey", body={**target, "permissions": revoke})


def check_scope(admin: Admin, bucket_id: str, key_id: str, wanted: dict[str, bool]) -> None:
    info = admin.call("GetKeyInfo", {"id": key_id})
    if info is None:
        raise SetupError(f"key {key_id} vanished during the setup")
    if info.get("permissions", {}).get("createBucket"):
        raise SetupError(
            f"key {key_id} may create buckets; deny it: garage key deny --create-bucket"
        )
    buckets = {bucket["id"]: bucket["permissions"] for bucket in info.get("buckets", [])}
    others = sorted(set(buckets) - {bucket_id})
    if others:
        raise SetupError(f"key {key_id} also has access to buckets {others}: use a key of its own")
    granted = {flag: bool(buckets.get(bucket_id, {}).get(flag)) for flag in wanted}
    if granted != wanted:
        raise SetupError(f"key {key_id} has {granted} on the bucket, expected {wanted}")


def required(name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SetupError(f"{name} is not set")
    if pattern is not None and not pattern.fullmatch(value):
        raise SetupError(f"{name} does not have Garage's format (see .env.example)")
    return value


def main() -> None:
    admin = Admin(required("GARAGE_ADMIN_URL"), required("GARAGE_ADMIN_TOKEN"))
    bucket = required("S3_BUCKET")
    keys = [
        (required(f"{prefix}_ACCESS_KEY_ID", KEY_ID), required(f"{prefix}_SECRET_KEY", SECRET))
        for prefix, _, _ in KEYS
    ]
    if keys[0][0] == keys[1][0]:
        raise SetupError("the ingester and the API need two different access keys")
    wait_until_healthy(admin)
    bucket_id = ensure_bucket(admin, bucket)
    for (key_id, secret), (_, name, wanted) in zip(keys, KEYS, strict=True):
        ensure_key(admin, key_id, secret, name)
        scope_key(admin, bucket_id, key_id, wanted)
        check_scope(admin, bucket_id, key_id, wanted)
    print(f"bucket {bucket}: ingester key read+write, API key read-only")


if __name__ == "__main__":
    try:
        main()
    except SetupError as exc:
        print(f"s3-init: {exc}", file=sys.stderr)
        sys.exit(1)
