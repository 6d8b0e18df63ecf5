"""The one error shape every response of the API uses."""

from __future__ import annotations

from http import HTTPStatus

import msgspec


class FieldError(msgspec.Struct, frozen=True):
    field: str
    reason: str


class ErrorBody(msgspec.Struct, frozen=True):
    status: int
    error: str
    error_details: list[FieldError]


class ApiError(Exception):
    """A client-facing failure; ``error`` is a human summary, ``details`` name the fields."""

    def __init__(
        self,
        status: int,
        error: str | None = None,
        details: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.error = error or status_phrase(status)
        self.details = details or []
        self.headers = headers or {}
        super().__init__(f"{status} {self.error}")

    def body(self) -> ErrorBody:
        return ErrorBody(status=self.status, error=self.error, error_details=self.details)


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
