"""The operator pages: sign in with an API token, list the project's jobs, look at one.

Read-only HTML rendered on the server. Every response carries a strict
Content-Security-Policy (no script at all, styles only from ``/ui/static``), may not be
framed, cached or leak a referrer.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any, Final

import msgspec
from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Redirect, Template
from videoimport_projects import TokenGrant, grant_for

from videoimport_api.adapters import jobs
from videoimport_api.domain import listing
from videoimport_api.domain.errors import ApiError
from videoimport_api.handlers import STATUS_SCOPES, Dependencies
from videoimport_api.ui import pages, queries, session

JOBS_PER_PAGE: Final = 25
MAX_JOB_ID_CHARS: Final = 64
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self';"
        " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
FORM_TYPE: Final = "application/x-www-form-urlencoded"
_STYLESHEET: Final = resources.files("videoimport_api.ui").joinpath("static/ui.css").read_bytes()


async def _with_security_headers(response: Response[Any]) -> Response[Any]:
    response.headers.update(SECURITY_HEADERS)
    return response


def _page(
    name: str, context: dict[str, Any], status: int = 200, cookies: list[Any] | None = None
) -> Template:
    return Template(template_name=name, context=context, status_code=status, cookies=cookies)


def _error(status: int, message: str, signed_in: bool = True) -> Template:
    return _page(
        "error.html", {"status": status, "message": message, "signed_in": signed_in}, status
    )


def _to_sign_in() -> Redirect:
    return Redirect(path="/ui", status_code=303)


def _secure(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


def _cross_site(request: Request[Any, Any, Any]) -> bool:
    headers = request.headers
    return not session.same_origin(
        headers.get("sec-fetch-site"),
        headers.get("origin"),
        request.url.scheme,
        headers.get("host"),
    )


async def _grant(deps: Dependencies, token: str | None) -> TokenGrant | None:
    """The grant of a token that may read the project's jobs (as the status API checks)."""
    if token is None:
        return None
    async with deps.pool.acquire() as conn:
        grant = await grant_for(conn, token)
    if grant is None or grant.scopes.isdisjoint(STATUS_SCOPES):
        return None
    return grant


async def _signed_in(deps: Dependencies, request: Request[Any, Any, Any]) -> TokenGrant | None:
    return await _grant(deps, session.clean_token(request.cookies.get(session.COOKIE_NAME)))


async def _form_body(request: Request[Any, Any, Any]) -> bytes | None:
    """The sign-in body, read no further than ``MAX_FORM_BYTES`` (None when larger)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > session.MAX_FORM_BYTES):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > session.MAX_FORM_BYTES:
            return None
    return body


def ui_handlers(deps: Dependencies) -> list[HTTPRouteHandler]:
    hooks: dict[str, Any] = {"after_request": _with_security_headers, "include_in_schema": False}

    @get("/ui", **hooks)
    async def sign_in_form(request: Request[Any, Any, Any]) -> Response[Any]:
        if await _signed_in(deps, request) is not None:
            return Redirect(path="/ui/jobs", status_code=303)
        return _page("sign_in.html", {"message": None})

    @post("/ui/login", **hooks)
    async def sign_in(request: Request[Any, Any, Any]) -> Response[Any]:
        if _cross_site(request):
            return _error(403, "sign-in from another site refused", signed_in=False)
        media_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if media_type != FORM_TYPE:
            return _page("sign_in.html", {"message": "send the sign-in form"}, 415)
        body = await _form_body(request)
        if body is None:
            message = f"the sign-in form is limited to {session.MAX_FORM_BYTES} bytes"
            return _page("sign_in.html", {"message": message}, 413)
        token = session.form_token(body)
        if token is None or await _grant(deps, token) is None:
            message = "unknown, revoked or expired token, or one without a read or write scope"
            return _page("sign_in.html", {"message": message}, 401)
        cookie = session.sign_in_cookie(token, _secure(request))
        return Redirect(path="/ui/jobs", status_code=303, cookies=[cookie])

    @post("/ui/logout", **hooks)
    async def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
        if _cross_site(request):
            return _error(403, "sign-out from another site refused", signed_in=False)
        cookie = session.sign_out_cookie(_secure(request))
        return Redirect(path="/ui", status_code=303, cookies=[cookie])

    @get("/ui/jobs", **hooks)
    async def job_list(request: Request[Any, Any, Any]) -> Response[Any]:
        grant = await _signed_in(deps, request)
        if grant is None:
            return _to_sign_in()
        # The API's listing, cursor and all: one keyset page of the project's jobs.
        raw_cursor = request.query_params.getall("cursor", [])
        try:
            query = listing.parse_jobs_query({"cursor": raw_cursor} if raw_cursor else {})
        except ApiError:
            return _error(400, "invalid cursor: follow the page links")
        query = msgspec.structs.replace(query, limit=JOBS_PER_PAGE)
        async with deps.pool.acquire() as conn:
            rows = await jobs.list_jobs(conn, grant.project, query)
        page, more = listing.page_of(rows, query.limit)
        next_cursor = listing.next_jobs_cursor(query, page, more)
        context = pages.jobs_context(grant.project, page, next_cursor, query.after is None)
        return _page("jobs.html", context)

    @get("/ui/jobs/{job_id:str}", **hooks)
    async def job_detail(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
        grant = await _signed_in(deps, request)
        if grant is None:
            return _to_sign_in()
        page = None
        if len(job_id) <= MAX_JOB_ID_CHARS:
            async with deps.pool.acquire() as conn:
                page = await queries.job_page(conn, grant.project, job_id)
        if page is None:
            return _error(404, "no such import job in this project")
        now = time.time()  # like a status: fresh links on every view
        context = pages.job_context(
            grant.project,
            page,
            queries.TIMELINE_CAP,
            lambda key: deps.media_links.local_url(key, now),
        )
        return _page("job.html", context)

    @get("/ui/static/ui.css", **hooks)
    async def stylesheet() -> Response[bytes]:
        return Response(content=_STYLESHEET, media_type="text/css; charset=utf-8")

    return [sign_in_form, sign_in, sign_out, job_list, job_detail, stylesheet]
