"""Bearer tokens and scopes.

Reading a job's status needs ``public-api:read`` or ``public-api:write``;
recording a job needs ``public-api:write``.
"""

from __future__ import annotations

from typing import Final

from videoimport_api.domain.errors import ApiError, FieldError

READ_SCOPE: Final = "public-api:read"


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


def require_scope(scopes: frozenset[str], scope: str, *alternatives: str) -> None:
    """403 unless the token has ``scope`` or one of the ``alternatives``."""
    accepted = (scope, *alternatives)
    if not scopes.isdisjoint(accepted):
        return
    named = " or ".join(accepted)
    raise ApiError(
        403,
        f"the access token lacks the scope {named}",
        [FieldError("Authorization", f"scope {named} required")],
        {"www-authenticate": f'Bearer error="insufficient_scope", scope="{" ".join(accepted)}"'},
    )
