"""Regenerate docs/asyncapi.json from the event contract and its examples."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from videoimport_events.asyncapi import document

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "libs" / "events" / "examples"
TARGET = REPO / "docs" / "asyncapi.json"


def render() -> str:
    examples = {p.stem: json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))}
    return json.dumps(document(examples), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        if TARGET.read_text() != text:
            sys.exit("docs/asyncapi.json is out of date: run `make asyncapi`")
    else:
        TARGET.write_text(text)
