"""The OpenAPI 3.1 document of the API, built per deployment (versions, batch limit).

Hand-built because the handlers take raw requests and answer bytes: a framework's
generated document would describe neither the bodies nor the errors. Bodies are
the Structs of ``openapi_schemas`` (JSON Schema by msgspec); every operation lists
the status codes its handler really answers, each error in the one error shape
(shared parameters, responses and security in ``openapi_components``).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import version
from typing import Any, Final

from videoimport_api import openapi_schemas as bodies
from videoimport_api.domain.idempotency import HEADER as IDEMPOTENCY_KEY
from videoimport_api.domain.validation import MAX_SYSTEM_NAME
from videoimport_api.openapi_components import (
    API_ERRORS,
    API_VERSION,
    CURSOR,
    IDEMPOTENCY,
    JOB_ID,
    JSON,
    NO_AUTH,
    REPLAYED,
    components,
    json_response,
    query_parameter,
    responses,
    schema_ref,
)

IMPORTS: Final = "/api/{apiVersion}/import/videos"
READ: Final = "Scope: `public-api:read` or `public-api:write`."
WRITE: Final = "Scope: `public-api:write`."


def _import_operation() -> dict[str, Any]:
    dry_run = query_parameter(
        "dryRun",
        {"type": "boolean", "default": False},
        "`true`: validate and answer what the import would do per video; nothing is recorded.",
    )
    accepted = {"anyOf": [schema_ref("ImportAccepted"), schema_ref("DryRunResult")]}
    return {
        "tags": ["imports"],
        "operationId": "importVideos",
        "summary": "Import a batch of videos",
        "description": (
            f"Records the job and answers once it is recorded. {WRITE} With an "
            f"`{IDEMPOTENCY_KEY}` a repeated request (same project, key and request) answers "
            "the first job id again."
        ),
        "parameters": [API_VERSION, IDEMPOTENCY, dry_run],
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": schema_ref("ImportRequest")}},
        },
        "responses": responses(
            {
                200: json_response(
                    accepted, "The job id; with `dryRun=true` the dry run.", headers=REPLAYED
                )
            },
            (*API_ERRORS, 413, 415, 422),
        ),
    }


def _status_operation() -> dict[str, Any]:
    paged = "Any of `state`, `cursor`, `limit` pages the `videos` (ordered by index)."
    return {
        "tags": ["imports"],
        "operationId": "importStatus",
        "summary": "The status of a job",
        "description": f"{READ} {paged}",
        "parameters": [
            API_VERSION,
            JOB_ID,
            query_parameter(
                "state",
                {"type": "string", "enum": ["started", "success", "skipped", "failed"]},
                "Only videos in this state (`started`: no result yet).",
            ),
            CURSOR,
            query_parameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                "Videos per page.",
            ),
        ],
        "responses": responses(
            {
                200: json_response(
                    {"anyOf": [schema_ref("StatusStarted"), schema_ref("StatusFinished")]},
                    "The job.",
                )
            },
            API_ERRORS,
        ),
    }


def _jobs_operation() -> dict[str, Any]:
    return {
        "tags": ["jobs"],
        "operationId": "listJobs",
        "summary": "The project's jobs, newest first",
        "description": READ,
        "parameters": [
            API_VERSION,
            query_parameter(
                "state",
                {"type": "string", "enum": ["started", "success", "failed"]},
                "Only jobs in this state.",
            ),
            query_parameter(
                "systemName",
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_SYSTEM_NAME,
                    "pattern": bodies.IDENTITY_PATTERN,
                },
                "Only jobs of this source system.",
            ),
            CURSOR,
            query_parameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                "Jobs per page.",
            ),
        ],
        "responses": responses(
            {200: json_response(schema_ref("JobList"), "A page of jobs.")}, API_ERRORS
        ),
    }


def _job_command(
    operation_id: str,
    summary: str,
    description: str,
    ok: dict[int, dict[str, Any]],
    idempotent: bool = False,
) -> dict[str, Any]:
    errors = (*API_ERRORS, 409, *((422,) if idempotent else ()))
    parameters = [API_VERSION, JOB_ID, *([IDEMPOTENCY] if idempotent else [])]
    return {
        "tags": ["jobs"],
        "operationId": operation_id,
        "summary": summary,
        "description": f"{WRITE} {description}",
        "parameters": parameters,
        "responses": responses(ok, errors),
    }


def _paths() -> dict[str, Any]:
    return {
        IMPORTS: {"post": _import_operation()},
        f"{IMPORTS}/status": {"get": _status_operation()},
        f"{IMPORTS}/jobs": {"get": _jobs_operation()},
        f"{IMPORTS}/webhook/redeliver": {
            "post": _job_command(
                "redeliverWebhook",
                "Send a finished job's webhook again",
                "409 when the job has not finished or has no webhook.",
                {202: json_response(schema_ref("JobAccepted"), "The redelivery is recorded.")},
            )
        },
        f"{IMPORTS}/retry": {
            "post": _job_command(
                "retryJob",
                "Import a finished job's failed videos again, as a new job",
                "409 when the job has not finished or has no failed video.",
                {200: json_response(schema_ref("RetryStarted"), "The new job.", headers=REPLAYED)},
                idempotent=True,
            )
        },
        f"{IMPORTS}/cancel": {
            "post": _job_command(
                "cancelJob",
                "Cancel a running job",
                "Every video without a result fails with the code `cancelled`; the job then "
                "completes (and sends its webhook) as any job. 409 when the job has finished "
                "or was cancelled before.",
                {202: json_response(schema_ref("CancelAccepted"), "The cancellation is recorded.")},
            )
        },
        "/media/{key}": _media_path(),
        "/health/live": {
            "get": _health("liveness", "Whether the process serves (no I/O).", "Liveness")
        },
        "/health/ready": {
            "get": _health("readiness", "Whether PostgreSQL answers.", "Readiness", True)
        },
        "/health": {
            "get": _health(
                "legacyReadiness", "`/health/ready` without `checks`.", "LegacyReadiness", True
            )
        },
    }


def _health(
    operation_id: str, summary: str, schema: str, may_be_unavailable: bool = False
) -> dict[str, Any]:
    answers = {"200": json_response(schema_ref(schema), "Ready (or alive).")}
    if may_be_unavailable:
        answers["503"] = json_response(schema_ref(schema), "Not ready: `status` is `unavailable`.")
    answers["500"] = {"$ref": "#/components/responses/500"}
    return {
        "tags": ["health"],
        "operationId": operation_id,
        "summary": summary,
        "security": NO_AUTH,
        "responses": answers,
    }


def _media_path() -> dict[str, Any]:
    parameters = [
        {
            "name": "key",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": "`{project}/{mediaId}/{eventId}{ext}`; any other shape is a 404.",
        },
        query_parameter(
            "expires", {"type": "string"}, "Unix seconds, from the link.", required=True
        ),
        query_parameter("signature", {"type": "string"}, "From the link.", required=True),
    ]
    video = {"video/*": {"schema": {"type": "string", "format": "binary"}}}
    errors = {
        "403": {"$ref": "#/components/responses/media403"},
        "404": {"$ref": "#/components/responses/404"},
        "416": json_response(schema_ref("ErrorBody"), "The `Range` cannot be satisfied."),
        "500": {"$ref": "#/components/responses/500"},
    }

    def operation(method: str, ok: dict[str, Any]) -> dict[str, Any]:
        return {
            "tags": ["media"],
            "operationId": f"{method}Media",
            "summary": "A stored video, by the signed link a status gives (`originalUrl`)",
            "security": NO_AUTH,
            "parameters": parameters,
            "responses": {**ok, **errors},
        }

    return {
        "get": operation(
            "get",
            {
                "200": {"description": "The video.", "content": video},
                "206": {"description": "The requested range.", "content": video},
            },
        ),
        "head": operation("head", {"200": {"description": "The video's headers."}}),
    }


def build_document(*, versions: Iterable[str], max_batch: int, max_body_bytes: int) -> Any:
    """The document for a deployment answering ``versions`` with batches of ``max_batch``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Video import API",
            "version": version("videoimport-api"),
            "description": (
                "Asynchronous batch video import. Every error has the body "
                "`{status, error, error_details: [{field, reason}]}`. A request body may be "
                f"at most {max_body_bytes} bytes (413)."
            ),
        },
        "tags": [
            {"name": "imports", "description": "Import videos and follow a job."},
            {"name": "jobs", "description": "List, retry and cancel jobs."},
            {"name": "media", "description": "The stored videos, by signed link."},
            {"name": "health", "description": "Probes for orchestrators."},
        ],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": components(max_batch, sorted(versions)),
    }
