"""The status document has the seed's exact shapes; our additions are additive only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from videoimport_api.domain.status import (
    JobRow,
    VideoRow,
    original_url,
    render_started,
    render_status,
    timestamp,
)

BASE = "https://media.example.com/media"


def link(key: str) -> str:
    return original_url(BASE, key)


STARTED = datetime(2020, 1, 1, 13, 45, 12, 987654, tzinfo=UTC)
FINISHED = datetime(2020, 1, 1, 13, 47, 1, tzinfo=UTC)


def test_timestamps_use_the_seed_format_in_utc() -> None:
    assert timestamp(STARTED) == "2020-01-01 13:45:12"
    zurich = timezone(timedelta(hours=1))
    assert timestamp(datetime(2020, 1, 1, 14, 45, 12, tzinfo=zurich)) == "2020-01-01 13:45:12"


def test_a_started_job_has_the_seed_shape_plus_progress() -> None:
    job = JobRow(
        job_id="243kdc", state="started", video_count=3, started_at=STARTED, success=1, failed=1
    )
    document = render_status(job, [], link)
    assert document == {
        "finished": False,
        "state": "started",
        "id": "243kdc",
        "startedAt": "2020-01-01 13:45:12",
        "progress": {"total": 3, "success": 1, "skipped": 0, "failed": 1},
    }
    # The seed's keys come first and in its order.
    assert list(document)[:4] == ["finished", "state", "id", "startedAt"]
    assert render_started(job) == document


def test_a_finished_job_lists_every_video_in_request_order() -> None:
    job = JobRow(
        job_id="25bzj8j",
        state="success",
        video_count=3,
        started_at=STARTED,
        finished_at=FINISHED,
        success=1,
        skipped=1,
        failed=1,
    )
    videos = [
        # Given out of order on purpose: the document follows the request's order.
        VideoRow(
            idx=2,
            system_name="identifier-for-your-system",
            external_id="external-unique-id-345",
            state="failed",
            reason="Could not upload video",
            code="upload_failed",
        ),
        VideoRow(
            idx=0,
            system_name="identifier-for-your-system",
            external_id="external-unique-id-123",
            state="success",
            media_id="jjiwhsf23kdk",
            mime_type="video/mp4",
            storage_key="p/jjiwhsf23kdk/e1.mp4",
        ),
        VideoRow(
            idx=1,
            system_name="identifier-for-your-system",
            external_id="external-unique-id-234",
            state="skipped",
            reason="already exists",
            code="already_exists",
            media_id="jjiwhsf23wer",
            mime_type="video/webm",
            storage_key="p/jjiwhsf23wer/e2.webm",
        ),
    ]
    document = render_status(job, videos, link)
    assert document == {
        "finished": True,
        "state": "success",
        "id": "25bzj8j",
        "startedAt": "2020-01-01 13:45:12",
        "finishedAt": "2020-01-01 13:47:01",
        "overview": {"total": 3, "success": 1, "skipped": 1, "failed": 1},
        "videos": [
            {
                "state": "success",
                "systemName": "identifier-for-your-system",
                "externalId": "external-unique-id-123",
                "video": {
                    "mediaId": "jjiwhsf23kdk",
                    "originalUrl": f"{BASE}/p/jjiwhsf23kdk/e1.mp4",
                    "mimeType": "video/mp4",
                },
            },
            {
                "state": "skipped",
                "reason": "already exists",
                "code": "already_exists",
                "systemName": "identifier-for-your-system",
                "externalId": "external-unique-id-234",
                "video": {
                    "mediaId": "jjiwhsf23wer",
                    "originalUrl": f"{BASE}/p/jjiwhsf23wer/e2.webm",
                    "mimeType": "video/webm",
                },
            },
            {
                "state": "failed",
                "reason": "Could not upload video",
                "code": "upload_failed",
                "systemName": "identifier-for-your-system",
                "externalId": "external-unique-id-345",
            },
        ],
    }
    assert list(document)[:3] == ["finished", "state", "id"]
    assert list(document["videos"][1])[:2] == ["state", "reason"]


def test_a_failed_job_is_finished_with_state_failed() -> None:
    job = JobRow(
        job_id="098shjhv9",
        state="failed",
        video_count=1,
        started_at=STARTED,
        finished_at=FINISHED,
        failed=1,
    )
    video = VideoRow(
        idx=0,
        system_name="s",
        external_id="e",
        state="failed",
        reason="metadata.title: required",
        code="invalid_metadata",
    )
    document = render_status(job, [video], link)
    assert (document["finished"], document["state"], document["id"]) == (
        True,
        "failed",
        "098shjhv9",
    )
    assert document["videos"] == [
        {
            "state": "failed",
            "reason": "metadata.title: required",
            "code": "invalid_metadata",
            "systemName": "s",
            "externalId": "e",
        }
    ]


def test_original_url_quotes_the_key_but_keeps_its_slashes() -> None:
    assert (
        original_url(BASE + "/", "my project/abc/e 1.mp4") == f"{BASE}/my%20project/abc/e%201.mp4"
    )


def test_a_finished_job_with_a_webhook_shows_it_additively() -> None:
    from videoimport_api.domain.status import WebhookRow

    base = JobRow(
        job_id="243kdc",
        state="success",
        video_count=0,
        started_at=STARTED,
        finished_at=FINISHED,
    )
    without = render_status(base, [], link)
    assert "webhook" not in without
    pending = WebhookRow(
        state="pending",
        attempts=1,
        last_status=503,
        last_error="HTTP 503",
        next_attempt_at=FINISHED + timedelta(seconds=10, microseconds=5),
    )
    document = render_status(JobRow(**{**_fields(base), "webhook": pending}), [], link)
    assert document == {**without, "webhook": document["webhook"]}
    assert document["webhook"] == {
        "state": "pending",
        "attempts": 1,
        "lastStatus": 503,
        "lastError": "HTTP 503",
        "nextAttemptAt": "2020-01-01 13:47:11",
        "deliveredAt": None,
    }
    done = WebhookRow(state="delivered", attempts=2, last_status=204, delivered_at=FINISHED)
    assert render_status(JobRow(**{**_fields(base), "webhook": done}), [], link)["webhook"] == {
        "state": "delivered",
        "attempts": 2,
        "lastStatus": 204,
        "lastError": None,
        "nextAttemptAt": None,
        "deliveredAt": "2020-01-01 13:47:01",
    }


def _fields(job: JobRow) -> dict[str, object]:
    return {f: getattr(job, f) for f in job.__struct_fields__}


def test_a_video_whose_object_was_deleted_has_no_link_and_says_so() -> None:
    job = JobRow(
        job_id="old", state="success", video_count=2, started_at=STARTED, success=1, skipped=1
    )
    common = {"system_name": "s", "media_id": "m1", "mime_type": "video/mp4"}
    videos = [
        VideoRow(idx=0, external_id="e0", state="success", storage_key="p/m1/a.mp4", **common),
        VideoRow(
            idx=1,
            external_id="e1",
            state="skipped",
            storage_key="p/m1/b.mp4",
            link_expired=True,
            **common,
        ),
    ]
    rendered = render_status(job, videos, link)["videos"]
    assert rendered[0]["video"] == {
        "mediaId": "m1",
        "originalUrl": f"{BASE}/p/m1/a.mp4",
        "mimeType": "video/mp4",
    }
    assert "linkExpired" not in rendered[0]["video"]
    assert rendered[1]["video"] == {
        "mediaId": "m1",
        "originalUrl": None,
        "mimeType": "video/mp4",
        "linkExpired": True,
    }
    assert (rendered[1]["state"], rendered[1]["code"]) == ("skipped", "already_exists")
