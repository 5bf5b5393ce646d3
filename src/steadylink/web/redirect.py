"""The app's front: answers ``GET``/``HEAD /{code}`` and the common create itself.

A redirect never touches the framework (its middleware, routing and
dependency solving cost many times the redirect itself; ``bench/front.py``
times the front alone). Only a URL link that resolves to FOUND and has
no password is answered here; everything else — unknown, disabled, expired
or used-up codes (404/410 pages with HTML/JSON negotiation), file links,
password links, every other path — goes to the inner FastAPI app
*unchanged*, where ``web/ui.py`` serves ``/{code}``. ``HEAD`` only looks: it
neither counts a visit nor uses up a limited link.

One front, two thin entry points. The decisions are protocol-neutral and
return an ``Answer`` (``web/answer.py``): ``memory_redirect`` (the hot path:
a plain link held in memory), ``stored_redirect`` (the cache did not hold
the code: the store is read in a thread), the quick create
(``web/create.py``) and ``error_answer``. ``__rsgi__`` (granian's RSGI, what
``steadylink serve`` runs) and ``__call__`` (ASGI: tests, any ASGI server)
only translate a request into those calls and an ``Answer`` into their
protocol's messages; the rest goes to the inner app through ``delegate``.
Every request, answered here or inside, gets one metrics observation, one
access-log line (``finish``) and an ``X-Request-ID``; an exception anywhere
becomes a JSON error without a stack trace, logged once.

Nothing here waits for the outside world on the event loop: store reads
and writes of the redirect, and the quick create's key lookups, run in the
context's ``Offload`` threads. Who the client is follows one rule for both
entry points: ``web/auth.client_address`` (``X-Forwarded-For`` only from
the front door, i.e. a loopback or unix-socket peer).
"""

from __future__ import annotations

import asyncio
import gc
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from steadylink.links.cache import NOT_HELD, location_of
from steadylink.links.codes import RESERVED, looks_like_code
from steadylink.links.model import Link, LinkKind
from steadylink.links.plain import is_plain
from steadylink.web.answer import Answer, error_answer
from steadylink.web.auth import client_address
from steadylink.web.bridge import Lifespan, call_asgi, peer_host
from steadylink.web.context import AppContext
from steadylink.web.create import CREATE_PATH, QuickCreate, read_body, takes
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
_FIXED = [("cache-control", "private, max-age=0"), ("content-type", "text/plain; charset=utf-8")]


class RedirectDispatcher:
    """The app granian runs (RSGI) or any ASGI server; ``inner`` is the FastAPI app."""

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
        self._lifespan: Lifespan | None = None
        self.quick = QuickCreate(ctx)

    # The protocol-neutral front ------------------------------------------------

    def memory_redirect(self, code: str, method: str, request_id: str) -> Answer | None:
        """The hot path: the redirect of a plain link held in memory, else None.

        Its code came from the store, so it is a valid, unreserved code: nothing
        else to check. The caller sends the answer, then calls ``visited``.
        """
        location = self.ctx.cache.location(code)
        if location is None:
            return None
        return Answer(
            self._status,
            [("location", location), ("x-request-id", request_id), *_FIXED],
            b"" if method == "HEAD" else self._body,
        )

    async def stored_redirect(self, code: str, method: str, request_id: str) -> Answer | None:
        """The redirect of a plain, usable link the memory path did not hold, else None.

        None hands the request to the inner app, which applies ``resolve_link``
        in full (and so stays the one rule): unknown, disabled, expired, used-up,
        password and file links. The store is read in a thread.
        """
        if not looks_like_code(code) or code.lower() in RESERVED:
            return None
        ctx = self.ctx
        found = ctx.cache.held(code)
        if found is NOT_HELD:
            found = await ctx.offload.run(ctx.cache.load, code)
        if not isinstance(found, Link) or not _is_redirect(found, ctx):
            return None
        if method == "GET" and found.max_visits is not None:
            is_allowed = await ctx.offload.run(ctx.store.take_limited_visit, code)
            # the count changed: this worker re-reads it; others learn it from the change log
            ctx.cache.invalidate(code)
            if not is_allowed:
                return None  # the inner app answers 410
        assert found.url is not None  # _is_redirect checked it
        return Answer(
            self._status,
            [("location", location_of(found.url)), ("x-request-id", request_id), *_FIXED],
            b"" if method == "HEAD" else self._body,
        )

    def visited(self, code: str, method: str, referrer: str | None, user_agent: str | None) -> None:
        """After a redirect went out: count the visit (GET only) and the redirect."""
        if method == "GET":
            self.ctx.clicks.record(code, referrer=referrer, user_agent=user_agent)
        self.metrics.count_redirect()

    def error_answer(self, exc: BaseException, request_id: str, method: str, route: str) -> Answer:
        """The JSON error for ``exc``; a server-side one (5xx) is logged once."""
        answer = error_answer(exc, request_id)
        if answer.status >= 500:
            self.log.error(exc, request_id=request_id, method=method, route=route)
        return answer

    def finish(
        self, method: str, route: str, status: int, started: float, request_id: str,
        peer: str, forwarded: str | None,
    ) -> None:  # fmt: skip
        """One metrics observation and one access-log line for a request."""
        elapsed = perf_counter() - started
        self.metrics.observe(route, method, status, elapsed)
        if self.log.enabled:
            self.log.request(
                method=method, route=route, status=status, seconds=elapsed,
                request_id=request_id, client=client_address(peer, forwarded),
            )

    async def delegate(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> tuple[int, str]:
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
            answer = self.error_answer(exc, request_id, scope["method"], route)
            await _send_asgi(send, answer)
            return answer.status, route
        if status == 0:  # the app returned without answering
            self.log.error(
                RuntimeError("no response"), request_id=request_id, method=scope["method"],
                route=self.routes.of(scope),
            )
        return status or 500, self.routes.of(scope)

    # RSGI (granian --interface rsgi): translation only ----------------------------

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
            headers = scope.headers
            request_id = safe_request_id(headers.get("x-request-id"))
            code = scope.path[1:]
            answer = None
            try:
                answer = self.memory_redirect(code, method, request_id)
                if answer is None:
                    answer = await self.stored_redirect(code, method, request_id)
                    if answer is None:
                        await call_asgi(self._delegated, scope, protocol)
                        return
                protocol.response_bytes(answer.status, answer.headers, answer.body)
                self.visited(code, method, headers.get("referer"), headers.get("user-agent"))
            except Exception as exc:
                failed = self.error_answer(exc, request_id, method, CODE_ROUTE)
                if answer is None or failed.status != 500:
                    answer = failed
                    protocol.response_bytes(answer.status, answer.headers, answer.body)
                # else the redirect had gone out before the error (logged): it stands
            self.finish(
                method, CODE_ROUTE, answer.status, started, request_id,
                peer_host(scope.client), headers.get("x-forwarded-for"),
            )
            return
        if method == "POST" and scope.path == CREATE_PATH:
            headers = scope.headers
            if takes(headers.get("content-type"), headers.get("content-length")):
                await self._create_rsgi(scope, protocol)
                return
        await call_asgi(self._delegated, scope, protocol)

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
            await call_asgi(self._delegated, scope, protocol)
            return
        peer, forwarded = peer_host(scope.client), headers.get("x-forwarded-for")
        answer = await self._quick_create(
            body, headers.get("authorization"), client_address(peer, forwarded), request_id
        )
        if answer is None:
            await call_asgi(self._delegated, scope, protocol, body=body)
            return
        protocol.response_bytes(answer.status, answer.headers, answer.body)
        self.finish("POST", CREATE_PATH, answer.status, started, request_id, peer, forwarded)

    async def _quick_create(
        self, body: bytes, authorization: str | None, client: str, request_id: str
    ) -> Answer | None:
        try:
            answer = await self.quick.answer(body, authorization=authorization, client=client)
        except Exception as exc:
            return self.error_answer(exc, request_id, "POST", CREATE_PATH)
        if answer is None:
            return None
        answer.headers.append(("x-request-id", request_id))
        if answer.status == 201:
            self.metrics.links_created.inc()
        return answer

    # ASGI: translation only ---------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)  # lifespan, websocket
            return
        method: str = scope["method"]
        if method == "GET" or method == "HEAD":
            await self._redirect_asgi(scope, receive, send)
        elif method == "POST" and scope["path"] == CREATE_PATH:
            await self._create_asgi(scope, receive, send)
        else:
            await self._delegated(scope, receive, send)

    async def _redirect_asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        method: str = scope["method"]
        headers = _first_headers(scope)
        request_id = safe_request_id(headers.get(b"x-request-id"))
        code: str = scope["path"][1:]
        answer = None
        try:
            answer = self.memory_redirect(code, method, request_id)
            if answer is None:
                answer = await self.stored_redirect(code, method, request_id)
                if answer is None:
                    await self._delegated(scope, receive, send, request_id=request_id, started=started)
                    return
            await _send_asgi(send, answer)
            self.visited(code, method, headers.get(b"referer"), headers.get(b"user-agent"))
        except Exception as exc:
            failed = self.error_answer(exc, request_id, method, CODE_ROUTE)
            if answer is None or failed.status != 500:
                answer = failed
                await _send_asgi(send, answer)
        self.finish(method, CODE_ROUTE, answer.status, started, request_id, _asgi_peer(scope),
                    headers.get(b"x-forwarded-for"))  # fmt: skip

    async def _create_asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        headers = _first_headers(scope)
        request_id = safe_request_id(headers.get(b"x-request-id"))
        if takes(headers.get(b"content-type"), headers.get(b"content-length")):
            body, receive = await read_body(receive)
            if body is not None:
                peer, forwarded = _asgi_peer(scope), headers.get(b"x-forwarded-for")
                answer = await self._quick_create(
                    body, headers.get(b"authorization"), client_address(peer, forwarded), request_id
                )
                if answer is not None:
                    await _send_asgi(send, answer)
                    self.finish("POST", CREATE_PATH, answer.status, started, request_id, peer, forwarded)
                    return
        await self._delegated(scope, receive, send, request_id=request_id, started=started)

    async def _delegated(
        self, scope: Scope, receive: Receive, send: Send, *,
        request_id: str | None = None, started: float | None = None,
    ) -> None:  # fmt: skip
        """A request for the inner app (both entry points end here), logged and counted."""
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        started = perf_counter() if started is None else started
        headers = _first_headers(scope)
        if request_id is None:
            request_id = safe_request_id(headers.get(b"x-request-id"))
        status, route = await self.delegate(scope, receive, send, request_id)
        if status == 201 and route in CREATE_ROUTES:
            self.metrics.links_created.inc()
        self.finish(scope["method"], route, status, started, request_id, _asgi_peer(scope),
                    headers.get(b"x-forwarded-for"))  # fmt: skip


def _is_redirect(link: Link, ctx: AppContext) -> bool:
    """A URL link that is clearly usable: plain, or limited or expiring but not used up or over."""
    if is_plain(link):
        return True
    return (
        link.kind is LinkKind.URL
        and link.url is not None
        and link.password_hash is None
        and not link.is_disabled
        and (link.expires_at is None or ctx.clock.now() < link.expires_at)
        and (link.max_visits is None or link.visits < link.max_visits)
    )


def _first_headers(scope: Scope) -> dict[bytes, str]:
    """The request's headers by name, the first of repeated ones winning."""
    return {k: v.decode("latin-1") for k, v in reversed(scope["headers"])}


def _asgi_peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


async def _send_asgi(send: Send, answer: Answer) -> None:
    headers = answer.asgi_headers()
    if not any(name == b"content-length" for name, _ in headers):
        headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


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
