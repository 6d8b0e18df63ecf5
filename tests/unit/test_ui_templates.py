"""The operator templates escape whatever clients sent (ids, reasons, errors)."""

from __future__ import annotations

from datetime import UTC, datetime

from videoimport_api.domain.listing import ListedJob
from videoimport_api.ui import pages, template_config
from videoimport_api.ui.pages import JobPage, TimelineEntry, VideoLine, WebhookAttempt

T0 = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script>'


def poster_path(key: str) -> str:
    return f"/media/{key}?expires=1&signature=s"


def render(name: str, context: dict[str, object]) -> str:
    return template_config().engine_instance.get_template(name).render(**context)


def test_client_data_on_a_job_page_is_escaped() -> None:
    job = ListedJob(job_id="j1", system_name=HOSTILE, state="started", video_count=1,
                     started_at=T0)  # fmt: skip
    page = JobPage(
        job=job,
        videos=[VideoLine(idx=0, system_name=HOSTILE, external_id=HOSTILE, state="failed",
                          code="not_a_video", reason=HOSTILE)],
        webhook_attempts=[WebhookAttempt(position=3, occurred_at=T0, delivered=False, attempt=1,
                                         error=HOSTILE)],
        timeline=[TimelineEntry(position=1, occurred_at=T0, event_type="ImportRequested",
                                stream_id=HOSTILE)],
        timeline_truncated=True,
    )  # fmt: skip
    html = render("job.html", pages.job_context(HOSTILE, page, 2000, poster_path))
    assert "<script" not in html
    # project, job and video system, external id, reason, webhook error, stream
    assert html.count("&lt;script&gt;") == 7
    assert '<meta http-equiv="refresh" content="5">' in html  # still running
    assert "Only the first 2000 events" in html


def test_a_finished_job_page_does_not_refresh() -> None:
    job = ListedJob(job_id="j1", system_name="s", state="success", video_count=0, started_at=T0,
                     finished_at=T0)  # fmt: skip
    page = JobPage(job=job, videos=[], webhook_attempts=[], timeline=[], timeline_truncated=False)
    assert "http-equiv" not in render("job.html", pages.job_context("p", page, 2000, poster_path))


def test_a_probed_video_shows_duration_dimensions_and_its_poster_from_this_server() -> None:
    job = ListedJob(job_id="j1", system_name="s", state="success", video_count=2, started_at=T0,
                     finished_at=T0)  # fmt: skip
    videos = [
        VideoLine(idx=0, system_name="s", external_id="probed", state="success", duration=65.2,
                  width=640, height=360, poster_key="p/m/e.poster.jpg"),
        VideoLine(idx=1, system_name="s", external_id="old", state="success"),
    ]  # fmt: skip
    page = JobPage(job=job, videos=videos, webhook_attempts=[], timeline=[],
                   timeline_truncated=False)  # fmt: skip
    html = render("job.html", pages.job_context("p", page, 2000, poster_path))
    assert "<td>1:05</td>" in html and "<td>640x360</td>" in html
    # Same origin (the CSP allows img-src 'self'), the query escaped as an attribute.
    assert '<img class="poster" src="/media/p/m/e.poster.jpg?expires=1&amp;signature=s"' in html
    assert html.count("<img") == 1


def test_the_job_list_links_each_job_and_the_next_page() -> None:
    rows = [
        ListedJob(job_id=f"job/{i}?", system_name="s", state="started", video_count=1,
                   started_at=T0)
        for i in range(3)
    ]  # fmt: skip
    html = render("jobs.html", pages.jobs_context("p", rows[:2], "Y3Vyc29y", first_page=True))
    assert 'href="/ui/jobs/job/0%3F"' in html and "job/2?" not in html
    assert 'href="/ui/jobs?cursor=Y3Vyc29y"' in html


def test_the_sign_in_form_posts_the_token_field() -> None:
    html = render("sign_in.html", {"message": HOSTILE})
    assert '<form class="sign-in" method="post" action="/ui/login">' in html
    assert 'name="token"' in html and "&lt;script&gt;" in html and "<script" not in html
