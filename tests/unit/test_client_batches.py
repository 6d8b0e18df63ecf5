"""The client's batch files: JSON and CSV into request bodies, problems named by place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from videoimport_projects.client.batches import (
    BatchFile,
    BatchFileError,
    Problem,
    idempotency_key,
    read_batch_file,
    request_bodies,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def problems(name: str, raw: str) -> list[Problem]:
    with pytest.raises(BatchFileError) as caught:
        read_batch_file(name, raw.encode())
    return caught.value.problems


def video(external_id: str) -> dict[str, object]:
    return {"url": f"https://v.example/{external_id}.mp4", "id": external_id, "fileName": "f",
            "metadata": {}}  # fmt: skip


def test_csv_columns_become_videos_with_nested_metadata() -> None:
    raw = (
        "url,id,fileName,metadata.title,metadata.credit.name,metadata.year:json\r\n"
        'https://v.example/a.mp4,a1,"A, one",Title A,Anna,2024\r\n'
        "\r\n"
        "https://v.example/b.mp4,007,B,,,\r\n"
    )
    batch_file = read_batch_file("videos.csv", raw.encode())
    assert batch_file.videos == [
        {
            "url": "https://v.example/a.mp4",
            "id": "a1",
            "fileName": "A, one",
            "metadata": {"title": "Title A", "credit": {"name": "Anna"}, "year": 2024},
        },
        # Empty cells are left out; "007" stays a string because its column is text.
        {"url": "https://v.example/b.mp4", "id": "007", "fileName": "B", "metadata": {}},
    ]
    assert batch_file.system_name is None


def test_a_json_column_keeps_booleans_lists_and_objects() -> None:
    raw = 'url,id,fileName,metadata.tags:json\nu,a,f,"[""x"", true]"\n'
    assert read_batch_file("v.csv", raw.encode()).videos[0]["metadata"] == {"tags": ["x", True]}


def test_a_byte_order_mark_is_not_part_of_the_first_column() -> None:
    raw = "\ufeffurl,id,fileName\nu,a,f\n".encode()
    assert read_batch_file("v.csv", raw).videos[0]["url"] == "u"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("url,id\nu,a\n", Problem("line 1", "missing column 'fileName'")),
        (
            "url,id,fileName,title\n",
            Problem(
                "line 1 column 4",
                "unknown column 'title': use url, id, fileName or metadata.<key>[:json]",
            ),
        ),
        ("url,id,fileName,id\n", Problem("line 1", "repeated column 'id'")),
        (
            "url,id,fileName,metadata.a,metadata.a.b\n",
            Problem("line 1", "metadata.a is both a value and an object"),
        ),
        ("url,id,fileName\nu,a,f\nu,b\n", Problem("line 3", "2 cells, the header has 3")),
        ("url,id,fileName\nu,,f\n", Problem("line 2", "id is empty")),
        ("url,id,fileName\n", Problem("file", "no videos after the header")),
        ("", Problem("file", "empty: expected a header line")),
        (
            "url,id,fileName,metadata.n:json\nu,a,f,1x\n",
            Problem("line 2", "metadata.n:json: not valid JSON: '1x'"),
        ),
        ("url,id,fileName\nu,a,f\nu,a,g\n", Problem("line 3", "duplicate id 'a', first at line 2")),
    ],
)
def test_csv_problems_name_their_line(raw: str, expected: Problem) -> None:
    assert expected in problems("v.csv", raw)


def test_a_quoted_cell_over_several_lines_keeps_the_line_numbers_right() -> None:
    raw = 'url,id,fileName\nu,a,"two\nlines"\nu,,f\n'
    assert problems("v.csv", raw) == [Problem("line 4", "id is empty")]


def test_csv_that_is_not_utf8_is_refused_with_its_place() -> None:
    with pytest.raises(BatchFileError) as caught:
        read_batch_file("v.csv", b"url,id,fileName\nu,\xff,f\n")
    assert caught.value.problems == [Problem("line 2 column 3", "not UTF-8")]


def test_a_json_body_keeps_its_top_level_fields() -> None:
    body = {"systemName": "s", "webhook": "https://h.example/w", "context": {"k": 1},
            "videos": [video("a")]}  # fmt: skip
    batch_file = read_batch_file("b.json", json.dumps(body).encode())
    assert batch_file == BatchFile(
        videos=[video("a")], system_name="s", webhook="https://h.example/w", context={"k": 1}
    )


def test_a_bare_list_is_the_videos() -> None:
    assert read_batch_file("-", json.dumps([video("a")]).encode()).videos == [video("a")]


def test_json_problems_name_their_video() -> None:
    raw = json.dumps({"system": "s", "videos": [video("a"), {"id": "a"}, 3]})
    found = problems("b.json", raw)
    assert found[0].where == "system" and found[0].reason.startswith("unknown field")
    assert Problem("videos[1].url", "required: a non-empty string") in found
    assert Problem("videos[1].metadata", "required: an object ({} for none)") in found
    assert Problem("videos[2]", "must be an object") in found
    assert Problem("videos[1]", "duplicate id 'a', first at videos[0]") in found


def test_malformed_json_is_placed_by_line_and_column() -> None:
    [problem] = problems("b.json", '{"videos": [\n  {"id": 1,,}\n]}')
    assert problem.where == "line 2 column 12"


def test_an_unknown_extension_is_refused() -> None:
    assert problems("videos.txt", "") == [
        Problem("file", "unknown format: name it *.json or *.csv")
    ]


def test_the_error_message_lists_at_most_twenty_problems() -> None:
    raw = "url,id,fileName\n" + "u,,f\n" * 25
    with pytest.raises(BatchFileError) as caught:
        read_batch_file("v.csv", raw.encode())
    lines = str(caught.value).splitlines()
    assert len(lines) == 21
    assert lines[0] == "v.csv: line 2: id is empty"
    assert lines[-1] == "v.csv: 5 more problems not shown"


def test_bodies_split_in_order_and_carry_the_top_level_fields() -> None:
    batch_file = BatchFile(videos=[video(str(i)) for i in range(5)])
    bodies = request_bodies(
        batch_file, system_name="s", webhook=None, context={"c": 1}, batch_size=2
    )
    assert [[v["id"] for v in b["videos"]] for b in bodies] == [["0", "1"], ["2", "3"], ["4"]]
    assert all(b["systemName"] == "s" and b["context"] == {"c": 1} for b in bodies)
    assert all("webhook" not in b for b in bodies)
    with pytest.raises(ValueError, match="batch size"):
        request_bodies(batch_file, system_name="s", webhook=None, context=None, batch_size=1001)


def test_the_idempotency_key_is_stable_and_tells_batches_and_runs_apart() -> None:
    body = {"systemName": "s", "videos": [video("a")]}
    key = idempotency_key("2025-03", body, 0)
    assert key == idempotency_key("2025-03", json.loads(json.dumps(body)), 0)
    assert key.isascii() and len(key) <= 255
    others = {
        idempotency_key("2025-03", body, 1),
        idempotency_key("2025-03", body, 0, run="again"),
        idempotency_key("2025-03", {**body, "systemName": "t"}, 0),
        idempotency_key("2024-01", body, 0),
    }
    assert key not in others and len(others) == 4


@pytest.mark.parametrize("name", ["sample.csv", "sample.json"])
def test_the_documented_examples_read_cleanly(name: str) -> None:
    batch_file = read_batch_file(name, (EXAMPLES / name).read_bytes())
    assert batch_file.videos
    assert all(v["metadata"].get("title") for v in batch_file.videos)
