"""A project's config (metadata fields, size and duration limits) and the pure check of a
video's metadata against it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

FieldType = Literal["text", "number", "boolean", "date", "textList"]

UNKNOWN_KEYS_SHOWN = 3
"""How many keys the config does not name a failure reason lists by name."""
SHOWN_KEY_CHARS = 40


class MetadataField(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    handle: str
    type: FieldType
    required: bool = False
    maxLength: int | None = None


class ProjectConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    metadata: list[MetadataField] = []
    allow_unknown_metadata: bool = False
    """When false, a metadata key the config does not name fails the video."""
    max_file_size: Annotated[int, msgspec.Meta(gt=0)] | None = None
    """Bytes; a larger video fails ``too_large`` (under the deployment's own limit,
    which applies too). None: only the deployment's limit."""
    max_duration: Annotated[float, msgspec.Meta(gt=0)] | None = None
    """Seconds; a longer video (as probed) fails ``too_long``. None: no limit."""


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


def _unknown_keys_error(unknown: list[str]) -> str:
    """One bounded line for the keys the config does not name, however many there are."""
    if len(unknown) == 1:
        return f"metadata.{_shown(unknown[0])}: not in the project's metadata config"
    names = ", ".join(repr(_shown(key)) for key in unknown[:UNKNOWN_KEYS_SHOWN])
    more = ", ..." if len(unknown) > UNKNOWN_KEYS_SHOWN else ""
    return (
        f"metadata: {len(unknown)} keys not in the project's metadata config (first: {names}{more})"
    )


def _shown(key: str) -> str:
    return key if len(key) <= SHOWN_KEY_CHARS else key[:SHOWN_KEY_CHARS] + "…"


def metadata_errors(config: ProjectConfig, metadata: dict[str, Any]) -> list[str]:
    """Every way ``metadata`` misfits the config: ``metadata.<handle>: <why>`` per configured
    field, then at most one line for all keys the config does not name (at most
    ``UNKNOWN_KEYS_SHOWN`` of them by name), so the list stays short whatever the input."""
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
        unknown = sorted(key for key in metadata if key not in known)
        if unknown:
            errors.append(_unknown_keys_error(unknown))
    return errors
