"""docs/asyncapi.json is a valid AsyncAPI document for the official parser.

``@asyncapi/parser`` (pinned in deploy/asyncapi/, installed by ``make install``)
parses it; ``validate.mjs`` also checks every message example against the
message's payload and headers schemas. The broken copies show that a failure is
reported, and where.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from videoimport_devstack import asyncapi_tool

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = REPO / "docs" / "asyncapi.json"


@pytest.fixture(scope="module")
def validator() -> None:
    asyncapi_tool.install()  # a no-op after `make install`


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        asyncapi_tool.validate_command(path), capture_output=True, text=True, timeout=120
    )


def broken_copy(tmp_path: Path, change: Any) -> Path:
    document = copy.deepcopy(json.loads(DOCUMENT.read_text()))
    change(document)
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(document))
    return path


def test_the_committed_document_is_valid(validator: None) -> None:
    result = validate(DOCUMENT)
    assert result.returncode == 0, result.stderr
    assert "valid AsyncAPI 3.0.0" in result.stdout
    assert " error " not in result.stderr


def test_a_dangling_reference_is_an_error(validator: None, tmp_path: Path) -> None:
    path = broken_copy(tmp_path, lambda d: d["components"]["schemas"].pop("Overview"))
    result = validate(path)
    assert result.returncode == 1
    assert "error invalid-ref at #/components/schemas/JobCompleted/properties/overview" in (
        result.stderr
    )
    assert "'#/components/schemas/Overview' does not exist" in result.stderr


def test_an_unknown_operation_action_is_an_error(validator: None, tmp_path: Path) -> None:
    path = broken_copy(tmp_path, lambda d: d["operations"]["send-jobs"].update(action="publish"))
    result = validate(path)
    assert result.returncode == 1
    assert "#/operations/send-jobs/action" in result.stderr
    assert '"send", "receive"' in result.stderr


def test_an_example_that_contradicts_its_schema_is_an_error(
    validator: None, tmp_path: Path
) -> None:
    def break_example(document: dict[str, Any]) -> None:
        example = document["components"]["messages"]["VideoImportFailed"]["examples"][0]
        example["payload"]["data"]["index"] = "first"
        example["headers"]["event-type"] = "VideoImported"

    result = validate(broken_copy(tmp_path, break_example))
    assert result.returncode == 1
    where = "#/components/messages/VideoImportFailed/examples/0"
    assert f"{where}/payload/data/index" in result.stderr
    assert "must be integer" in result.stderr
    assert f"{where}/headers/event-type" in result.stderr


def test_an_external_reference_is_refused_without_fetching(validator: None, tmp_path: Path) -> None:
    def point_outside(document: dict[str, Any]) -> None:
        document["components"]["schemas"]["Overview"] = {"$ref": "https://example.com/o.json"}

    result = validate(broken_copy(tmp_path, point_outside))
    assert result.returncode == 1
    assert "external-ref" in result.stderr and "https://example.com/o.json" in result.stderr
