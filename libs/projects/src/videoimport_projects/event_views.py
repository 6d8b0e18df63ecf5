"""How logged events read to a person or a script (pure).

``json_line``: one event as one line of JSON, ``data`` verbatim (events of a
type this code does not know print too). ``timeline``: one video's events as
rows a person can follow, each request compared with the one before it.
``render_table``: rows as aligned plain text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from videoimport_eventlog.logged import LoggedEvent


def utc_timestamp(moment: datetime) -> str:
    """``2026-11-28T09:30:00.000000Z``: always UTC, always microseconds (sorts as text)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def json_line(event: LoggedEvent) -> bytes:
    data = event.data
    if b"\n" in data or b"\r" in data:
        # JSON Lines allows no line break; one can only be whitespace between tokens.
        data = msgspec.json.encode(msgspec.json.decode(data))
    return msgspec.json.encode(
        {
            "position": event.position,
            "event_id": str(event.event_id),
            "stream_id": event.stream_id,
            "stream_version": event.stream_version,
            "type": event.event_type,
            "schema_version": event.schema_version,
            "project": event.project,
            "correlation_id": event.correlation_id,
            "causation_id": event.causation_id,
            "occurred_at": utc_timestamp(event.occurred_at),
            "recorded_at": utc_timestamp(event.recorded_at),
            "data": msgspec.Raw(data),
        }
    )


TIMELINE_HEADERS = ("position", "occurred (UTC)", "job", "event", "media id", "details")


@dataclass(frozen=True)
class TimelineRow:
    position: int
    occurred: str
    job: str
    event: str
    media_id: str
    details: str

    def cells(self) -> tuple[str, ...]:
        return (
            str(self.position),
            self.occurred,
            self.job,
            self.event,
            self.media_id,
            self.details,
        )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _request_changes(previous: dict[str, Any] | None, request: dict[str, Any]) -> str:
    url, file_name = request.get("url"), request.get("file_name")
    if previous is None:
        return f"url {url}, fileName {file_name!r}"
    changes = []
    if previous.get("url") != url:
        changes.append(f"url {previous.get('url')} -> {url}")
    if previous.get("file_name") != file_name:
        changes.append(f"fileName {previous.get('file_name')!r} -> {file_name!r}")
    if previous.get("metadata") != request.get("metadata"):
        changes.append("metadata changed")
    return "; ".join(changes) or "same url, fileName and metadata"


def _result(event_type: str, data: dict[str, Any]) -> tuple[str, str]:
    """What a result event is called, and its details."""
    if event_type == "VideoImported":
        if data.get("downloaded", True):
            size = data.get("size")
            stored = f"downloaded {data.get('mime_type')}, " + (
                f"{size:,} bytes" if isinstance(size, int) else "size unknown"
            )
        else:
            stored = "stored bytes kept (fileName or metadata only)"
        return f"imported ({data.get('outcome')})", stored
    if event_type == "VideoImportSkipped":
        return "skipped", f"{data.get('code')}: {data.get('reason')}"
    if event_type == "VideoImportFailed":
        return "failed", f"{data.get('code')}: {data.get('reason')}"
    if event_type == "MediaObjectDeleted":
        return "object deleted", f"{data.get('reason')}: {data.get('storage_key')}"
    return event_type, ""


def timeline(events: Sequence[LoggedEvent]) -> list[TimelineRow]:
    """One video's events (in position order) as a history."""
    rows: list[TimelineRow] = []
    last_request: dict[str, Any] | None = None
    for event in events:
        data = msgspec.json.decode(event.data)
        if not isinstance(data, dict):
            data = {}
        if event.event_type == "VideoImportRequested":
            label, details = "requested", _request_changes(last_request, data)
            last_request = data
        else:
            label, details = _result(event.event_type, data)
        rows.append(
            TimelineRow(
                position=event.position,
                occurred=event.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                job=str(data.get("job_id") or "-"),
                event=label,
                media_id=str(data.get("media_id") or "-"),
                details=_one_line(details),
            )
        )
    return rows


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, a rule under the headers, no trailing blanks."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    rule = ["-" * w for w in widths]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in (headers, rule, *rows)
    ]
    return "\n".join(lines)
