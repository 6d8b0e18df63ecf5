"""Reading a batch file (JSON or CSV) into import request bodies: pure, no I/O.

A JSON file is the request body (``{"systemName"?, "webhook"?, "context"?,
"videos": [...]}``) or a bare list of videos. A CSV file has the columns ``url``,
``id``, ``fileName`` and any number of ``metadata.<key>`` columns: a dotted key
makes nested objects (``metadata.credit.name``), an empty cell is omitted, and
every cell is a string, except in a column named ``metadata.<key>:json``, whose
cells are parsed as JSON (numbers, booleans, lists, objects). So a value's type
depends on its column only, never on how a cell happens to look (``007`` stays
the string ``"007"``).

Only what is obviously wrong is refused here, with where it is (``line 12`` of a
CSV, ``videos[3]`` of a JSON file); everything else is the API's to judge.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import re
from typing import Any

import msgspec

MAX_BATCH = 1000
"""The API's default cap of videos per request."""
MAX_REPORTED = 20
CSV_REQUIRED = ("url", "id", "fileName")
JSON_TOP_KEYS = frozenset({"systemName", "webhook", "context", "videos"})
METADATA_COLUMN = re.compile(r"metadata\.([^.:]+(?:\.[^.:]+)*)(:json)?")
_BYTE_OFFSET = re.compile(r"\(byte (\d+)\)")


class Problem(msgspec.Struct, frozen=True):
    where: str
    reason: str


class BatchFileError(Exception):
    """Everything wrong with a batch file; ``str`` lists it, one problem a line."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.name = name
        self.problems = problems
        shown = [f"{name}: {p.where}: {p.reason}" for p in problems[:MAX_REPORTED]]
        if len(problems) > MAX_REPORTED:
            shown.append(f"{name}: {len(problems) - MAX_REPORTED} more problems not shown")
        super().__init__("\n".join(shown))


class BatchFile(msgspec.Struct, frozen=True, kw_only=True):
    """What a file asks for; the command line's flags override the top-level fields."""

    videos: list[dict[str, Any]]
    system_name: str | None = None
    webhook: str | None = None
    context: dict[str, Any] | None = None


def read_batch_file(name: str, raw: bytes) -> BatchFile:
    """``name`` picks the format: ``*.csv`` is CSV, ``*.json`` and ``-`` (stdin) JSON."""
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return _read_csv(name, raw)
    if lowered.endswith(".json") or name == "-":
        return _read_json(name, raw)
    raise BatchFileError(name, [Problem("file", "unknown format: name it *.json or *.csv")])


def request_bodies(
    batch_file: BatchFile,
    *,
    system_name: str,
    webhook: str | None,
    context: dict[str, Any] | None,
    batch_size: int,
) -> list[dict[str, Any]]:
    """One request body per batch of at most ``batch_size`` videos, in file order."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch size must be 1..{MAX_BATCH}")
    bodies = []
    for start in range(0, len(batch_file.videos), batch_size):
        body: dict[str, Any] = {
            "systemName": system_name,
            "videos": batch_file.videos[start : start + batch_size],
        }
        if webhook is not None:
            body["webhook"] = webhook
        if context is not None:
            body["context"] = context
        bodies.append(body)
    return bodies


def idempotency_key(api_version: str, body: dict[str, Any], index: int, run: str = "") -> str:
    """The same batch of the same file sent again gets the same key, so the API answers
    with the job it already made instead of importing twice. ``run`` lets a user start
    new jobs for an unchanged file on purpose."""
    canonical = msgspec.json.encode([api_version, run, index, body], order="sorted")
    return "videoimport-cli-" + hashlib.sha256(canonical).hexdigest()


def _where(raw: bytes, offset: int) -> str:
    line = raw.count(b"\n", 0, offset) + 1
    column = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line} column {column}"


def _read_json(name: str, raw: bytes) -> BatchFile:
    try:
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        message = str(exc)
        match = _BYTE_OFFSET.search(message)
        where = _where(raw, int(match.group(1))) if match else "file"
        reason = _BYTE_OFFSET.sub("", message).strip()
        if not raw.strip():
            where, reason = "file", "empty"
        raise BatchFileError(name, [Problem(where, reason)]) from exc
    if isinstance(document, list):
        document = {"videos": document}
    if not isinstance(document, dict):
        raise BatchFileError(name, [Problem("file", "must be a JSON object or a list of videos")])
    problems = [
        Problem(key, f"unknown field (expected one of {', '.join(sorted(JSON_TOP_KEYS))})")
        for key in document
        if key not in JSON_TOP_KEYS
    ]
    system_name = _optional(document, "systemName", str, problems)
    webhook = _optional(document, "webhook", str, problems)
    context = _optional(document, "context", dict, problems)
    videos = document.get("videos")
    if not isinstance(videos, list):
        problems.append(Problem("videos", "required: a list of videos"))
        raise BatchFileError(name, problems)
    places = [f"videos[{index}]" for index in range(len(videos))]
    for place, video in zip(places, videos, strict=True):
        problems.extend(_video_problems(place, video))
    problems.extend(_duplicates(videos, places))
    if not videos:
        problems.append(Problem("videos", "no videos"))
    if problems:
        raise BatchFileError(name, problems)
    return BatchFile(videos=videos, system_name=system_name, webhook=webhook, context=context)


def _optional(document: dict[str, Any], key: str, kind: type, problems: list[Problem]) -> Any:
    value = document.get(key)
    if value is not None and not isinstance(value, kind):
        expected = "an object" if kind is dict else "a string"
        problems.append(Problem(key, f"must be {expected}"))
        return None
    return value


def _video_problems(place: str, video: Any) -> list[Problem]:
    if not isinstance(video, dict):
        return [Problem(place, "must be an object")]
    problems = [
        Problem(f"{place}.{key}", "required: a non-empty string")
        for key in CSV_REQUIRED
        if not isinstance(video.get(key), str) or not video[key].strip()
    ]
    if not isinstance(video.get("metadata"), dict):
        problems.append(Problem(f"{place}.metadata", "required: an object ({} for none)"))
    return problems


def _duplicates(videos: list[Any], places: list[str]) -> list[Problem]:
    # The API refuses a batch with a repeated id, and the same id in two batches
    # would make two jobs race over one video: both are mistakes in the file.
    first: dict[str, str] = {}
    problems = []
    for place, video in zip(places, videos, strict=True):
        external_id = video.get("id") if isinstance(video, dict) else None
        if not isinstance(external_id, str) or not external_id.strip():
            continue  # already a problem of its own
        seen = first.setdefault(external_id, place)
        if seen != place:
            problems.append(Problem(place, f"duplicate id {external_id!r}, first at {seen}"))
    return problems


class _Column(msgspec.Struct, frozen=True):
    name: str
    path: tuple[str, ...]  # () for url, id and fileName
    is_json: bool = False


def _columns(header: list[str]) -> tuple[list[_Column], list[Problem]]:
    columns: list[_Column] = []
    problems: list[Problem] = []
    for position, cell in enumerate(header, start=1):
        name = cell.strip()
        match = METADATA_COLUMN.fullmatch(name)
        if name in CSV_REQUIRED:
            columns.append(_Column(name, ()))
        elif match:
            path = tuple(match.group(1).split("."))
            columns.append(_Column(name, path, is_json=match.group(2) is not None))
        else:
            problems.append(
                Problem(
                    f"line 1 column {position}",
                    f"unknown column {name!r}: use url, id, fileName or metadata.<key>[:json]",
                )
            )
    names = [c.name for c in columns]
    problems += [Problem("line 1", f"missing column {r!r}") for r in CSV_REQUIRED if r not in names]
    problems += [
        Problem("line 1", f"repeated column {n!r}")
        for n in sorted(set(names))
        if names.count(n) > 1
    ]
    paths = sorted(c.path for c in columns if c.path)
    for shorter, longer in itertools.pairwise(paths):
        if shorter != longer and longer[: len(shorter)] == shorter:
            problems.append(
                Problem("line 1", f"metadata.{'.'.join(shorter)} is both a value and an object")
            )
    return columns, problems


def _read_csv(name: str, raw: bytes) -> BatchFile:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchFileError(name, [Problem(_where(raw, exc.start), "not UTF-8")]) from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []  # (first line of the row, cells)
    line = 1
    try:
        for cells in reader:
            if cells:  # blank lines are skipped
                rows.append((line, cells))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise BatchFileError(name, [Problem(f"line {reader.line_num}", str(exc))]) from exc
    if not rows:
        raise BatchFileError(name, [Problem("file", "empty: expected a header line")])
    columns, problems = _columns(rows[0][1])
    if problems:
        raise BatchFileError(name, problems)
    videos: list[dict[str, Any]] = []
    places: list[str] = []
    for line, cells in rows[1:]:
        place = f"line {line}"
        if len(cells) != len(columns):
            problems.append(Problem(place, f"{len(cells)} cells, the header has {len(columns)}"))
            continue
        video, row_problems = _csv_video(place, columns, cells)
        problems.extend(row_problems)
        videos.append(video)
        places.append(place)
    problems.extend(_duplicates(videos, places))
    if not rows[1:]:
        problems.append(Problem("file", "no videos after the header"))
    if problems:
        raise BatchFileError(name, problems)
    return BatchFile(videos=videos)


def _csv_video(
    place: str, columns: list[_Column], cells: list[str]
) -> tuple[dict[str, Any], list[Problem]]:
    video: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    problems: list[Problem] = []
    for column, cell in zip(columns, cells, strict=True):
        if not column.path:
            if not cell.strip():
                problems.append(Problem(place, f"{column.name} is empty"))
            video[column.name] = cell
            continue
        if cell == "":
            continue
        value: Any = cell
        if column.is_json:
            try:
                value = msgspec.json.decode(cell)
            except msgspec.DecodeError:
                problems.append(Problem(place, f"{column.name}: not valid JSON: {cell[:40]!r}"))
                continue
        target = metadata
        for key in column.path[:-1]:
            target = target.setdefault(key, {})
        target[column.path[-1]] = value
    video["metadata"] = metadata
    return video, problems
