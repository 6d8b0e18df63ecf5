"""Opaque page cursors: round trips, and a 400 naming ``cursor`` for anything else."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from videoimport_api.domain import cursor, listing
from videoimport_api.domain.cursor import JobsCursor, VideosCursor
from videoimport_api.domain.errors import ApiError

JOBS = JobsCursor(
    state="failed", system_name="archive", started_at_us=1_700_000_000_123_456, job_id="j1"
)
VIDEOS = VideosCursor(job_id="j1", state=None, index=41)

# What a name or id may hold: no control character, no lone surrogate.
IDENTITY_CHARACTERS = st.characters(blacklist_categories=("Cc", "Cs"))


def rejected(raw: str, kind: type[JobsCursor] | type[VideosCursor] = JobsCursor) -> str:
    with pytest.raises(ApiError) as caught:
        cursor.decode(raw, kind)
    err = caught.value
    assert err.status == 400
    [detail] = err.details
    assert detail.field == "cursor"
    return detail.reason


def test_cursors_round_trip_and_are_url_safe() -> None:
    for made in (JOBS, VIDEOS):
        raw = cursor.encode(made)
        assert raw.replace("-", "").replace("_", "").isalnum()
        assert cursor.decode(raw, type(made)) == made


@given(
    state=st.sampled_from([None, "started", "success", "failed"]),
    system=st.none() | st.text(IDENTITY_CHARACTERS, max_size=40),
    micros=st.integers(min_value=-(2**62), max_value=2**62),
    job_id=st.text(IDENTITY_CHARACTERS, max_size=40),
)
def test_any_jobs_cursor_round_trips(
    state: str | None, system: str | None, micros: int, job_id: str
) -> None:
    made = JobsCursor(state=state, system_name=system, started_at_us=micros, job_id=job_id)
    assert cursor.decode(cursor.encode(made), JobsCursor) == made


def test_a_cursor_of_the_other_kind_is_refused() -> None:
    rejected(cursor.encode(VIDEOS), JobsCursor)
    rejected(cursor.encode(JOBS), VideosCursor)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "=",
        "not a cursor",
        "abc$",
        "%41",
        "A" * (cursor.MAX_CURSOR_CHARS + 1),
        "\u00e9t\u00e9",
        "\x00",
    ],
)
def test_garbage_is_refused(raw: str) -> None:
    rejected(raw)


def test_any_changed_character_is_refused_or_decodes_to_another_valid_cursor() -> None:
    raw = cursor.encode(JOBS)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for position in range(len(raw)):
        for replacement in "A_9":
            changed = raw[:position] + replacement + raw[position + 1 :]
            if changed == raw:
                continue
            try:
                decoded = cursor.decode(changed, JobsCursor)
            except ApiError as exc:
                assert exc.status == 400
            else:
                # Still exactly a cursor this code makes: harmless, the query is the project's.
                assert decoded != JOBS and cursor.encode(decoded) == changed
    assert set(raw) <= set(alphabet)


def test_padding_and_non_canonical_spellings_are_refused() -> None:
    raw = cursor.encode(VIDEOS)
    rejected(raw + "=" * (-len(raw) % 4 or 4), VideosCursor)
    # The same value with a wider msgpack integer is another spelling: not ours.
    packed = bytearray(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    assert packed[-1] == 41  # positive fixint
    respelled = bytes(packed[:-1]) + b"\xcc\x29"  # uint8 41
    rejected(base64.urlsafe_b64encode(respelled).rstrip(b"=").decode(), VideosCursor)


def test_wrong_field_types_are_refused() -> None:
    for value in (
        ["jobs", None, None, "soon", "j1"],
        ["jobs", None, None, 1],
        ["videos", 1, None, 2],
    ):
        raw = base64.urlsafe_b64encode(msgspec.msgpack.encode(value)).rstrip(b"=").decode()
        rejected(raw)


def test_text_no_id_has_is_refused() -> None:
    rejected(
        cursor.encode(JobsCursor(state=None, system_name=None, started_at_us=0, job_id="a\x00"))
    )
    rejected(cursor.encode(VideosCursor(job_id="\x7f", state=None, index=0)), VideosCursor)
    surrogate = b"\x95\xa4jobs\xc0\xc0\x00\xa3\xed\xa0\x80"  # a lone surrogate, as UTF-8 bytes
    rejected(base64.urlsafe_b64encode(surrogate).rstrip(b"=").decode())
    fine = b"\x95\xa4jobs\xc0\xc0\x00\xa2j1"
    assert (
        cursor.decode(base64.urlsafe_b64encode(fine).rstrip(b"=").decode(), JobsCursor).job_id
        == "j1"
    )


def test_timestamps_survive_to_the_microsecond() -> None:
    at = datetime(2026, 11, 28, 9, 30, 0, 123457, tzinfo=UTC)
    assert cursor.from_micros(cursor.micros(at)) == at
    with pytest.raises(ApiError):
        cursor.from_micros(2**62)


def test_a_listing_cursor_only_fits_its_own_filters() -> None:
    page = [
        listing.ListedJob(
            job_id="j9",
            state="failed",
            system_name="archive",
            video_count=1,
            started_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    ]
    query = listing.parse_jobs_query({"state": ["failed"], "systemName": ["archive"]})
    raw = listing.next_jobs_cursor(query, page, more=True)
    assert raw is not None
    again = listing.parse_jobs_query(
        {"state": ["failed"], "systemName": ["archive"], "cursor": [raw]}
    )
    assert again.after is not None and again.after.job_id == "j9"
    with pytest.raises(ApiError) as caught:
        listing.parse_jobs_query({"state": ["success"], "systemName": ["archive"], "cursor": [raw]})
    assert caught.value.details[0].field == "cursor"
    assert listing.next_jobs_cursor(query, page, more=False) is None


def test_a_status_cursor_only_fits_its_job_and_state() -> None:
    query = listing.parse_video_paging({"state": ["started"]}, "j1")
    assert query is not None
    raw = listing.next_videos_cursor("j1", query, 7, more=True)
    assert raw is not None
    page = listing.parse_video_paging({"state": ["started"], "cursor": [raw]}, "j1")
    assert page is not None and page.after_index == 7 and page.state == "started"
    for other in ({"state": ["started"], "cursor": [raw]}, {"cursor": [raw]}):
        job = "j2" if "state" in other else "j1"
        with pytest.raises(ApiError) as caught:
            listing.parse_video_paging(other, job)
        assert caught.value.details[0].field == "cursor"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"state": ["done"]}, "state"),
        ({"state": [""]}, "state"),
        ({"state": ["failed", "failed"]}, "state"),
        ({"limit": ["0"]}, "limit"),
        ({"limit": ["101"]}, "limit"),
        ({"limit": ["-1"]}, "limit"),
        ({"limit": ["+5"]}, "limit"),
        ({"limit": [" 5"]}, "limit"),
        ({"limit": ["1_0"]}, "limit"),
        ({"limit": ["\u0665"]}, "limit"),
        ({"limit": ["9" * 40]}, "limit"),
        ({"systemName": [""]}, "systemName"),
        ({"systemName": ["a\x00b"]}, "systemName"),
        ({"systemName": ["x" * 256]}, "systemName"),
        ({"cursor": ["!!"]}, "cursor"),
    ],
)
def test_bad_listing_parameters_name_themselves(query: dict[str, list[str]], field: str) -> None:
    with pytest.raises(ApiError) as caught:
        listing.parse_jobs_query(query)
    assert caught.value.status == 400
    assert [d.field for d in caught.value.details] == [field]


def test_listing_defaults_and_bounds() -> None:
    assert listing.parse_jobs_query({}) == listing.JobsQuery(limit=20)
    assert listing.parse_jobs_query({"limit": ["100"]}).limit == 100
    assert listing.parse_video_paging({}, "j1") is None
    assert listing.parse_video_paging({"id": ["j1"]}, "j1") is None
    paging = listing.parse_video_paging({"limit": ["1000"]}, "j1")
    assert paging == listing.VideosQuery(limit=1000)
    with pytest.raises(ApiError):
        listing.parse_video_paging({"limit": ["1001"]}, "j1")
    with pytest.raises(ApiError):
        listing.parse_video_paging({"state": ["queued"]}, "j1")
