"""The web UI: the home form, the link page (result, QR, stats) and the HTML side
of visits (password pages, file downloads, friendly 404/410).

The redirect hot path in ``web/app.py`` answers plain URL links itself and
hands every other ``/{code}`` request here; this router answers all of them
correctly on its own too, so it is the reference for what a visit does.

No store call runs on the event loop, which also answers the worker's
redirects: pages that only read the store are plain ``def`` (FastAPI runs
them in its thread pool), and the ``async def`` ones (they read a posted
form) hand their store calls to that pool too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from steadylink.errors import Gone, NotFound, RateLimited, SteadylinkError
from steadylink.links.codes import looks_like_code
from steadylink.links.files import size_text
from steadylink.links.model import Link, LinkKind
from steadylink.links.service import Outcome, resolve_link
from steadylink.web.auth import client_ip
from steadylink.web.context import AppContext, provide_context
from steadylink.web.pages import (
    STATIC_CACHE,
    STATIC_FILES,
    answer_head,
    create_from_form,
    day_bars,
    error_response,
    file_response,
    read_form,
    render_page,
    wants_html,
)
from steadylink.web.qr import qr_svg

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(provide_context)]


# Pages answer HEAD as GET without the body (monitors and link checkers use it).
@router.api_route("/static/{name}", methods=["GET", "HEAD"])
def serve_static(request: Request, name: str) -> Response:
    found = STATIC_FILES.get(name)
    if found is None:
        return answer_head(request, Response("Not found", status_code=404, media_type="text/plain"))
    headers = {"Cache-Control": STATIC_CACHE, "X-Content-Type-Options": "nosniff"}
    return answer_head(request, Response(found.body, media_type=found.media_type, headers=headers))


@router.api_route("/", methods=["GET", "HEAD"])
def show_home(request: Request, ctx: Ctx) -> Response:
    return answer_head(request, _home(ctx))


@router.post("/")
async def create_from_home(request: Request, ctx: Ctx) -> Response:
    """Create a link from the home form; on error show the form again, as typed."""
    values: dict[str, str] = {}
    if not ctx.settings.links.anonymous_create:
        message = "Creating links from this page is turned off here; use the API with a key."
        return _home(ctx, status=403, errors={"form": message})
    try:
        ctx.limiter.check("create", client_ip(request))
        form = await read_form(request, ctx.settings.links.upload_max_bytes)
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != "password"}
        link = await create_from_form(ctx, form)
    except RateLimited as exc:
        retry = {"Retry-After": str(max(1, round(exc.retry_after)))}
        return _home(ctx, status=429, errors={"form": exc.message}, values=values, headers=retry)
    except SteadylinkError as exc:
        if exc.status >= 500:  # the database: its text is for the log, the form gets the fixed sentence
            _log_server_error(request, exc)
        errors = {exc.field or "form": str(exc.to_json()["message"])}
        return _home(ctx, status=exc.status, errors=errors, values=values)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.links_created.inc()
    return RedirectResponse(f"/s/{link.code}?new=1", status_code=303)


@router.api_route("/s/{code}", methods=["GET", "HEAD"])
def show_link(request: Request, code: str, ctx: Ctx) -> Response:
    """The link page: short URL, copy button, QR code and (when allowed) stats."""
    link = _known_link(ctx, code)
    if link is None:
        return answer_head(request, _not_found(request))
    return answer_head(request, _link_page(ctx, link, is_new=request.query_params.get("new") == "1"))


@router.post("/s/{code}")
async def unlock_stats(request: Request, code: str, ctx: Ctx) -> Response:
    """Stats of a password-protected link, for whoever knows its password."""
    link = await run_in_threadpool(_known_link, ctx, code)
    if link is None:
        return _not_found(request)
    password = await _password_attempt(request, ctx)
    if isinstance(password, Response):
        return password
    is_right = await _check_password(request, ctx, link, password)
    if isinstance(is_right, Response):
        return is_right
    if is_right:
        return await run_in_threadpool(_link_page, ctx, link, is_unlocked=True)
    return await run_in_threadpool(_link_page, ctx, link, status=403, error="That password is not right.")


@router.api_route("/{code}", methods=["GET", "HEAD"])
def visit(request: Request, code: str, ctx: Ctx) -> Response:
    """Follow a link: redirect, download, or ask for its password."""
    link = _usable_link(request, ctx, code)
    if isinstance(link, Response):
        return link
    if link.has_password:
        return answer_head(request, render_page("password.html", code=code, error=None))
    return _deliver(request, ctx, link, after_post=False)


@router.post("/{code}")
async def unlock_link(request: Request, code: str, ctx: Ctx) -> Response:
    """Check a password-protected link's password, then redirect or download."""
    link = await run_in_threadpool(_usable_link, request, ctx, code)
    if isinstance(link, Response):
        return link
    password = await _password_attempt(request, ctx)
    if isinstance(password, Response):
        return password
    is_right = await _check_password(request, ctx, link, password)
    if isinstance(is_right, Response):
        return is_right
    if not is_right:
        error = "That password is not right. Check it and try again."
        return render_page("password.html", status=403, code=code, error=error)
    return await run_in_threadpool(_deliver, request, ctx, link, after_post=True)


# the steps -------------------------------------------------------------------


def _home(
    ctx: AppContext,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    page = render_page(
        "home.html",
        status=status,
        errors=errors or {},
        values=values or {},
        can_create=ctx.settings.links.anonymous_create,
        max_upload=size_text(ctx.settings.links.upload_max_bytes),
        short_prefix=ctx.settings.base_url.split("://", 1)[-1].rstrip("/"),
    )
    page.headers.update(headers or {})
    return page


def _link_page(
    ctx: AppContext,
    link: Link,
    *,
    status: int = 200,
    is_new: bool = False,
    is_unlocked: bool = False,
    error: str | None = None,
) -> Response:
    short_url = f"{ctx.settings.base_url.rstrip('/')}/{link.code}"
    now = ctx.clock.now()
    resolution = resolve_link(link=link, now=now)
    # The page is anyone's who has the code: a password link's target (and its
    # stats) only for whoever proves the password (owners and admins use the API).
    shows_stats = not link.has_password or is_unlocked
    stats = ctx.store.link_stats(link.code) if shows_stats else None
    return render_page(
        "link.html",
        status=status,
        link=link,
        short_url=short_url,
        stats_url=f"{ctx.settings.base_url.rstrip('/')}/s/{link.code}",
        qr=qr_svg(short_url, title=f"QR code for {short_url}"),
        is_new=is_new,
        state=resolution.reason or "Active",
        is_active=resolution.outcome is Outcome.FOUND,
        stats=stats,
        shows_target=shows_stats,
        bars=day_bars(stats.per_day, last=now.date()) if stats else [],
        error=error,
    )


def _known_link(ctx: AppContext, code: str) -> Link | None:
    if not looks_like_code(code):
        return None
    link = ctx.store.get_link(code)
    return None if link is None or link.is_disabled else link


def _usable_link(request: Request, ctx: AppContext, code: str) -> Link | Response:
    link = ctx.store.get_link(code) if looks_like_code(code) else None
    resolution = resolve_link(link=link, now=ctx.clock.now())
    if resolution.outcome is Outcome.NOT_FOUND or resolution.link is None:
        return _not_found(request)
    if resolution.outcome is Outcome.GONE:
        return _gone(request, resolution.reason)
    return resolution.link


async def _password_attempt(request: Request, ctx: AppContext) -> str | Response:
    """The posted password, or a 429/400 answer; every attempt is rate-limited."""
    try:
        ctx.limiter.check("password", client_ip(request))
        form = await read_form(request, 0)
    except RateLimited as exc:
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
        return error_response(
            request, status=429, kind=exc.kind, message=exc.message, headers=headers
        )
    except SteadylinkError as exc:
        return error_response(request, status=exc.status, kind=exc.kind, message=exc.message)
    password = form.get("password")
    return password if isinstance(password, str) else ""


async def _check_password(request: Request, ctx: AppContext, link: Link, password: str) -> bool | Response:
    """The password checked off the event loop (``web/unlock.py``), or a 429 past the link's limit."""
    if link.password_hash is None:
        return True
    try:
        return await ctx.passwords.check(link.code, link.password_hash, password)
    except RateLimited as exc:
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
        return error_response(request, status=429, kind=exc.kind, message=exc.message, headers=headers)


def _deliver(request: Request, ctx: AppContext, link: Link, *, after_post: bool) -> Response:
    """Count the visit, then redirect or serve the file. HEAD only looks."""
    is_head = request.method == "HEAD"
    if not is_head:
        if link.max_visits is not None:
            is_allowed = ctx.store.take_limited_visit(link.code)
            ctx.cache.invalidate(link.code)
            if not is_allowed:
                return _gone(request, "This link has reached its visit limit.")
        ctx.clicks.record(
            link.code,
            referrer=request.headers.get("referer"),
            user_agent=request.headers.get("user-agent"),
        )
    if link.kind is LinkKind.FILE and link.file is not None:
        path = ctx.files.path_of(link.file.sha256)
        if not path.is_file():
            return _gone(request, "The file behind this link is no longer stored.")
        return file_response(path, link.file)
    if after_post and wants_html(request):
        # A browser must not get a redirect here: the page's CSP (form-action
        # 'self') also covers where a form's answer redirects, so Chromium stays
        # on the page. A refresh is no form navigation; the link is the fallback.
        return render_page("follow.html", url=str(link.url))
    # After a password POST only 303 is right: 307/308 would re-send the password.
    status = 303 if after_post else ctx.settings.links.redirect_status
    return RedirectResponse(str(link.url), status_code=status)


def _log_server_error(request: Request, exc: Exception) -> None:
    log = getattr(request.app.state, "request_log", None)
    if log is not None:
        request_id = str(getattr(request.state, "request_id", "-"))
        log.error(exc, request_id=request_id, method=request.method, route=request.url.path)


def _not_found(request: Request) -> Response:
    error = NotFound("No link has this name. Check the address for typos.")
    return error_response(request, status=404, kind=error.kind, message=error.message)


def _gone(request: Request, reason: str) -> Response:
    error = Gone(reason)
    return error_response(request, status=410, kind=error.kind, message=error.message)
