"""The sweeper's pace (pure): a full round that got on goes again at once; one that
only failed waits for its interval instead of looping against S3 and the database."""

from __future__ import annotations

from videoimport_ingester.sweeper import BATCH, another_round_at_once


def test_a_full_round_that_made_progress_goes_again_at_once() -> None:
    assert another_round_at_once(((BATCH, BATCH), (0, 0)))
    assert another_round_at_once(((3, 3), (BATCH, 1)))


def test_a_full_round_of_rows_that_all_failed_waits() -> None:
    assert not another_round_at_once(((BATCH, 0), (BATCH, 0)))


def test_a_round_that_was_not_full_waits() -> None:
    assert not another_round_at_once(((BATCH - 1, BATCH - 1), (0, 0)))
