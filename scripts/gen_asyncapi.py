"""Regenerate docs/asyncapi.json and libs/events/contract/ from the event contract.

    python scripts/gen_asyncapi.py           # `make asyncapi`: write both
    python scripts/gen_asyncapi.py --check   # exit 1 if either is stale (a unit test runs it)

Both modes first compare the code with the committed contract
(``videoimport_events.compatibility``) and stop at a breaking change, so the
recorded contract only ever grows compatibly: a breaking change needs a new type,
or a new schema version with an upcaster, whose schema is then recorded beside
the old one. Files of earlier versions are never rewritten or deleted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from videoimport_events.asyncapi import document
from videoimport_events.compatibility import (
    Contract,
    Schema,
    breaking_changes,
    contract_of,
    file_name,
    key_of,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "libs" / "events" / "examples"
CONTRACT = REPO / "libs" / "events" / "contract"
TARGET = REPO / "docs" / "asyncapi.json"


def load_examples(root: Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """``<root>/<Type>/<name>.json`` by type name, in name order."""
    examples: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for path in sorted(root.glob("*/*.json")):
        examples.setdefault(path.parent.name, []).append((path.stem, json.loads(path.read_text())))
    return examples


def load_contract(root: Path) -> dict[tuple[str, int], Schema]:
    """Every ``<Type>.v<N>.json`` in ``root``."""
    return {key_of(p.name): json.loads(p.read_text()) for p in sorted(root.glob("*.json"))}


def render_document() -> str:
    return json.dumps(document(load_examples(EXAMPLES)), indent=2, sort_keys=True) + "\n"


def render_contract(current: Contract) -> dict[str, str]:
    """File name -> text, for the current version of every type."""
    return {
        file_name(key): json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for key, schema in sorted(current.items())
    }


def main(argv: list[str]) -> int:
    current = contract_of()
    broken = breaking_changes(load_contract(CONTRACT), current)
    if broken:
        print("breaking changes against libs/events/contract/:", file=sys.stderr)
        for change in broken:
            print(f"  {change}", file=sys.stderr)
        print(
            "add a new type, or bump schema_version and register an upcaster "
            "(videoimport_events.upcasting); see docs/subscribers.md",
            file=sys.stderr,
        )
        return 1
    files = {TARGET: render_document()}
    files |= {CONTRACT / name: text for name, text in render_contract(current).items()}
    if "--check" in argv:
        stale = [p for p, text in files.items() if not p.is_file() or p.read_text() != text]
        for path in stale:
            print(f"{path.relative_to(REPO)} is out of date: run `make asyncapi`", file=sys.stderr)
        return 1 if stale else 0
    CONTRACT.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
