"""Errors at the HTTP edge: every failure is a JSON body, never a stack trace.

``install_error_handlers(app)`` maps:

- ``SteadylinkError`` → its ``status`` and ``to_json()`` (401 adds
  ``WWW-Authenticate``, 429 adds ``Retry-After``);
- request validation → 422 ``{"error": "invalid", "message", "field", "details"}``
  naming the first bad field (``body`` when the JSON itself is malformed);
- routing's 404 / 405 → JSON (browsers may get HTML through ``render_html``,
  but never under ``/api/``);
- anything unexpected → a plain JSON 500 (the app logs the exception);
- every 5xx (a bug, the database not answering) carries a fixed sentence and
  the request id, never the error's own text (a driver's message holds SQL,
  bound parameters of other users' rows, host:port): the exception goes on to
  the app's edge, which writes it to the log.

It also adds ``BodyLimit``: JSON and form bodies above ``MAX_JSON_BYTES``, and
multipart uploads above the upload limit plus a little room for the form, get
a 413 as soon as the Content-Length says so or the streamed body passes it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from steadylink.errors import RateLimited, SteadylinkError, TooLarge, Unauthorized
from steadylink.links.files import size_text

MAX_JSON_BYTES = 64 * 1024
INTERNAL_MESSAGE = (
    "Something went wrong on our side; the request id identifies it in our logs. "
    "Try again, and tell the operators if it keeps happening."
)
MULTIPART_ROOM = 64 * 1024
DEFAULT_UPLOAD_BYTES = 10 * 1024 * 1024

HtmlRenderer = Callable[[Request, int, dict[str, object]], Awaitable[Response] | Response]

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_HTTP_KINDS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
}


def install_error_handlers(
    app: FastAPI, *, render_html: HtmlRenderer | None = None, shows_server_errors: bool = False
) -> None:
    """Register the JSON error handlers (and the body limit) on ``app``.

    ``render_html(request, status, body)``, if given, answers browsers
    (``Accept: text/html``) outside ``/api/`` — the web UI's friendly pages.
    ``shows_server_errors`` is for the guard's ops API, whose callers are the
    operators: they get a 5xx error's own message (a release step that failed).
    """

    async def respond(
        request: Request,
        status: int,
        body: dict[str, object],
        headers: dict[str, str] | None = None,
    ) -> Response:
        if render_html is not None and _wants_html(request):
            page = render_html(request, status, body)
            return await page if isinstance(page, Awaitable) else page
        return JSONResponse(body, status_code=status, headers=headers)

    async def on_steadylink_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SteadylinkError)
        if shows_server_errors and exc.status >= 500:
            return await respond(request, exc.status, {"error": exc.kind, "message": exc.message})
        if exc.status >= 500:
            raise exc  # on_unexpected answers it; the app's edge logs what it says
        return await respond(request, exc.status, exc.to_json(), error_headers(exc))

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        content_type = request.headers.get("content-type")
        return await respond(request, 422, validation_body(exc.errors(), content_type=content_type))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if isinstance(exc.__cause__, SteadylinkError):
            # FastAPI wraps errors raised while reading the body (our 413) in a 400.
            return await on_steadylink_error(request, exc.__cause__)
        kind = _HTTP_KINDS.get(exc.status_code, "error")
        message = _http_message(request, exc)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(sorted(allowed_methods(request)))
        return await respond(request, exc.status_code, {"error": kind, "message": message}, headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Starlette re-raises after this answer; the app's edge logs it once.
        status, body = server_error_body(exc, getattr(request.state, "request_id", None))
        if render_html is not None and _wants_html(request):
            return await respond(request, status, body)
        # byte for byte what the app's front sends for its own 5xx (``web/redirect.py``)
        answer = Response(json.dumps(body).encode(), status_code=status, media_type="application/json")
        answer.raw_headers.sort(reverse=True)
        return answer

    app.add_exception_handler(SteadylinkError, on_steadylink_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_middleware(BodyLimit)


def error_headers(exc: SteadylinkError) -> dict[str, str]:
    """The headers an error's answer carries besides the JSON body's."""
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="steadylink"'
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(math.ceil(exc.retry_after), 1))
    return headers


def server_error_body(exc: BaseException, request_id: str | None) -> tuple[int, dict[str, object]]:
    """A 5xx answer's status and body: a fixed sentence and the request id, nothing of ``exc``'s text."""
    if isinstance(exc, SteadylinkError) and exc.status >= 500:
        body = {"error": exc.kind, "message": exc.public_message or INTERNAL_MESSAGE}
        return exc.status, {**body, "request_id": request_id}
    return 500, {"error": "internal", "message": INTERNAL_MESSAGE, "request_id": request_id}


def error_response(exc: SteadylinkError) -> JSONResponse:
    """An API error's answer, as the handlers above give it outside the framework (``web/create.py``)."""
    if exc.status >= 500:
        status, body = server_error_body(exc, None)
        return JSONResponse(body, status_code=status)
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=error_headers(exc))


def validation_body(errors: Any, *, content_type: str | None = None) -> dict[str, object]:
    """The 422 body for pydantic errors: the first bad field named, all listed.

    A body that is not a JSON object at all (form-encoded, truncated, empty,
    a list) gets one sentence about the body rather than pydantic's words.
    """
    details = [
        {
            "field": "body" if _is_json_error(e) else _field_path(e.get("loc", ())),
            "message": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]
    if not details:
        return {"error": "invalid", "message": "The request is not valid.", "field": "body"}
    whole_body = _whole_body_message(errors, content_type)
    if whole_body is not None:
        return {"error": "invalid", "message": whole_body, "field": "body", "details": details}
    first = details[0]
    field = str(first["field"]).split(".", 1)[0]
    message = f"{field}: {first['message']}"
    return {"error": "invalid", "message": message, "field": field, "details": details}


_NOT_AN_OBJECT = {"model_attributes_type", "dict_type", "model_type", "missing"}


def _is_json_error(error: Any) -> bool:
    return str(error.get("type")) == "json_invalid"


def _whole_body_message(errors: Any, content_type: str | None) -> str | None:
    """One sentence when the body as a whole is wrong; None when a field is."""
    broken = next((e for e in errors if _is_json_error(e)), None)
    if broken is not None:
        loc = tuple(broken.get("loc", ()))
        at = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
        return f"The body is not valid JSON: it is cut off or malformed{at}."
    first = errors[0]
    if tuple(first.get("loc", ())) != ("body",) or str(first.get("type")) not in _NOT_AN_OBJECT:
        return None
    media = (content_type or "").partition(";")[0].strip().lower()
    if media and media != "application/json":
        return f"The body must be JSON sent as Content-Type: application/json, not {media}."
    if str(first.get("type")) == "missing":
        return "The body is empty; send a JSON object of the fields (see /api/openapi.json)."
    return "The body must be a JSON object of the fields (see /api/openapi.json)."


def _field_path(loc: Any) -> str:
    """``("body", "max_visits")`` → ``max_visits``; ``("query", "limit")`` → ``limit``.

    The top-level name comes first, so ``field`` (its first part) is what the
    client sent: ``created_from.date`` names the union member that failed.
    """
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    # pydantic names Annotated validators' steps (``function-after[...]``); drop them.
    parts = [p for p in parts if "[" not in p]
    return ".".join(parts) or "body"


def _http_message(request: Request, exc: HTTPException) -> str:
    if exc.status_code == 404:
        return f"Nothing at {request.url.path}; see /api/openapi.json for the API."
    if exc.status_code == 405:
        allowed = ", ".join(sorted(allowed_methods(request))) or "another method"
        return f"{request.method} is not allowed on {request.url.path}; use {allowed}."
    return str(exc.detail)


def allowed_methods(request: Request) -> set[str]:
    """Every method some route answers on this path (Starlette names only the first route's)."""
    routes = getattr(request.app, "routes", [])
    return {
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    }


def _wants_html(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


class BodyLimit:
    """413 for request bodies over their limit, without reading them into memory."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            body = too_large(scope).to_json()
            await JSONResponse(body, status_code=413, headers={"Connection": "close"})(scope, receive, send)
            return
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large(scope)
            return message

        await self.app(scope, counted_receive, send)


def body_limit(scope: Scope) -> int:
    """Multipart uploads may carry the upload limit (plus the form); others 64 KiB."""
    upload = _upload_limit(scope)
    return MAX_JSON_BYTES if upload is None else upload + MULTIPART_ROOM


def upload_too_large(max_file_bytes: int) -> TooLarge:
    return TooLarge(f"The file is larger than the limit of {size_text(max_file_bytes)}.", field="file")


def _upload_limit(scope: Scope) -> int | None:
    """The upload limit for a multipart request; None for any other body."""
    content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
    if not content_type.lower().startswith(b"multipart/form-data"):
        return None
    app = scope.get("app")
    ctx = getattr(getattr(app, "state", None), "ctx", None)
    return int(ctx.settings.links.upload_max_bytes if ctx is not None else DEFAULT_UPLOAD_BYTES)


def too_large(scope: Scope) -> TooLarge:
    """The 413 of a body over its limit, in the unit the web form shows (``10.0 MB``)."""
    upload = _upload_limit(scope)
    if upload is not None:  # the form's few fields ride in the room above the limit: name the file's
        return upload_too_large(upload)
    return TooLarge(f"The request body is larger than {size_text(MAX_JSON_BYTES)}; send less.", field="body")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

