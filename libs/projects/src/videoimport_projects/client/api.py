"""The import API over HTTP, for the client commands: timeouts, retries, one error type.

Transient trouble (the API unreachable, a timeout, 429, 502, 503, 504) is retried
with the shared ``RetryPolicy``, waiting what a ``Retry-After`` asks for when the
API sends one. Retrying a POST is safe: every import carries an
``Idempotency-Key``, so the API answers a repeat with the job it already made.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
from videoimport_eventlog.retry import RetryPolicy, parse_retry_after

from videoimport_projects.client import DEFAULT_API_VERSION

USER_AGENT = "videoimport-cli/1"
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_POLICY = RetryPolicy(attempts=5, base=0.5, max_delay=10.0)
MAX_RETRY_AFTER = 60.0
"""A longer pause than this is not waited for: the command gives up instead."""
TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class ApiFailure(Exception):
    """The API refused (4xx/5xx) or could not be reached; ``str`` is for the user."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


def describe_error(response: httpx.Response) -> str:
    """``HTTP 400: <error> (field: reason; …)`` from the API's one error shape."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return f"HTTP {response.status_code} {response.reason_phrase}".strip()
    details = [
        f"{d.get('field')}: {d.get('reason')}"
        for d in body.get("error_details") or []
        if isinstance(d, dict)
    ]
    shown = "; ".join(details[:10]) + (f"; {len(details) - 10} more" if len(details) > 10 else "")
    return f"HTTP {response.status_code}: {body['error']}" + (f" ({shown})" if shown else "")


class ImportApi:
    """One API, one token; ``sleep`` and ``policy`` are the retry's, swappable in tests."""

    def __init__(
        self,
        base_url: str,
        token: str,
        api_version: str = DEFAULT_API_VERSION,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.prefix = f"/api/{api_version}/import/videos"
        self.policy = policy
        self.sleep = sleep
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
            timeout=TIMEOUT,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()

    def submit(self, body: dict[str, Any], key: str) -> tuple[str, bool]:
        """The job id, and whether the API had already accepted this very request."""
        response = self._request("POST", "", json=body, headers={"Idempotency-Key": key})
        job_id = response.json().get("id")
        if not isinstance(job_id, str):
            raise ApiFailure(f"the API answered without a job id: {response.text[:200]}")
        return job_id, response.headers.get("Idempotent-Replayed") == "true"

    def status(self, job_id: str, **paging: str | int) -> dict[str, Any]:
        return self._document("/status", {"id": job_id, **paging})

    def jobs(self, **query: str | int) -> dict[str, Any]:
        return self._document("/jobs", query)

    def failed_videos(self, job_id: str) -> Iterator[dict[str, Any]]:
        """Every failed video of the job, page by page (``state=failed``, ``nextCursor``)."""
        cursor: str | None = None
        while True:
            paging: dict[str, str | int] = {"state": "failed", "limit": 1000}
            if cursor is not None:
                paging["cursor"] = cursor
            page = self.status(job_id, **paging)
            for video in page.get("videos") or []:
                # An API without paging answers with every video: keep the failed ones.
                if isinstance(video, dict) and video.get("state") == "failed":
                    yield video
            cursor = page.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                return

    def _document(self, path: str, query: dict[str, str | int]) -> dict[str, Any]:
        response = self._request("GET", path, params=query)
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ApiFailure(f"the API answered {path or '/'} with no JSON object")
        return document

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 1
        while True:
            try:
                response = self.http.request(method, self.prefix + path, **kwargs)
            except httpx.TransportError as exc:
                if self.policy.exhausted(attempt):
                    raise ApiFailure(
                        f"cannot reach the API at {self.http.base_url}: {exc or type(exc).__name__}"
                    ) from exc
                self.sleep(self.policy.delay(attempt, random.random()))
                attempt += 1
                continue
            if response.is_success:
                return response
            if response.status_code not in TRANSIENT_STATUSES or self.policy.exhausted(attempt):
                raise ApiFailure(describe_error(response), response.status_code)
            wait = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
            if wait is not None and wait > MAX_RETRY_AFTER:
                raise ApiFailure(describe_error(response), response.status_code)
            self.sleep(wait if wait is not None else self.policy.delay(attempt, random.random()))
            attempt += 1
