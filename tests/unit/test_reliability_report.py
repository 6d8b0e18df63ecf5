"""The reliability runner's figures line, verdict and docs table (pure)."""

from __future__ import annotations

from pathlib import Path

from reliability.invariants import Findings
from reliability.runner import TABLE_END, TABLE_START, Outcome, table, write_docs
from reliability.scenarios import Injected


def outcome(findings: Findings, injected: Injected | None = None, settled: bool = True) -> Outcome:
    return Outcome("kill-relay", 120, injected or Injected(20), findings, settled, 61.4)


def test_a_clean_scenario_passes_and_prints_the_figures_line() -> None:
    result = outcome(Findings(projection_equal=True))
    assert result.passed
    assert result.line() == (
        "kill-relay: 120 videos, 20 faults, lost 0, duplicate effects 0,"
        " projection = rebuild (61 s)"
    )


def test_anything_lost_duplicated_unsettled_or_unequal_fails() -> None:
    lost = Findings(projection_equal=True)
    lost.add("lost", "webhooks", 2)
    duplicated = Findings(projection_equal=True)
    duplicated.add("duplicates", "terminal events", 1)
    assert not outcome(lost).passed and outcome(lost).lost == 2
    assert not outcome(duplicated).passed and outcome(duplicated).duplicates == 1
    assert "duplicate terminal events: 1" in outcome(duplicated).problems()
    assert not outcome(Findings(projection_equal=False)).passed
    assert "≠ rebuild" in outcome(Findings(projection_equal=False)).line()
    assert not outcome(Findings(projection_equal=True), settled=False).passed
    silent = outcome(Findings(projection_equal=True), Injected(3, unreported_outage=["relay"]))
    assert not silent.passed and "did not report the outage: relay" in silent.problems()
    replayed = outcome(Findings(projection_equal=True), Injected(300, {"events": 4}))
    assert not replayed.passed and "new events: 4" in replayed.problems()


def test_the_docs_table_is_replaced_between_its_markers(tmp_path: Path) -> None:
    doc = tmp_path / "reliability.md"
    doc.write_text(f"# head\n{TABLE_START}\nold table\n{TABLE_END}\n## tail\n")
    write_docs([outcome(Findings(projection_equal=True))], doc)
    text = doc.read_text()
    assert text.startswith("# head\n") and text.endswith(f"{TABLE_END}\n## tail\n")
    assert "old table" not in text
    assert "| `kill-relay` | kill -9 of the relay" in text
    assert "| 120 | 20 | 0 | 0 | = rebuild |" in text


def test_a_partial_run_updates_its_rows_and_keeps_the_others_in_order() -> None:
    earlier = table(
        [
            Outcome("kill-ingester", 500, Injected(20), Findings(projection_equal=True), True, 1),
            Outcome("kill-relay", 400, Injected(20), Findings(projection_equal=True), True, 1),
        ],
        day="2026-01-01",
    )
    later = table([outcome(Findings(projection_equal=True))], earlier, day="2026-02-02")
    rows = [line for line in later.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == ["kill-ingester", "kill-relay"]
    assert rows[0].endswith("| 2026-01-01 |") and "| 500 |" in rows[0]
    assert rows[1].endswith("| 2026-02-02 |") and "| 120 |" in rows[1]
