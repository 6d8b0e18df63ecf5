"""What ``rebuild --check`` reports: the live read model against a rebuild (pure: no I/O).

Rows are matched by primary key. A row only in the live tables is one the log does
not account for; a row only in the rebuild is one the projection lost; a row in both
that differs is named by its key with each differing column, live value first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

ONLY_LIVE = "only live"
ONLY_REBUILT = "only rebuilt"
DIFFERS = "differs"
_VALUE_CHARS = 200


@dataclass(frozen=True)
class Row:
    """One differing row as fetched: its kind and both sides (None where missing)."""

    kind: str
    live: dict[str, Any] | None
    rebuilt: dict[str, Any] | None


@dataclass(frozen=True)
class TableDifferences:
    table: str
    key: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict)
    """Rows per kind, all of them; ``rows`` holds a sample."""
    rows: tuple[Row, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def changed_columns(live: dict[str, Any], rebuilt: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Column → (live, rebuilt) for every column whose values differ."""
    return {
        column: (live.get(column), rebuilt.get(column))
        for column in sorted(live.keys() | rebuilt.keys())
        if live.get(column) != rebuilt.get(column)
    }


def _value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def _key(key: Sequence[str], row: dict[str, Any]) -> str:
    return " ".join(f"{column}={_value(row.get(column))}" for column in key)


def _line(key: Sequence[str], row: Row) -> str:
    if row.live is not None and row.rebuilt is not None:
        columns = changed_columns(row.live, row.rebuilt)
        said = "; ".join(
            f"{column}: live {_value(old)}, rebuilt {_value(new)}"
            for column, (old, new) in columns.items()
        )
        return f"  {row.kind} {_key(key, row.live)}: {said}"
    present = row.live if row.live is not None else row.rebuilt
    assert present is not None
    return f"  {row.kind} {_key(key, present)}: {_value(present)}"


def render(tables: Sequence[TableDifferences], position: int) -> str:
    """The report, one block per table that differs; ``no difference`` when none does."""
    if not any(t.total for t in tables):
        names = ", ".join(t.table for t in tables)
        return f"no difference ({names} at log position {position})"
    lines = [f"the live read model differs from a rebuild at log position {position}"]
    for table in tables:
        if not table.total:
            lines.append(f"{table.table}: no difference")
            continue
        counts = ", ".join(
            f"{table.counts.get(kind, 0)} {kind}" for kind in (ONLY_LIVE, ONLY_REBUILT, DIFFERS)
        )
        lines.append(f"{table.table}: {counts}")
        lines.extend(_line(table.key, row) for row in table.rows)
        if len(table.rows) < table.total:
            lines.append(f"  … and {table.total - len(table.rows)} more")
    return "\n".join(lines)
