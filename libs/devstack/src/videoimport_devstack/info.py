"""StackInfo: how to reach the running servers; stored as ``<data_dir>/stack.json``."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from .errors import StackNotRunningError

STACK_FILE = "stack.json"


@dataclass(frozen=True)
class StackInfo:
    """Connection details of a running local stack."""

    postgres_dsn: str
    kafka_bootstrap: str  # "127.0.0.1:PORT"
    s3_endpoint: str  # "http://127.0.0.1:PORT"
    s3_access_key: str
    s3_secret_key: str
    s3_bucket: str
    s3_region: str  # "us-east-1"

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> StackInfo:
        return msgspec.json.decode(data, type=cls)

    def env(self) -> dict[str, str]:
        """Environment variables for services and tools talking to this stack."""
        return {
            "VIDEOIMPORT_POSTGRES_DSN": self.postgres_dsn,
            "VIDEOIMPORT_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "VIDEOIMPORT_S3_ENDPOINT": self.s3_endpoint,
            "VIDEOIMPORT_S3_BUCKET": self.s3_bucket,
            "VIDEOIMPORT_S3_REGION": self.s3_region,
            "AWS_ACCESS_KEY_ID": self.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3_secret_key,
            "AWS_DEFAULT_REGION": self.s3_region,
        }


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_stack_file(data_dir: Path, info: StackInfo, owner_pid: int, pids: dict[str, int]) -> Path:
    """Atomically write ``stack.json``: the StackInfo fields plus who owns the servers."""
    payload: dict[str, Any] = {**info.to_dict(), "owner_pid": owner_pid, "pids": pids}
    path = data_dir / STACK_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(payload)) + b"\n")
    os.replace(tmp, path)
    return path


def remove_stack_file(data_dir: Path) -> None:
    (data_dir / STACK_FILE).unlink(missing_ok=True)


def read_stack_info(data_dir: Path) -> StackInfo:
    """The StackInfo of the stack running on ``data_dir``.

    Raises StackNotRunningError when there is no ``stack.json`` or the process that started
    the stack (and owns its servers) is gone.
    """
    path = Path(data_dir) / STACK_FILE
    hint = f"start it with `python -m videoimport_devstack up --data-dir {data_dir}`"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StackNotRunningError(f"no local stack is running on {data_dir}: {hint}") from None
    try:
        payload = msgspec.json.decode(raw, type=dict[str, Any])
        info = msgspec.convert(
            {f.name: payload.get(f.name) for f in dataclasses.fields(StackInfo)}, StackInfo
        )
    except msgspec.ValidationError as exc:
        raise StackNotRunningError(f"{path} is not a valid stack file ({exc}): {hint}") from exc
    owner = payload.get("owner_pid")
    if isinstance(owner, int) and not _pid_alive(owner):
        raise StackNotRunningError(
            f"{path} is stale: the process that started the stack (pid {owner}) is gone: {hint}"
        )
    return info
