"""Bearer tokens and scopes."""

from __future__ import annotations

from videoimport_api.domain.errors import ApiError, FieldError


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header; raises 401 otherwise."""
    if not authorization:
        raise unauthorized("missing Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("expected 'Authorization: Bearer <token>'")
    return token.strip()


def unauthorized(reason: str) -> ApiError:
    return ApiError(
        401,
        "a valid access token is required",
        [FieldError("Authorization", reason)],
        {"www-authenticate": 'Bearer realm="videoimport"'},
    )


def require_scope(scopes: frozenset[str], scope: str) -> None:
    if scope not in scopes:
        raise ApiError(
            403,
            f"the access token lacks the scope {scope}",
            [FieldError("Authorization", f"scope {scope} required")],
            {"www-authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
