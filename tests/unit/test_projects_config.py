"""Metadata is checked against the project's config, naming each field."""

from __future__ import annotations

import pytest
from videoimport_projects import metadata_errors, parse_config

CONFIG = parse_config(
    b'{"metadata": ['
    b'{"handle": "title", "type": "text", "required": true, "maxLength": 10},'
    b'{"handle": "credit", "type": "text"},'
    b'{"handle": "duration", "type": "number"},'
    b'{"handle": "published", "type": "boolean"},'
    b'{"handle": "airedOn", "type": "date"},'
    b'{"handle": "tags", "type": "textList", "maxLength": 5}]}'
)


def test_fitting_metadata_has_no_errors() -> None:
    ok = {
        "title": "short",
        "credit": "LC",
        "duration": 12.5,
        "published": True,
        "airedOn": "2024-05-01",
        "tags": ["a", "b"],
    }
    assert metadata_errors(CONFIG, ok) == []


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({}, "metadata.title: required"),
        ({"title": None}, "metadata.title: required"),
        ({"title": 5}, "metadata.title: must be a string"),
        ({"title": "x" * 11}, "metadata.title: longer than 10 characters"),
        ({"title": "t", "duration": "long"}, "metadata.duration: must be a number"),
        ({"title": "t", "duration": True}, "metadata.duration: must be a number"),
        ({"title": "t", "published": "yes"}, "metadata.published: must be a boolean"),
        ({"title": "t", "airedOn": "yesterday"}, "metadata.airedOn: must be an ISO 8601 date"),
        ({"title": "t", "tags": "a"}, "metadata.tags: must be a list of strings"),
        (
            {"title": "t", "tags": ["toolong"]},
            "metadata.tags: has an entry longer than 5 characters",
        ),
        ({"title": "t", "colour": "red"}, "metadata.colour: not in the project's metadata config"),
    ],
)
def test_each_misfit_names_the_field(metadata: dict[str, object], error: str) -> None:
    assert metadata_errors(CONFIG, metadata) == [error]


def test_every_misfit_is_reported() -> None:
    assert metadata_errors(CONFIG, {"credit": 1}) == [
        "metadata.title: required",
        "metadata.credit: must be a string",
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"metadata": [{"handle": "t", "type": "video"}]}', r"metadata\[0\]\.type"),
        (
            b'{"metadata": [{"handle": "t", "type": "text"}, {"handle": "t", "type": "text"}]}',
            "duplicate metadata handle 't'",
        ),
        (b'{"metadata": [{"type": "text"}]}', "handle"),
        (b'{"metadta": []}', "metadta"),
    ],
)
def test_a_bad_config_is_rejected_with_the_reason(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_config(raw)


def test_many_unknown_keys_make_one_short_line() -> None:
    metadata: dict[str, object] = {"title": "t"}
    metadata.update({f"k{i:06d}" + "x" * 300: "v" for i in range(60_000)})
    errors = metadata_errors(CONFIG, metadata)
    assert len(errors) == 1
    shown = "'k000000" + "x" * 33 + "…'"
    assert errors[0] == (
        "metadata: 60000 keys not in the project's metadata config"
        f" (first: {shown}, {shown.replace('k000000', 'k000001')},"
        f" {shown.replace('k000000', 'k000002')}, ...)"
    )
    assert len(errors[0]) < 300


def test_unknown_keys_come_after_the_per_field_messages() -> None:
    assert metadata_errors(CONFIG, {"b": 1, "a": 2, "credit": 3}) == [
        "metadata.title: required",
        "metadata.credit: must be a string",
        "metadata: 2 keys not in the project's metadata config (first: 'a', 'b')",
    ]


def test_a_long_unknown_key_alone_is_cut_to_40_characters() -> None:
    assert metadata_errors(CONFIG, {"title": "t", "y" * 1000: 1}) == [
        f"metadata.{'y' * 40}…: not in the project's metadata config"
    ]
