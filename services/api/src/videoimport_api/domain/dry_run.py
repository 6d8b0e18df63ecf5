"""What an import would do with each video of a batch, said without importing (pure).

The decision is the ingester's own (``media_decision.decide``): metadata against
the project's config, the request against the registry row. A video the import
would download is judged further by what its source answered a probe (a ``HEAD``
and a ranged ``GET`` of its first bytes), with the checks and reasons of the
download itself: the declared type, the size against the ingester's limit, the
first bytes sniffed (``sniff``). A source the probe could not reach gives the
failure code the download would end with. A URL left unprobed (the dry run ran
out of time) keeps its create/update action, with ``"not checked: …"`` as the reason.

Every video is answered as ``{index, systemName, externalId, action, download,
code, reason}``: ``action`` create | update | skip | fail; ``download`` whether
the import would fetch the URL; ``code`` a failure code (``fail`` only);
``reason`` why it fails or why it was not checked, else null.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal, TypeAlias

import msgspec
from videoimport_events import FailureCode
from videoimport_projects import ProjectConfig, sniff
from videoimport_projects.media_decision import (
    Decision,
    Download,
    Fail,
    MediaRecord,
    Skip,
    decide,
)

from videoimport_api.domain.validation import ImportCommand

Action = Literal["create", "update", "skip", "fail"]
ACTIONS: tuple[Action, ...] = ("create", "update", "skip", "fail")


class RequestedVideo(msgspec.Struct, frozen=True, kw_only=True):
    """One video of the batch as the import would request it."""

    index: int
    project: str
    system_name: str
    external_id: str
    url: str
    file_name: str
    metadata: dict[str, Any]


class SourceAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """What the source said about the body behind a URL."""

    content_type: str | None
    """The ``Content-Type`` header as sent (None: none)."""
    size: int | None
    """The whole body's size as the source states it (None: not stated)."""
    head: bytes | None
    """The body's first bytes (None: only headers were asked for)."""


class ProbeFailed(msgspec.Struct, frozen=True, kw_only=True):
    """The source could not be asked, or answered with an error."""

    code: FailureCode
    reason: str


class NotProbed(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    """Starts with ``not checked:``."""


ProbeOutcome: TypeAlias = SourceAnswer | ProbeFailed | NotProbed


class VideoAnswer(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    index: int
    system_name: str
    external_id: str
    action: Action
    download: bool
    code: FailureCode | None
    reason: str | None


def requested_videos(project: str, command: ImportCommand) -> list[RequestedVideo]:
    return [
        RequestedVideo(
            index=index,
            project=project,
            system_name=command.system_name,
            external_id=video.external_id,
            url=video.url,
            file_name=video.file_name,
            metadata=video.metadata,
        )
        for index, video in enumerate(command.videos)
    ]


def decisions(
    videos: list[RequestedVideo],
    config: ProjectConfig | None,
    registered: dict[str, MediaRecord],
) -> list[Decision]:
    """The ingester's decision per video; ``registered`` maps external id to its row."""
    return [decide(video, config, registered.get(video.external_id)) for video in videos]


def urls_to_probe(videos: list[RequestedVideo], decided: list[Decision]) -> list[str]:
    """The distinct URLs an import would download, in batch order: each probed once."""
    wanted = (v.url for v, d in zip(videos, decided, strict=True) if isinstance(d, Download))
    return list(dict.fromkeys(wanted))


def source_problem(answer: SourceAnswer, max_bytes: int) -> ProbeFailed | None:
    """What the download would refuse in ``answer``, in the download's order and words."""
    declared = sniff.base_type(answer.content_type)
    if not sniff.acceptable_declared_type(declared):
        return ProbeFailed(code="not_a_video", reason=f"not a video ({declared})")
    if answer.size is not None and answer.size > max_bytes:
        return ProbeFailed(
            code="too_large",
            reason=f"too large: {answer.size} bytes, the limit is {max_bytes} bytes",
        )
    if answer.head is not None and sniff.sniff(answer.head) is None:
        return ProbeFailed(
            code="not_a_video", reason=sniff.not_a_video_reason(declared, answer.head)
        )
    return None


def video_answer(
    video: RequestedVideo, decision: Decision, probe: ProbeOutcome | None, max_bytes: int
) -> VideoAnswer:
    """``probe`` is the outcome for the video's URL when the decision downloads it."""

    def answer(
        action: Action, download: bool, code: FailureCode | None = None, reason: str | None = None
    ) -> VideoAnswer:
        return VideoAnswer(
            index=video.index,
            system_name=video.system_name,
            external_id=video.external_id,
            action=action,
            download=download,
            code=code,
            reason=reason,
        )

    if isinstance(decision, Fail):
        return answer("fail", False, decision.code, decision.reason)
    if isinstance(decision, Skip):
        return answer("skip", False)
    if not isinstance(decision, Download):
        return answer("update", False)  # same url: new fileName/metadata, no download
    action: Action = "create" if decision.outcome == "created" else "update"
    if probe is None:
        raise ValueError(f"videos[{video.index}] downloads but its URL has no probe outcome")
    if isinstance(probe, NotProbed):
        return answer(action, True, None, probe.reason)
    problem = probe if isinstance(probe, ProbeFailed) else source_problem(probe, max_bytes)
    if problem is not None:
        return answer("fail", True, problem.code, problem.reason)
    return answer(action, True)


def dry_run_answer(
    videos: list[RequestedVideo],
    decided: list[Decision],
    probes: dict[str, ProbeOutcome],
    max_bytes: int,
) -> dict[str, Any]:
    """The response body: every video's answer and how many of each action."""
    answers = [
        video_answer(video, decision, probes.get(video.url), max_bytes)
        for video, decision in zip(videos, decided, strict=True)
    ]
    counts = Counter(a.action for a in answers)
    return {
        "dryRun": True,
        "videos": msgspec.to_builtins(answers),
        "summary": {action: counts[action] for action in ACTIONS},
    }
