"""The raw ASGI front of the app: answers ``GET``/``HEAD /{code}`` itself.

A redirect never touches the framework (FastAPI costs ~97 µs a request, a raw
callable ~1.5 µs, measured in process). Only a plain URL link that resolves to
FOUND and has no password is answered here; everything else — unknown,
disabled, expired or used-up codes (404/410 pages with HTML/JSON
negotiation), file links, password links, every other path — goes to the
inner FastAPI app *unchanged*, where ``web/ui.py`` serves ``/{code}``.
``HEAD`` only looks: it neither counts a click nor uses up a limited link.

Every request, answered here or inside, gets one metrics observation, one
access-log line and an ``X-Request-ID`` response header; an exception
anywhere becomes a JSON error (500 ``internal`` for bugs) without a stack
trace, logged once.

Two entry points share that logic: ``__call__`` (ASGI: tests, any ASGI
server) and ``__rsgi__`` (granian's RSGI, what ``steadylink serve`` runs). The
RSGI path answers a plain link found in the cache's ``location`` map by
itself — a dict lookup and one ``response_bytes`` — and hands every other
request to the ASGI path through ``web/bridge.py``.
"""

from __future__ import annotations

import asyncio
import gc
import json
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from steadylink.errors import SteadylinkError
from steadylink.links.cache import location_of
from steadylink.links.codes import RESERVED, looks_like_code
from steadylink.links.model import LinkKind
from steadylink.web.bridge import Lifespan, RsgiSend, call_asgi, peer_host
from steadylink.web.context import AppContext
from steadylink.web.create import CREATE_PATH, QuickCreate, read_body, takes
from steadylink.web.errors import INTERNAL_MESSAGE
from steadylink.web.logs import RequestLog, safe_request_id
from steadylink.web.metrics import AppMetrics

CODE_ROUTE = "/{code}"
UNMATCHED_ROUTE = "<unmatched>"
# A 201 from these counts as a link created; the web form counts its own.
CREATE_ROUTES = frozenset({"/api/v1/links", "/api/v1/files"})
_REASONS = {
    301: b"Moved Permanently",
    302: b"Found",
    307: b"Temporary Redirect",
    308: b"Permanent Redirect",
}
_CACHE_CONTROL = (b"cache-control", b"private, max-age=0")
_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_RSGI_FIXED = [(k.decode(), v.decode()) for k, v in (_CACHE_CONTROL, _TEXT)]


class RedirectDispatcher:
    """The ASGI callable granian runs; ``inner`` is the FastAPI app."""

    def __init__(
        self, *, ctx: AppContext, inner: ASGIApp, metrics: AppMetrics, log: RequestLog
    ) -> None:
        self.ctx = ctx
        self.inner = inner
        self.metrics = metrics
        self.log = log
        self.routes = RouteTemplates(inner)
        self._status = ctx.settings.links.redirect_status
        self._body = _REASONS[self._status] + b"\n"
        self._fixed_headers = [
            _CACHE_CONTROL,
            _TEXT,
            (b"content-length", str(len(self._body)).encode()),
        ]
        self._lifespan: Lifespan | None = None
        self.quick = QuickCreate(ctx)

    # RSGI (granian --interface rsgi) -------------------------------------------

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._lifespan = Lifespan(self.inner)
        self._lifespan.start(loop)
        # Everything loaded so far lives as long as the worker: keep it out of the
        # garbage collector's full passes (~0.5M objects, tens of ms each).
        gc.freeze()

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._lifespan is not None:
            self._lifespan.stop(loop)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return  # no websockets (granian runs with --no-ws)
        method: str = scope.method
        if method == "GET" or method == "HEAD":
            started = perf_counter()
            try:
                if self._answer_from_memory(scope.path[1:], method, scope, protocol, started):
                    return
            except Exception as exc:
                await self._answer_rsgi_error(exc, method, scope, protocol, started)
                return
        elif method == "POST" and scope.path == CREATE_PATH:
            headers = scope.headers
            if takes(headers.get("content-type"), headers.get("content-length")):
                await self._create_rsgi(scope, protocol)
                return
        await call_asgi(self, scope, protocol)

    async def _create_rsgi(self, scope: Any, protocol: Any) -> None:
        """A create with a JSON body: ``web/create.py`` answers it, or the inner app does."""
        started = perf_counter()
        headers = scope.headers
        request_id = safe_request_id(headers.get("x-request-id"))
        try:
            body = await protocol()
        except Exception:
            # The client went away mid-body (granian: RSGIProtocolClosed): the route
            # meets the same error and answers and logs it as it always has.
            await call_asgi(self._without_quick_create, scope, protocol)
            return
        try:
            answer = await self.quick.answer(
                body,
                authorization=headers.get("authorization"),
                peer=peer_host(scope.client),
                forwarded=headers.get("x-forwarded-for"),
            )
        except Exception as exc:
            status = await self._answer_error(exc, RsgiSend(protocol), request_id, "POST", CREATE_PATH)
            self._log_rsgi("POST", status, scope, request_id, perf_counter() - started, CREATE_PATH)
            return
        if answer is None:
            await call_asgi(self._without_quick_create, scope, protocol, body=body)
            return
        protocol.response_bytes(answer.status, [*answer.headers, ("x-request-id", request_id)], answer.body)
        if answer.status == 201:
            self.metrics.links_created.inc()
        self._log_rsgi("POST", answer.status, scope, request_id, perf_counter() - started, CREATE_PATH)

    def _answer_from_memory(self, code: str, method: str, scope: Any, protocol: Any, started: float) -> int:
        """The hot path: a plain link held in memory, answered on the RSGI protocol.

        Its code came from the store, so it is a valid, unreserved code: nothing
        else to check. Returns 0 (nothing sent) when the code is not held.
        """
        location = self.ctx.cache.location(code)
        if location is None:
            return 0
        headers = scope.headers
        referrer = headers.get("referer")
        request_id = safe_request_id(headers.get("x-request-id"))
        protocol.response_bytes(
            self._status,
            [("location", location), ("x-request-id", request_id), *_RSGI_FIXED],
            b"" if method == "HEAD" else self._body,
        )
        if method == "GET":
            self.ctx.clicks.record(code, referrer=referrer, user_agent=headers.get("user-agent"))
        self.metrics.count_redirect()
        self._log_rsgi(method, self._status, scope, request_id, perf_counter() - started)
        return self._status

    async def _answer_rsgi_error(
        self, exc: Exception, method: str, scope: Any, protocol: Any, started: float
    ) -> None:
        request_id = safe_request_id(scope.headers.get("x-request-id"))
        try:
            status = await self._answer_error(exc, RsgiSend(protocol), request_id, method, CODE_ROUTE)
        except Exception:  # the redirect had gone out before the error; _answer_error logged it
            status = self._status
        self._log_rsgi(method, status, scope, request_id, perf_counter() - started)

    def _log_rsgi(
        self, method: str, status: int, scope: Any, request_id: str, elapsed: float, route: str = CODE_ROUTE
    ) -> None:
        self.metrics.observe(route, method, status, elapsed)
        if self.log.enabled:
            forwarded = scope.headers.get("x-forwarded-for")
            # the peer as the ASGI path names it: "::1", not granian's "[::1]"
            client = forwarded.split(",", 1)[0].strip() if forwarded else peer_host(scope.client)
            self.log.request(
                method=method, route=route, status=status, seconds=elapsed,
                request_id=request_id, client=client or "-",
            )

    # ASGI -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._serve(scope, receive, send, quick_create=True)

    async def _without_quick_create(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI path for a create ``web/create.py`` has declined already."""
        await self._serve(scope, receive, send, quick_create=False)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, *, quick_create: bool) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)  # lifespan, websocket
            return
        started = perf_counter()
        method: str = scope["method"]
        referrer = user_agent = request_id = forwarded = None
        for name, value in scope["headers"]:
            if name == b"referer":
                referrer = value.decode("latin-1")
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                forwarded = value.decode("latin-1").split(",", 1)[0].strip()
        request_id = safe_request_id(request_id)
        status = 0
        route = CODE_ROUTE
        if method in ("GET", "HEAD"):
            code: str = scope["path"][1:]
            if looks_like_code(code) and code.lower() not in RESERVED:
                status = await self._redirect(
                    code, method, send, request_id, referrer=referrer, user_agent=user_agent
                )
        elif method == "POST" and quick_create and scope["path"] == CREATE_PATH:
            route = CREATE_PATH
            status, receive = await self._create(scope, receive, send, request_id)
        if status == 0:
            status, route = await self._delegate(scope, receive, send, request_id)
        if status == 201 and route in CREATE_ROUTES:
            self.metrics.links_created.inc()
        elapsed = perf_counter() - started
        self.metrics.observe(route, method, status, elapsed)
        if self.log.enabled:
            client = forwarded or (scope["client"][0] if scope.get("client") else "-")
            self.log.request(
                method=method, route=route, status=status, seconds=elapsed,
                request_id=request_id, client=client,
            )

    async def _redirect(
        self, code: str, method: str, send: Send, request_id: str, *,
        referrer: str | None, user_agent: str | None,
    ) -> int:
        """Answer a redirect and return its status, or 0 to hand the request on."""
        ctx = self.ctx
        try:
            location = ctx.cache.location(code)
            if location is not None:
                return await self._answer_redirect(
                    code, location, method, send, request_id, referrer=referrer, user_agent=user_agent
                )
            link = ctx.cache.lookup(code)
            # A plain URL link that is clearly usable; anything else goes to the
            # inner app, which applies resolve_link() in full (and so stays the one rule).
            if (
                link is None
                or link.kind is not LinkKind.URL
                or link.url is None
                or link.password_hash is not None
                or link.is_disabled
                or (link.expires_at is not None and ctx.clock.now() >= link.expires_at)
                or (link.max_visits is not None and link.visits >= link.max_visits)
            ):
                return 0
            is_visit = method == "GET"  # HEAD only looks: no visit counted, as in web/ui.py
            if is_visit and link.max_visits is not None:
                is_allowed = ctx.store.take_limited_visit(code)
                # the count changed: this worker re-reads it; others learn it from the change log
                ctx.cache.invalidate(code)
                if not is_allowed:
                    return 0  # the inner app answers 410
        except Exception as exc:
            return await self._answer_error(exc, send, request_id, method, CODE_ROUTE)
        return await self._answer_redirect(
            code, location_of(link.url), method, send, request_id, referrer=referrer, user_agent=user_agent
        )

    async def _answer_redirect(
        self, code: str, location: str, method: str, send: Send, request_id: str, *,
        referrer: str | None, user_agent: str | None,
    ) -> int:
        await send(
            {
                "type": "http.response.start",
                "status": self._status,
                "headers": [
                    (b"location", location.encode()),
                    (b"x-request-id", request_id.encode("latin-1")),
                    *self._fixed_headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else self._body})
        if method == "GET":
            self.ctx.clicks.record(code, referrer=referrer, user_agent=user_agent)
        self.metrics.count_redirect()
        return self._status

    async def _create(
        self, scope: Scope, receive: Receive, send: Send, request_id: str
    ) -> tuple[int, Receive]:
        """A create answered by ``web/create.py``: its status, or 0 and a ``receive``
        that gives the inner app the body again."""
        headers = {k: v.decode("latin-1") for k, v in reversed(scope["headers"])}  # the first wins
        if not takes(headers.get(b"content-type"), headers.get(b"content-length")):
            return 0, receive
        body, receive = await read_body(receive)
        if body is None:
            return 0, receive
        try:
            client = scope.get("client")
            answer = await self.quick.answer(
                body,
                authorization=headers.get(b"authorization"),
                peer=client[0] if client else "",
                forwarded=headers.get(b"x-forwarded-for"),
            )
        except Exception as exc:
            return await self._answer_error(exc, send, request_id, "POST", CREATE_PATH), receive
        if answer is None:
            return 0, receive
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    *((k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers),
                    (b"x-request-id", request_id.encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})
        return answer.status, receive

    async def _delegate(
        self, scope: Scope, receive: Receive, send: Send, request_id: str
    ) -> tuple[int, str]:
        """Run the inner app; return the status it answered and the route template it matched."""
        status = 0
        rid_header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        scope["state"] = {**scope.get("state", {}), "request_id": request_id}
        try:
            await self.inner(scope, receive, send_with_id)
        except Exception as exc:
            route = self.routes.of(scope)
            if status:  # the framework already answered (a 500 of its own): log only
                self.log.error(exc, request_id=request_id, method=scope["method"], route=route)
                return status, route
            return await self._answer_error(exc, send, request_id, scope["method"], route), route
        if status == 0:  # the app returned without answering
            self.log.error(
                RuntimeError("no response"), request_id=request_id, method=scope["method"],
                route=self.routes.of(scope),
            )
        return status or 500, self.routes.of(scope)

    async def _answer_error(
        self, exc: Exception, send: Send, request_id: str, method: str, route: str
    ) -> int:
        body: dict[str, Any]
        if isinstance(exc, SteadylinkError):
            status, body = exc.status, exc.to_json()
        else:
            status, body = 500, {"error": "internal", "message": INTERNAL_MESSAGE}
        if status >= 500:
            self.log.error(exc, request_id=request_id, method=method, route=route)
        body["request_id"] = request_id
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-request-id", request_id.encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return status


class RouteTemplates:
    """The full template of the route a request matched (``/api/v1/links/{code}``).

    Recent FastAPI versions keep included routers lazy: the matched route in
    ``scope["route"]`` holds its path *without* the router's prefix. The full
    templates are read once from the app's routes (again when routes are added).
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._templates: dict[int, str] = {}

    def of(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED_ROUTE
        template = self._templates.get(id(route))
        if template is None:
            self._templates = dict(_walk(getattr(self._app, "routes", ())))
            template = self._templates.get(id(route)) or str(getattr(route, "path", UNMATCHED_ROUTE))
            self._templates[id(route)] = template
        return template


def _walk(routes: Any) -> Any:
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            yield id(route), str(getattr(route, "path", UNMATCHED_ROUTE))
            continue
        for context in contexts():
            full = getattr(context, "path", None) or getattr(context.starlette_route, "path", None)
            if isinstance(full, str):
                yield id(context.original_route), full
