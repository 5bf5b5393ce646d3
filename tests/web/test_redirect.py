"""The redirect front, in process: real app, real SQLite store, FakeClock."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from tests.web.rsgi_client import Protocol as RsgiProtocol
from tests.web.rsgi_client import Scope as rsgi_scope
from tests.web.rsgi_client import rsgi_client

from steadylink.clock import FakeClock
from steadylink.errors import RateLimited, StoreError
from steadylink.links import service
from steadylink.links.model import LinkChanges, NewLink
from steadylink.links.spool import VisitSpool
from steadylink.links.sql_store import NOT_ANSWERING
from steadylink.settings import Settings
from steadylink.types import Role
from steadylink.web.app import build_context, create_app, run_lifespan
from steadylink.web.context import AppContext

pytestmark = pytest.mark.anyio


_interface = ["asgi"]


@pytest.fixture(autouse=True, params=["asgi", "rsgi"])
def interface(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs through both entry points: ASGI and granian's RSGI."""
    _interface[0] = request.param
    yield request.param
    _interface[0] = "asgi"


@asynccontextmanager
async def serving(
    settings: Settings, clock: FakeClock
) -> AsyncIterator[tuple[httpx.AsyncClient, AppContext]]:
    ctx = build_context(settings, clock=clock)
    app = create_app(settings, ctx=ctx, log_stream=io.StringIO())
    if _interface[0] == "rsgi":
        async with rsgi_client(app) as client:
            yield client, ctx
        return
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with run_lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client, ctx


def _create(ctx: AppContext, url: str = "https://example.com/a?b=1#c", **fields: object) -> str:
    new = NewLink(url=url, **fields)  # type: ignore[arg-type]
    return service.create_link(
        store=ctx.store, settings=ctx.settings, clock=ctx.clock, rng=ctx.rng, new=new
    ).code


async def test_redirect_answers_302_with_the_exact_location(settings: Settings, clock: FakeClock) -> None:
    async with serving(settings, clock) as (client, ctx):
        code = _create(ctx)
        response = await client.get(f"/{code}")
        assert response.status_code == 302
        assert response.headers["location"] == "https://example.com/a?b=1#c"
        assert response.headers["cache-control"] == "private, max-age=0"
        assert response.headers["x-request-id"]


async def test_a_link_held_in_memory_answers_the_same_and_counts_each_visit(
    settings: Settings, clock: FakeClock
) -> None:
    async with serving(settings, clock) as (client, ctx):
        code = _create(ctx, url="https://example.com/ä?x=1")
        answers = [await client.get(f"/{code}", headers={"X-Request-ID": f"r{i}"}) for i in range(3)]
        assert ctx.cache.location(code) is not None  # the 2nd and 3rd answers came from memory
        for i, answer in enumerate(answers):
            assert answer.status_code == 302 and answer.text == "Found\n"
            assert answer.headers["location"] == "https://example.com/%C3%A4?x=1"
            assert answer.headers["x-request-id"] == f"r{i}"
            assert answer.headers["cache-control"] == "private, max-age=0"
        head = await client.head(f"/{code}")
        assert head.status_code == 302 and head.content == b""
        assert ctx.clicks.flush() == 3  # HEAD only looks


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirect_status_comes_from_settings(settings: Settings, clock: FakeClock, status: int) -> None:
    settings = dataclasses.replace(
        settings, links=dataclasses.replace(settings.links, redirect_status=status)
    )
    async with serving(settings, clock) as (client, ctx):
        response = await client.get(f"/{_create(ctx)}")
        assert response.status_code == status


async def test_head_redirects_without_a_body_or_a_visit(settings: Settings, clock: FakeClock) -> None:
    async with serving(settings, clock) as (client, ctx):
        code = _create(ctx, max_visits=1)
        response = await client.head(f"/{code}")
        assert response.status_code == 302 and response.content == b""
        assert ctx.clicks.flush() == 0
        assert (await client.get(f"/{code}")).status_code == 302


async def test_unicode_targets_are_percent_encoded(settings: Settings, clock: FakeClock) -> None:
    async with serving(settings, clock) as (client, ctx):
        response = await client.get(f"/{_create(ctx, url='https://example.com/café')}")
        assert response.headers["location"] == "https://example.com/caf%C3%A9"


async def test_expired_link_is_gone(settings: Settings, clock: FakeClock) -> None:
    async with serving(settings, clock) as (client, ctx):
        code = _create(ctx, expires_at=clock.now() + timedelta(minutes=1))
        assert (await client.get(f"/{code}")).status_code == 302  # now cached
        clock.advance(60)
        response = await client.get(f"/{code}", headers={"Accept": "application/json"})
        assert response.status_code == 410
        assert response.json()["error"] == "gone"


async def test_unknown_code_is_404_json_for_api_clients(settings: Settings, clock: FakeClock) -> None:
    async with serving(settings, clock) as (client, _ctx):
        response = await client.get("/nothing-here", headers={"Accept": "application/json"})
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


async def test_limited_link_allows_exactly_n_visits_under_concurrency(
    settings: Settings, clock: FakeClock
) -> None:
    n = 7
    async with serving(settings, clock) as (client, ctx):
        code = _create(ctx, max_visits=n)
        responses = await asyncio.gather(*(client.get(f"/{code}") for _ in range(n + 5)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [302] * n + [410] * 5
        assert ctx.store.link_stats(code).total == n


async def test_disabled_and_deleted_links_stop_at_once_after_invalidation(
    settings: Settings, clock: FakeClock
) -> None:
    async with serving(settings, clock) as (client, ctx):
        code = _create(ctx)
        assert (await client.get(f"/{code}")).status_code == 302
        service.change_link(
            store=ctx.store,
            settings=settings,
            clock=clock,
            code=code,
            changes=LinkChanges(is_disabled=True),
        )
        ctx.cache.invalidate(code)
        assert (await client.get(f"/{code}")).status_code == 404
        other = _create(ctx)
        assert (await client.get(f"/{other}")).status_code == 302
        service.delete_link(store=ctx.store, code=other)
        ctx.cache.invalidate(other)
        assert (await client.get(f"/{other}")).status_code == 404


async def test_password_and_file_links_go_to_the_inner_app(settings: Settings, clock: FakeClock) -> None:
    async with serving(settings, clock) as (client, ctx):
        locked = _create(ctx, password="s3cret")
        response = await client.get(f"/{locked}", headers={"Accept": "text/html"})
        assert response.status_code == 200 and "password" in response.text.lower()
        stored = ctx.files.save_bytes(b"hello", name="hello.txt", content_type="text/plain")
        new = NewLink(file=stored)
        code = service.create_link(store=ctx.store, settings=settings, clock=clock, rng=ctx.rng, new=new).code
        response = await client.get(f"/{code}")
        assert response.status_code == 200 and response.content == b"hello"
        assert "attachment" in response.headers["content-disposition"]


async def test_visits_are_counted_with_referrer_host_and_agent(settings: Settings, clock: FakeClock) -> None:
    async with serving(settings, clock) as (client, ctx):
        code = _create(ctx)
        headers = {"Referer": "https://chat.example.net/room/1?x=y", "User-Agent": "curl/8.5.0"}
        for _ in range(3):
            await client.get(f"/{code}", headers=headers)
        ctx.clicks.flush()
        VisitSpool(settings.visits_dir).fold(ctx.store, clock.now())
        stats = ctx.store.link_stats(code)
        assert stats.total == 3
        assert stats.referrers == {"chat.example.net": 3}
        assert stats.agents == {"curl": 3}


async def test_reserved_and_odd_paths_never_reach_the_lookup(settings: Settings, clock: FakeClock) -> None:
    async with serving(settings, clock) as (client, ctx):
        assert (await client.get("/healthz")).status_code == 200
        before = ctx.cache.misses  # type: ignore[attr-defined]
        for path in ("/api", "/a/b", "/..", "/%2e%2e", "/x%00"):
            assert (await client.get(path)).status_code < 500
        assert ctx.cache.misses == before  # type: ignore[attr-defined]


async def test_an_error_on_the_memory_path_is_a_json_500_logged_once(
    settings: Settings, clock: FakeClock, interface: str
) -> None:
    if interface != "rsgi":
        pytest.skip("the memory path is RSGI's")
    ctx = build_context(settings, clock=clock)
    log = io.StringIO()
    app = create_app(settings, ctx=ctx, log_stream=log)
    async with rsgi_client(app) as client:
        code = _create(ctx)
        assert (await client.get(f"/{code}")).status_code == 302  # now held in memory

        def broken(code: str, *, referrer: str | None, user_agent: str | None) -> None:
            raise KeyError("secret internals")

        ctx.clicks.record = broken  # type: ignore[method-assign]
        # the redirect went out before the error: the client got it, the error is logged once
        assert (await client.get(f"/{code}")).status_code == 302
        errors = [line for line in log.getvalue().splitlines() if '"level": "error"' in line]
        assert len(errors) == 1 and "KeyError" in errors[0]
        ctx.cache.location = lambda code: {}[code]  # type: ignore[method-assign]
        failed = await client.get(f"/{code}", headers={"X-Request-ID": "req-7"})
        assert failed.status_code == 500 and failed.json()["request_id"] == "req-7"
        assert "secret" not in failed.text


async def test_a_store_that_does_not_answer_never_holds_a_redirect_from_memory(
    settings: Settings, clock: FakeClock
) -> None:
    """A cache miss waits for the store in a thread; the loop keeps answering held links."""
    async with serving(settings, clock) as (client, ctx):
        code = _create(ctx)
        assert (await client.get(f"/{code}")).status_code == 302  # now held in memory
        silent = threading.Event()
        real_get = ctx.store.get_link

        def get_link(wanted: str) -> object:
            silent.wait(10)  # a database that does not answer
            return real_get(wanted)

        ctx.store.get_link = get_link  # type: ignore[method-assign]
        stuck = asyncio.ensure_future(client.get("/unknownx"))
        await asyncio.sleep(0.05)  # the miss is out, waiting in its thread
        answers = [await client.get(f"/{code}") for _ in range(20)]
        assert [a.status_code for a in answers] == [302] * 20
        assert not stuck.done()
        silent.set()
        assert (await stuck).status_code == 404


async def test_api_and_page_requests_waiting_for_the_store_never_hold_a_redirect_from_memory(
    settings: Settings, clock: FakeClock
) -> None:
    """The API, its key check and the UI's posted pages wait for the store in threads, not on the loop."""
    async with serving(settings, clock) as (client, ctx):
        code = _create(ctx)
        locked = _create(ctx, url="https://example.com/locked", password="pw")
        assert (await client.get(f"/{code}")).status_code == 302  # now held in memory
        seen = service.create_key(store=ctx.store, clock=ctx.clock, name="seen", role=Role.ADMIN).secret
        unseen = service.create_key(store=ctx.store, clock=ctx.clock, name="unseen", role=Role.ADMIN).secret
        assert (await client.get("/api/v1/whoami", headers=_bearer(seen))).status_code == 200  # remembered
        silent = threading.Event()
        for name in ("get_link", "list_links", "link_stats", "key_by_hash", "list_keys"):
            real = getattr(ctx.store, name)

            def hanging(*args: object, _real: Any = real, **kwargs: object) -> object:
                silent.wait(10)  # a database that does not answer
                return _real(*args, **kwargs)

            setattr(ctx.store, name, hanging)
        requests = [
            client.get("/api/v1/links", headers=_bearer(seen)),
            client.get(f"/api/v1/links/{code}", headers=_bearer(seen)),
            client.get("/api/v1/keys", headers=_bearer(seen)),
            client.get("/api/v1/whoami", headers=_bearer(unseen)),  # the key check itself
            client.post("/", data={"url": "https://example.com/new", "code": "fresh1"}),
            client.post(f"/s/{locked}", data={"password": "pw"}),
            client.post(f"/{locked}", data={"password": "pw"}),
            client.get(f"/s/{code}"),
        ]
        stuck = [asyncio.ensure_future(r) for r in requests]
        await asyncio.sleep(0.1)  # every request is out, waiting for the store
        answers = [await client.get(f"/{code}") for _ in range(20)]
        assert [a.status_code for a in answers] == [302] * 20
        assert [s.done() for s in stuck] == [False] * len(stuck)
        silent.set()
        done = await asyncio.gather(*stuck)
        assert [d.status_code for d in done] == [200, 200, 200, 200, 303, 200, 303, 200]


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_the_store_failing_is_a_fixed_503_on_a_cache_miss(settings: Settings, clock: FakeClock) -> None:
    async with serving(settings, clock) as (client, ctx):

        def get_link(wanted: str) -> object:
            raise StoreError(NOT_ANSWERING)

        ctx.store.get_link = get_link  # type: ignore[method-assign]
        response = await client.get("/unknownx", headers={"X-Request-ID": "rid-1"})
        assert response.status_code == 503
        assert response.json() == {"error": "store", "message": NOT_ANSWERING, "request_id": "rid-1"}
        assert response.headers["x-request-id"] == "rid-1"


async def test_error_answers_keep_their_headers_on_both_paths(settings: Settings, clock: FakeClock) -> None:
    """A 429 from the front carries Retry-After as the framework's handler sends it."""
    async with serving(settings, clock) as (client, ctx):

        def get_link(wanted: str) -> object:
            raise RateLimited("Too many requests here; try again in 7 s.", retry_after=7)

        ctx.store.get_link = get_link  # type: ignore[method-assign]
        response = await client.get("/unknownx")
        assert response.status_code == 429 and response.headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("peer", "expected"), [("127.0.0.1", "198.51.100.7"), ("203.0.113.5", "203.0.113.5")]
)
async def test_the_access_log_trusts_forwarded_for_only_from_the_front_door(
    settings: Settings, clock: FakeClock, interface: str, peer: str, expected: str
) -> None:
    """One rule on both paths: a loopback (or unix-socket) peer is our HAProxy; anyone else
    naming another client in X-Forwarded-For is not believed."""
    ctx = build_context(settings, clock=clock)
    log = io.StringIO()
    app = create_app(settings, ctx=ctx, log_stream=log)
    code = _create(ctx)
    headers = {"X-Forwarded-For": "198.51.100.7"}
    if interface == "rsgi":
        async with run_lifespan(app):
            for path in (f"/{code}", "/healthz"):
                request = httpx.Request("GET", f"http://t{path}", headers=headers)
                scope = rsgi_scope(request)
                scope.client = f"{peer}:40000"
                await app.__rsgi__(scope, RsgiProtocol(b""))
    else:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with run_lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for path in (f"/{code}", "/healthz"):
                await client.get(path, headers=headers)
    app.log.flush()
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    clients = [line["client"] for line in lines if line.get("event") == "request"]
    assert clients == [expected, expected]  # the redirect's line and the framework's alike
