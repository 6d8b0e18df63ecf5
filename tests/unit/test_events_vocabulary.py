"""The shared vocabulary: stream names as the log stores them, states, codes, routing."""

from __future__ import annotations

import ast
import json
import uuid
from pathlib import Path
from typing import get_args

import msgspec
import pytest
import videoimport_events as events
from videoimport_events import limits, vocabulary

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "libs" / "events" / "examples"
VOCABULARY = REPO / "libs" / "events" / "src" / "videoimport_events" / "vocabulary.py"


def example_files() -> list[tuple[str, Path]]:
    """(type name, file) of every example: ``<Type>.json`` or ``<Type>/<case>.json``."""
    flat = [(p.stem, p) for p in EXAMPLES.glob("*.json")]
    nested = [(p.parent.name, p) for p in EXAMPLES.glob("*/*.json")]
    return sorted(flat + nested)


EXAMPLE_FILES = example_files()
EXAMPLE_IDS = [f"{name}:{path.stem}" for name, path in EXAMPLE_FILES]


def example(path: Path) -> tuple[events.Envelope, bytes]:
    """The example's envelope and its ``data`` as JSON bytes."""
    raw = path.read_bytes()
    return events.decode_envelope(raw), json.dumps(json.loads(raw)["data"]).encode()


def first_example(name: str) -> events.Envelope:
    return example(next(p for n, p in EXAMPLE_FILES if n == name))[0]


# Stream names: byte for byte what the services wrote before the vocabulary existed.


def test_stream_names_keep_their_stored_format() -> None:
    request = uuid.UUID("6f1c2a9e-3b7d-4e58-9a0c-2d4e6f8a1b3c")
    assert events.job_stream("k3v9q2m8x7ab") == "job-k3v9q2m8x7ab"
    assert events.video_stream("k3v9q2m8x7ab", 0) == "job-k3v9q2m8x7ab/video-0"
    assert events.video_stream("abcdefgh2345", 12) == "job-abcdefgh2345/video-12"
    assert (
        events.redelivery_stream("k3v9q2m8x7ab", request)
        == "job-k3v9q2m8x7ab/redelivery-6f1c2a9e-3b7d-4e58-9a0c-2d4e6f8a1b3c"
    )
    assert events.webhook_stream("whd_2c5b1e0f9a7d4c3b") == "webhook-whd_2c5b1e0f9a7d4c3b"


def test_the_deletion_stream_is_the_one_the_ingester_always_derived() -> None:
    key = "news/m1/ev-1.mp4"
    old = uuid.uuid5(uuid.NAMESPACE_URL, f"videoimport:media-object:{key}")
    assert events.media_deletion_stream("m1", key) == f"media-m1/deleted-{old}"
    assert events.media_deletion_stream("m1", key) != events.media_deletion_stream("m1", key + "x")
    # A name logged by the first release, pinned.
    assert (
        events.media_deletion_stream(
            "m4xq7c2kd9w3hz5tb6ne",
            "demo/m4xq7c2kd9w3hz5tb6ne/5b1f0c7e-2d55-4c3b-9a51-7d0f6f0f2a11.mp4",
        )
        == "media-m4xq7c2kd9w3hz5tb6ne/deleted-bda61eff-f97b-56c6-8f35-cbe7f9679e0d"
    )


def test_there_are_examples() -> None:
    assert {name for name, _ in EXAMPLE_FILES} == set(events.EVENT_TYPES)


@pytest.mark.parametrize(("name", "path"), EXAMPLE_FILES, ids=EXAMPLE_IDS)
def test_every_example_stream_has_the_vocabulary_format(name: str, path: Path) -> None:
    envelope, _ = example(path)
    data, job_id = envelope.data, envelope.correlation_id
    if isinstance(data, events.MediaObjectDeleted):
        assert envelope.stream.startswith(f"media-{data.media_id}/deleted-")
        return
    built = {
        events.job_stream(job_id),
        events.video_stream(job_id, getattr(data, "index", 0)),
        events.webhook_stream(getattr(data, "delivery_id", "")),
        events.cancellation_stream(job_id),
    }
    if isinstance(data, events.WebhookRedeliveryRequested):
        request = uuid.UUID(envelope.stream.rpartition("/redelivery-")[2])
        built.add(events.redelivery_stream(job_id, request))
    assert envelope.stream in built


def test_a_video_stream_parses_back() -> None:
    for job_id, index in (("k3v9q2m8x7ab", 0), ("abcdefgh2345", 7), ("j", 10_000)):
        stream = events.video_stream(job_id, index)
        assert events.parse_video_stream(stream) == (job_id, index)
        assert events.job_of_stream(stream) == job_id
    for other in (
        "job-k3v9",
        "job-k3v9/video-",
        "job-k3v9/video-01",
        "job-k3v9/video--1",
        "job-k3v9/video-+1",
        "job-k3v9/video-1/x",
        "job-k3v9/video-\u0661",  # an Arabic-Indic digit: isdigit, but not what we write
        "job-k3v9/redelivery-6f1c",
        "job-/video-1",
        "webhook-whd_1",
        "media-m1/deleted-x",
    ):
        assert events.parse_video_stream(other) is None, other


def test_the_job_of_a_stream() -> None:
    request = uuid.uuid4()
    assert events.job_of_stream(events.job_stream("k3v9")) == "k3v9"
    assert events.job_of_stream(events.redelivery_stream("k3v9", request)) == "k3v9"
    for other in ("job-", "job-/video-1", "webhook-whd_1", "media-m1/deleted-x", "jobs-k3v9"):
        assert events.job_of_stream(other) is None, other


# States and codes.


def test_failure_codes_are_one_vocabulary_importable_from_limits() -> None:
    assert limits.FailureCode is vocabulary.FailureCode is events.FailureCode
    assert limits.FAILURE_CODES is vocabulary.FAILURE_CODES is events.FAILURE_CODES
    assert set(get_args(events.FailureCode)) == events.FAILURE_CODES
    assert {"invalid_metadata", "forbidden_address", "internal_error"} <= events.FAILURE_CODES


def test_states() -> None:
    assert set(get_args(events.VideoState)) == {"success", "skipped", "failed"}
    assert set(get_args(events.JobState)) == {"success", "failed"}
    assert set(get_args(events.JobStatus)) == {"started", *get_args(events.JobState)}
    assert set(get_args(events.WebhookState)) == {"pending", "delivered", "failed"}
    assert set(get_args(events.Family)) == set(events.TOPICS)


def test_job_completed_states_are_unchanged_in_the_schema() -> None:
    schema = msgspec.json.schema(events.JobCompleted)
    state = schema["$defs"]["JobCompleted"]["properties"]["state"]
    assert sorted(state["enum"]) == ["failed", "success"]


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("VideoImported", "success"),
        ("VideoImportSkipped", "skipped"),
        ("VideoImportFailed", "failed"),
    ],
)
def test_the_state_of_a_terminal_video_event(name: str, state: str) -> None:
    event = first_example(name).data
    assert isinstance(event, events.TERMINAL_VIDEO_EVENTS)
    assert events.video_state(event) == state


# Routing: the rule the relay applies to a type it does not know.


@pytest.mark.parametrize(("name", "path"), EXAMPLE_FILES, ids=EXAMPLE_IDS)
def test_every_known_type_follows_the_routing_rule(name: str, path: Path) -> None:
    """So an unknown type routed by the rule lands where its writer's code would send it."""
    envelope, data = example(path)
    family, key = events.route(envelope.stream, data)
    assert family == type(envelope.data).family
    assert events.TOPICS[family] == events.topic_for(type(envelope.data))
    assert key == envelope.data.partition_key()


def test_stream_families() -> None:
    assert events.stream_family("job-k3v9") == "jobs"
    assert events.stream_family("job-k3v9/redelivery-6f1c") == "jobs"
    assert events.stream_family("job-k3v9/anything-new-1") == "jobs"
    assert events.stream_family("job-k3v9/video-0") == "videos"
    assert events.stream_family("job-k3v9/video-0/renditions-1") == "videos"
    assert events.stream_family("media-m1/deleted-x") == "videos"
    assert events.stream_family("webhook-whd_1") == "webhooks"
    for unknown in ("future-j1", "job-", "media-", "webhook-", "jobs-k3v9", ""):
        assert events.stream_family(unknown) is None, unknown


def test_an_unknown_type_is_keyed_by_its_family_identity() -> None:
    video = (
        b'{"type": "VideoTranscoded", "job_id": "j1", "project": "acme", "index": 1,'
        b' "system_name": "archive", "external_id": "ext-1", "renditions": [720, 1080]}'
    )
    assert events.route("job-j1/video-1", video) == (
        "videos",
        events.video_key("acme", "archive", "ext-1"),
    )
    job = b'{"type": "JobArchived", "job_id": "j1", "project": "acme"}'
    assert events.route("job-j1/archive-0", job) == ("jobs", "j1")
    hook = b'{"type": "WebhookAbandoned", "job_id": "j1", "delivery_id": "whd_1"}'
    assert events.route("webhook-whd_1", hook) == ("webhooks", "j1")


def test_what_cannot_be_routed_raises() -> None:
    with pytest.raises(events.UnroutableEvent, match="future-j1"):
        events.route("future-j1", b'{"job_id": "j1"}')
    with pytest.raises(msgspec.ValidationError, match="external_id"):
        events.route("job-j1/video-0", b'{"project": "acme", "system_name": "archive"}')
    with pytest.raises(msgspec.ValidationError, match="job_id"):
        events.route("webhook-whd_1", b'{"delivery_id": "whd_1"}')
    with pytest.raises(msgspec.ValidationError):
        events.route("job-j1", b'"not an object"')


# Nobody spells the vocabulary again.

SOURCES = sorted(
    p
    for pattern in ("services/*/src/**/*.py", "libs/*/src/**/*.py")
    for p in REPO.glob(pattern)
    if p != VOCABULARY
)
SQL_FRAGMENTS = ("'job-'", "'webhook-'", "'media-'")
NAME_FRAGMENTS = ("/video-", "/redelivery-", "/deleted-")
VOCABULARIES = {
    name: frozenset(get_args(getattr(vocabulary, name)))
    for name in ("FailureCode", "VideoState", "JobState", "JobStatus", "WebhookState", "Family")
}


def _strings(tree: ast.AST) -> list[tuple[int, str, bool]]:
    """(line, text, starts an f-string before a placeholder) of every string that is
    not a docstring."""
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    found: list[tuple[int, str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and len(node.values) > 1:
            head, after = node.values[0], node.values[1]
            if isinstance(head, ast.Constant) and isinstance(after, ast.FormattedValue):
                found.append((node.lineno, str(head.value), True))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            found.append((node.lineno, node.value, False))
    return found


def _respelled_stream(text: str, leads_placeholder: bool) -> bool:
    if any(f in text for f in SQL_FRAGMENTS):
        return True
    if any(c.isspace() for c in text):
        return False  # prose (a schema's description), not a name
    if text.startswith(("job-", "media-")) or any(f in text for f in NAME_FRAGMENTS):
        return True
    # "webhook-id" and friends are header names; "webhook-{…}" is a stream.
    return leads_placeholder and text == "webhook-"


def test_no_service_spells_a_stream_name() -> None:
    assert SOURCES, "no sources found"
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {text!r}"
        for path in SOURCES
        for line, text, leads in _strings(ast.parse(path.read_text(), str(path)))
        if _respelled_stream(text, leads)
    ]
    assert offenders == [], "build stream names with videoimport_events.vocabulary"


def test_no_service_spells_a_state_or_code_vocabulary_again() -> None:
    offenders = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Subscript) and ast.unparse(node.value) == "Literal"):
                continue
            values = frozenset(
                c.value
                for c in ast.walk(node.slice)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            )
            for name, words in VOCABULARIES.items():
                if values == words:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {name}")
    assert offenders == [], "import the Literal from videoimport_events"
