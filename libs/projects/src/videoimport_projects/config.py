"""A project's metadata config and the pure check of a video's metadata against it."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

FieldType = Literal["text", "number", "boolean", "date", "textList"]


class MetadataField(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    handle: str
    type: FieldType
    required: bool = False
    maxLength: int | None = None


class ProjectConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    metadata: list[MetadataField] = []
    allow_unknown_metadata: bool = False
    """When false, a metadata key the config does not name fails the video."""


def parse_config(raw: bytes | str) -> ProjectConfig:
    """Decode and check a config; raises ``ValueError`` naming the problem."""
    try:
        config = msgspec.json.decode(raw, type=ProjectConfig)
    except msgspec.ValidationError as exc:
        raise ValueError(f"project config: {exc}") from exc
    handles = [f.handle for f in config.metadata]
    duplicates = sorted({h for h in handles if handles.count(h) > 1})
    if duplicates:
        raise ValueError(f"project config: duplicate metadata handle {duplicates[0]!r}")
    return config


def encode_config(config: ProjectConfig) -> bytes:
    return msgspec.json.encode(config)


def _is_date(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _type_error(spec: MetadataField, value: Any) -> str | None:
    if spec.type == "text":
        if not isinstance(value, str):
            return "must be a string"
        if spec.maxLength is not None and len(value) > spec.maxLength:
            return f"longer than {spec.maxLength} characters"
    elif spec.type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
    elif spec.type == "boolean":
        if not isinstance(value, bool):
            return "must be a boolean"
    elif spec.type == "date":
        if not isinstance(value, str) or not _is_date(value):
            return "must be an ISO 8601 date"
    elif spec.type == "textList":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "must be a list of strings"
        if spec.maxLength is not None and any(len(v) > spec.maxLength for v in value):
            return f"has an entry longer than {spec.maxLength} characters"
    return None


def metadata_errors(config: ProjectConfig, metadata: dict[str, Any]) -> list[str]:
    """Every way ``metadata`` misfits the config, each as ``metadata.<handle>: <why>``."""
    errors: list[str] = []
    known = {f.handle for f in config.metadata}
    for spec in config.metadata:
        value = metadata.get(spec.handle)
        if value is None:
            if spec.required:
                errors.append(f"metadata.{spec.handle}: required")
            continue
        problem = _type_error(spec, value)
        if problem:
            errors.append(f"metadata.{spec.handle}: {problem}")
    if not config.allow_unknown_metadata:
        errors.extend(
            f"metadata.{key}: not in the project's metadata config"
            for key in sorted(metadata)
            if key not in known
        )
    return errors
