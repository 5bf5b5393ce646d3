"""The quick create (``web/create.py``): the FastAPI route's answers, without the framework.

Each case runs the same request against two apps on two stores with the same
clock and codes: one whose front answers the create itself, and one where the
FastAPI route does (the front's ``_delegated``). Status, headers and
body bytes must be equal, through the ASGI entry point and through RSGI's.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send
from tests.conftest import SeqRandom
from tests.web import rsgi_client
from tests.web.api_harness import make_context
from tests.web.rsgi_client import RsgiTransport

from steadylink.clock import FakeClock
from steadylink.errors import StoreError
from steadylink.links import service
from steadylink.links.migrate import upgrade_to_head
from steadylink.links.sql_store import open_store
from steadylink.links.writer import LinkWriter
from steadylink.settings import Settings, load_settings
from steadylink.types import Role
from steadylink.web.app import create_app
from steadylink.web.create import read_body, takes
from steadylink.web.redirect import RedirectDispatcher

pytestmark = pytest.mark.anyio

URL = "https://example.com/page"
RID = {"X-Request-ID": "create-test-1"}


class CountingInner:
    """The inner FastAPI app, counting the HTTP requests that reach it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


@dataclass
class Front:
    app: RedirectDispatcher
    inner: CountingInner
    client: httpx.AsyncClient
    keys: dict[str, str]
    key_ids: dict[str, str]


@asynccontextmanager
async def front(
    tmp_path: Path, name: str, clock: FakeClock, *, entry: str, change: Callable[[Settings], Settings]
) -> AsyncIterator[Front]:
    settings = change(load_settings(environ={}, data_dir=tmp_path / name))
    store = open_store(settings.database_url)
    upgrade_to_head(store.engine)
    ctx = make_context(settings, store, clock)
    ctx.rng = SeqRandom("abcdefghjk")
    app = create_app(settings, ctx=ctx, log_stream=io.StringIO())
    inner = CountingInner(app.inner)
    app.inner = inner
    transport: httpx.AsyncBaseTransport
    if entry == "rsgi":
        transport = RsgiTransport(app)
    elif entry == "asgi":
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    else:  # the FastAPI route: what the quick create must answer like
        transport = httpx.ASGITransport(app=app._delegated, raise_app_exceptions=False)
    keys, key_ids = {}, {}
    for role in (Role.VIEWER, Role.EDITOR):
        issued = service.create_key(store=store, clock=clock, name=role.label, role=role)
        keys[role.label], key_ids[role.label] = issued.secret, issued.key.id
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Front(app, inner, client, keys, key_ids)
    ctx.writer.close()
    store.close()


@asynccontextmanager
async def pair(
    tmp_path: Path, entry: str, change: Callable[[Settings], Settings] = lambda s: s
) -> AsyncIterator[tuple[Front, Front]]:
    clock = FakeClock()
    async with (
        front(tmp_path, "quick", clock, entry=entry, change=change) as quick,
        front(tmp_path, "framework", clock, entry="framework", change=change) as framework,
    ):
        yield quick, framework


async def both(
    quick: Front, framework: Front, *, body: Any = None, content: bytes | None = None,
    role: str | None = None, headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, httpx.Response]:
    """The same request to both apps; the answers must be the same bytes."""
    answers = []
    for side in (quick, framework):
        sent = {**RID, **(headers or {})}
        if role is not None:
            sent["Authorization"] = f"Bearer {side.keys[role]}"
        if content is not None:
            response = await side.client.post("/api/v1/links", content=content, headers=sent)
        else:
            response = await side.client.post("/api/v1/links", json=body, headers=sent)
        answers.append(response)
    mine, theirs = answers
    assert mine.status_code == theirs.status_code, (mine.text, theirs.text)
    assert mine.headers.multi_items() == theirs.headers.multi_items()
    own, other = mine.content, theirs.content
    if role is not None:  # the two apps' keys have different ids
        own = own.replace(quick.key_ids[role].encode(), b"<key>")
        other = other.replace(framework.key_ids[role].encode(), b"<key>")
    assert own == other
    return mine, theirs


@pytest.fixture(params=["asgi", "rsgi"])
def entry(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_creates_are_answered_like_the_route_without_it(tmp_path: Path, entry: str) -> None:
    async with pair(tmp_path, entry) as (quick, framework):
        created, _ = await both(quick, framework, body={"url": URL})
        assert created.status_code == 201 and created.json()["code"] == "abcdefg"
        assert created.headers["location"] == "/api/v1/links/abcdefg"
        full = {"url": URL, "code": "Docs-1", "expires_at": "2031-01-01T00:00:00Z", "max_visits": 3}
        created, _ = await both(quick, framework, body=full, role="editor")
        assert created.json()["owner"] == quick.key_ids["editor"]
        assert created.json()["max_visits"] == 3
        taken, _ = await both(quick, framework, body={"url": URL, "code": "docs-1"})
        assert taken.status_code == 409 and taken.json()["field"] == "code"
        looping, _ = await both(quick, framework, body={"url": "http://127.0.0.1:8080/x"})
        assert looping.status_code == 422 and looping.json()["field"] == "url"
        locked, _ = await both(quick, framework, body={"url": URL, "password": "pw"})
        assert locked.json()["has_password"] is True
        assert quick.inner.calls == 0  # every one answered without the framework
        assert quick.app.metrics.links_created._value.get() == 3
        # the links are really there, and the redirect finds them
        followed = await quick.client.get("/Docs-1", headers={"accept": "application/json"})
        assert followed.status_code == 302 and followed.headers["location"] == URL


async def test_the_rate_limit_is_answered_like_the_route(tmp_path: Path, entry: str) -> None:
    def two_a_minute(s: Settings) -> Settings:
        return dataclasses.replace(s, limits=dataclasses.replace(s.limits, create_per_minute=2))

    async with pair(tmp_path, entry, two_a_minute) as (quick, framework):
        for _ in range(2):
            await both(quick, framework, body={"url": URL})
        limited, _ = await both(quick, framework, body={"url": URL})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        keyed, _ = await both(quick, framework, body={"url": URL}, role="editor")  # keys are not limited
        assert keyed.status_code == 201
        assert quick.inner.calls == 0


@pytest.mark.parametrize(
    ("request_args", "status"),
    [
        ({"content": b'{"url": '}, 422),  # not JSON
        ({"content": b'["https://example.com/"]'}, 422),  # not an object
        ({"body": {"url": URL, "max_visits": "3"}}, 422),  # strict types
        ({"body": {"url": URL, "colour": "red"}}, 422),  # unknown field
        ({"body": {}}, 422),
        ({"body": {"url": URL}, "role": "viewer"}, 403),
        ({"body": {"url": URL}, "headers": {"Authorization": "Bearer slk_unknown"}}, 401),
        ({"body": {"url": URL}, "headers": {"Authorization": "Basic eDp5"}}, 401),
        ({"body": {"url": URL}, "headers": {"Authorization": ""}}, 401),
        ({"content": b'{"url": "https://example.com/"}', "headers": {"Content-Type": "text/plain"}}, 422),
        ({"content": b'{"url": "' + b"x" * 70_000 + b'"}'}, 413),
        ({"content": b"[" * 50_000}, 400),  # nested too deep for the JSON parser
    ],
)
async def test_anything_else_goes_to_the_route(
    tmp_path: Path, entry: str, request_args: dict[str, Any], status: int
) -> None:
    async with pair(tmp_path, entry) as (quick, framework):
        if "content" in request_args:
            request_args.setdefault("headers", {}).setdefault("Content-Type", "application/json")
        answer, _ = await both(quick, framework, **request_args)
        assert answer.status_code == status, answer.text
        assert quick.inner.calls == 1
        if status >= 400:
            assert answer.json()["message"]


async def test_anonymous_creation_off_goes_to_the_route(tmp_path: Path, entry: str) -> None:
    def keys_only(s: Settings) -> Settings:
        return dataclasses.replace(s, links=dataclasses.replace(s.links, anonymous_create=False))

    async with pair(tmp_path, entry, keys_only) as (quick, framework):
        refused, _ = await both(quick, framework, body={"url": URL})
        assert refused.status_code == 401 and quick.inner.calls == 1
        keyed, _ = await both(quick, framework, body={"url": URL}, role="editor")
        assert keyed.status_code == 201 and quick.inner.calls == 1


class Down:
    def insert_links(self, links: object) -> list[bool]:
        raise StoreError("The links database is not answering: OperationalError: gone")


async def test_a_store_error_is_answered_like_the_route(tmp_path: Path, entry: str) -> None:
    async with pair(tmp_path, entry) as (quick, framework):
        for side in (quick, framework):
            side.app.ctx.writer = LinkWriter(Down())  # type: ignore[arg-type]
        down, _ = await both(quick, framework, body={"url": URL})
        assert down.status_code == 503 and down.json()["error"] == "store"
        assert quick.inner.calls == 0


def test_takes_only_json_bodies_of_a_declared_length_within_the_limit() -> None:
    assert takes("application/json", "12")
    assert takes("Application/JSON; charset=utf-8", "65536")
    assert not takes("application/json", "65537")
    assert not takes("application/json", None)
    assert not takes("application/json", "-1")
    assert not takes("text/plain", "12")
    assert not takes("application/json-patch+json", "12")
    assert not takes(None, "12")


async def test_read_body_hands_every_message_on() -> None:
    messages = [
        {"type": "http.request", "body": b'{"url": ', "more_body": True},
        {"type": "http.request", "body": b'"x"}', "more_body": False},
    ]
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    body, again = await read_body(receive)  # type: ignore[arg-type]
    assert json.loads(body or b"") == {"url": "x"}
    assert [await again(), await again(), await again()] == [*messages, {"type": "http.disconnect"}]
    big = [{"type": "http.request", "body": b"x" * 40_000, "more_body": True} for _ in range(3)]
    pending[:] = list(big)
    body, again = await read_body(receive)  # type: ignore[arg-type]
    assert body is None  # over the limit: not read further, all handed on
    assert [await again() for _ in range(3)] == big


class GoneMidBody(rsgi_client.Protocol):
    """A client that went away before its body was all there: granian's reads raise."""

    async def __call__(self) -> bytes:
        raise RuntimeError("RSGI transport is closed")

    def __aiter__(self) -> AsyncIterator[bytes]:
        raise RuntimeError("RSGI transport is closed")


async def test_a_client_gone_mid_body_is_answered_and_logged_like_the_route(tmp_path: Path) -> None:
    async with pair(tmp_path, "rsgi") as (quick, _):
        request = httpx.Request(
            "POST", "http://testserver/api/v1/links", headers={"content-type": "application/json", **RID},
            content=b'{"url": "https://example.com/"}',
        )
        protocol = GoneMidBody(b"")
        await quick.app.__rsgi__(rsgi_client.Scope(request), protocol)  # nothing escapes to the server
        assert protocol.status == 400 and quick.inner.calls == 1  # the route's answer, as before
        quick.app.log.flush()
        stream = quick.app.log.stream
        assert stream is not None
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]  # type: ignore[attr-defined]
        assert [(line["route"], line["status"]) for line in lines if line.get("event") == "request"] == [
            ("/api/v1/links", 400)
        ]


async def test_the_access_log_names_an_ipv6_client_as_the_route_does(tmp_path: Path) -> None:
    async with pair(tmp_path, "rsgi") as (quick, _):
        for content in (b'{"url": "https://example.com/"}', b'{"url": '):  # answered here; by the route
            request = httpx.Request(
                "POST", "http://testserver/api/v1/links", content=content,
                headers={"content-type": "application/json"},
            )
            scope = rsgi_client.Scope(request)
            scope.client = "[::1]:40000"  # granian's form of an IPv6 peer
            await quick.app.__rsgi__(scope, rsgi_client.Protocol(content))
        quick.app.log.flush()
        stream = quick.app.log.stream
        assert stream is not None
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]  # type: ignore[attr-defined]
        assert [(line["status"], line["client"]) for line in lines if line.get("event") == "request"] == [
            (201, "::1"), (422, "::1")
        ]


class Broken:
    def insert_links(self, links: object) -> list[bool]:
        raise RuntimeError("a bug")


async def test_a_bug_is_a_500_with_the_routes_message(tmp_path: Path, entry: str) -> None:
    async with pair(tmp_path, entry) as (quick, framework):
        answers = []
        for side in (quick, framework):
            side.app.ctx.writer = LinkWriter(Broken())  # type: ignore[arg-type]
            answers.append(await side.client.post("/api/v1/links", json={"url": URL}, headers=RID))
        mine, theirs = answers
        assert mine.status_code == theirs.status_code == 500
        assert mine.json() == theirs.json()  # the message and the request id; no trace
        assert "Traceback" not in mine.text and quick.inner.calls == 0
