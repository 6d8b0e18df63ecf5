"""The reusable parts of the OpenAPI document: ``components`` and the helpers to cite them.

Operations (``openapi_document``) refer to the shared parameters, error responses
and body schemas defined here by ``$ref``, so each limit and each error text is
written once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec

from videoimport_api import openapi_schemas as bodies
from videoimport_api.domain.cursor import MAX_CURSOR_CHARS
from videoimport_api.domain.errors import ErrorBody
from videoimport_api.domain.idempotency import HEADER as IDEMPOTENCY_KEY
from videoimport_api.domain.idempotency import MAX_KEY_LENGTH
from videoimport_api.domain.params import MAX_JOB_ID

REF: Final = "#/components/schemas/{name}"
JSON: Final = "application/json"
NO_AUTH: Final[list[dict[str, list[str]]]] = []

_BODY_TYPES: Final = (
    bodies.ImportRequest,
    bodies.ImportAccepted,
    bodies.DryRunResult,
    bodies.StatusStarted,
    bodies.StatusFinished,
    bodies.JobList,
    bodies.JobAccepted,
    bodies.RetryStarted,
    bodies.CancelAccepted,
    bodies.Liveness,
    bodies.Readiness,
    bodies.LegacyReadiness,
    ErrorBody,
)

_ERRORS: Final = {
    400: "A parameter, header or the body is invalid; `error_details` names each field.",
    401: "No token, or an unknown, revoked or expired one.",
    403: "The token lacks the scope the operation needs.",
    404: "Unknown API version, or no such job in the token's project.",
    409: "The job is not in a state that allows this.",
    410: "The API version is retired.",
    413: "The body is larger than this deployment's limit.",
    415: "The body is declared as something other than JSON.",
    422: f"The `{IDEMPOTENCY_KEY}` was already used for a different request.",
    500: "An unexpected error; nothing was recorded.",
}
_AUTHENTICATE: Final = {
    "WWW-Authenticate": {"description": "The bearer challenge.", "schema": {"type": "string"}}
}


def schema_ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def json_response(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def _error(status: int) -> dict[str, Any]:
    headers = {"headers": _AUTHENTICATE} if status in (401, 403) else {}
    return json_response(schema_ref("ErrorBody"), _ERRORS[status], **headers)


def responses(ok: dict[int, dict[str, Any]], errors: Iterable[int]) -> dict[str, Any]:
    """``ok`` plus the error shape for each code of ``errors``, and 500 for everyone."""
    answers = {str(code): body for code, body in ok.items()}
    for code in (*errors, 500):
        answers[str(code)] = {"$ref": f"#/components/responses/{code}"}
    return answers


def query_parameter(
    name: str, schema: dict[str, Any], description: str, required: bool = False
) -> Any:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


API_ERRORS: Final = (400, 401, 403, 404, 410)
API_VERSION: Final = {"$ref": "#/components/parameters/apiVersion"}
JOB_ID: Final = {"$ref": "#/components/parameters/jobId"}
IDEMPOTENCY: Final = {"$ref": "#/components/parameters/idempotencyKey"}
CURSOR: Final = query_parameter(
    "cursor",
    {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "maxLength": MAX_CURSOR_CHARS},
    "Opaque: the `nextCursor` of the previous page, with the same filters.",
)
REPLAYED: Final = {
    "Idempotent-Replayed": {
        "description": f"`true` when a repeated `{IDEMPOTENCY_KEY}` returned the earlier job.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def components(max_batch: int, versions: list[str]) -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components(_BODY_TYPES, ref_template=REF)
    # The batch limit is per deployment; the Struct cannot know it.
    schemas["ImportRequest"]["properties"]["videos"]["maxItems"] = max_batch
    shared_responses = {str(code): _error(code) for code in _ERRORS}
    shared_responses["media403"] = json_response(
        schema_ref("ErrorBody"), "The link is missing, malformed, tampered with or expired."
    )
    parameters = {
        "apiVersion": {
            "name": "apiVersion",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": versions},
            "description": "A supported version; an unknown one is a 404, a retired one a 410.",
        },
        "jobId": query_parameter(
            "id",
            {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_JOB_ID,
                "pattern": bodies.IDENTITY_PATTERN,
            },
            "The job id.",
            required=True,
        ),
        "idempotencyKey": {
            "name": IDEMPOTENCY_KEY,
            "in": "header",
            "required": False,
            "schema": {"type": "string", "pattern": "^[ -~]+$", "maxLength": MAX_KEY_LENGTH},
            "description": (
                "Printable ASCII, surrounding spaces ignored. A repeated request with the same "
                "key returns the first answer; the same key with a different request is a 422. "
                "Keys are kept indefinitely."
            ),
        },
    }
    return {
        "schemas": schemas,
        "responses": shared_responses,
        "parameters": parameters,
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": (
                    "An API token of one project (`videoimport token create`). Scopes: "
                    "`public-api:read` reads (status, jobs), `public-api:write` reads and writes. "
                    "A token only ever sees its own project's jobs."
                ),
            }
        },
    }
