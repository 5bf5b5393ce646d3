"""The app as a whole: context, lifespan, several workers on one database, errors."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from steadylink.clock import FakeClock
from steadylink.links import service
from steadylink.links.migrate import is_at_head
from steadylink.links.model import Link, LinkChanges, NewLink
from steadylink.links.spool import VisitSpool
from steadylink.links.sql_store import SqlStore, open_store
from steadylink.settings import Settings
from steadylink.web.app import build_context, create_app, run_lifespan
from steadylink.web.context import AppContext

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def serving(
    settings: Settings, ctx: AppContext, log: io.StringIO | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, ctx=ctx, log_stream=log or io.StringIO())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with run_lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


def _create(ctx: AppContext) -> str:
    new = NewLink(url="https://example.com/")
    return service.create_link(
        store=ctx.store, settings=ctx.settings, clock=ctx.clock, rng=ctx.rng, new=new
    ).code


def test_build_context_migrates_a_fresh_database(settings: Settings) -> None:
    ctx = build_context(settings)
    assert isinstance(ctx.store, SqlStore) and is_at_head(ctx.store.engine)
    ctx.store.close()


async def test_shutdown_flushes_pending_clicks(settings: Settings, clock: FakeClock) -> None:
    ctx = build_context(settings, clock=clock)
    code = _create(ctx)
    async with serving(settings, ctx) as client:
        for _ in range(4):
            assert (await client.get(f"/{code}")).status_code == 302
    reopened = open_store(settings.database_url)
    assert VisitSpool(settings.visits_dir).fold(reopened, clock.now()).visits == 4
    assert reopened.link_stats(code).total == 4
    reopened.close()


async def test_a_change_in_one_worker_reaches_the_other_at_its_poll(
    settings: Settings, clock: FakeClock
) -> None:
    # the background poll (every second, in a thread) must not come first here
    settings = dataclasses.replace(
        settings, links=dataclasses.replace(settings.links, invalidation_poll_seconds=60)
    )
    first = build_context(settings, clock=clock)
    second = build_context(settings, clock=clock)
    code = _create(first)
    async with serving(settings, first) as one, serving(settings, second) as two:
        assert (await two.get(f"/{code}")).status_code == 302  # cached in the second worker
        service.change_link(
            store=first.store,
            settings=settings,
            clock=clock,
            code=code,
            changes=LinkChanges(is_disabled=True),
        )
        first.cache.invalidate(code)
        assert (await one.get(f"/{code}")).status_code == 404
        assert (await two.get(f"/{code}")).status_code == 302  # not polled yet: within ~1 s
        second.cache.poll_invalidations()  # type: ignore[attr-defined]
        assert (await two.get(f"/{code}")).status_code == 404


class _BrokenCache:
    """A seam: a cache whose lookup fails the way a bug would."""

    def location(self, code: str) -> str | None:
        return None

    def lookup(self, code: str) -> Link | None:
        raise KeyError("secret internals")

    def held(self, code: str) -> object:
        raise KeyError("secret internals")

    def load(self, code: str) -> Link | None:
        raise KeyError("secret internals")

    def invalidate(self, code: str) -> None:
        return None


async def test_an_unexpected_error_is_a_json_500_logged_once(settings: Settings, clock: FakeClock) -> None:
    ctx = build_context(settings, clock=clock)
    ctx.cache = _BrokenCache()
    log = io.StringIO()
    async with serving(settings, ctx, log) as client:
        response = await client.get("/abcdef", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal",
        "message": response.json()["message"],
        "request_id": "req-42",
    }
    assert "secret internals" not in response.text and "Traceback" not in response.text
    errors = [json.loads(line) for line in log.getvalue().splitlines() if '"level": "error"' in line]
    assert len(errors) == 1
    assert errors[0]["exception"] == "KeyError" and errors[0]["request_id"] == "req-42"
    assert errors[0]["where"].startswith("steadylink/web/")


async def test_an_error_inside_the_framework_is_logged_once(settings: Settings, clock: FakeClock) -> None:
    ctx = build_context(settings, clock=clock)
    log = io.StringIO()
    app = create_app(settings, ctx=ctx, log_stream=log)

    def explode() -> None:
        raise ZeroDivisionError("boom")

    app.inner.add_api_route("/api/v1/explode", explode)  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with run_lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/api/v1/explode")
    assert response.status_code == 500
    assert response.json()["error"] == "internal" and "boom" not in response.text
    assert response.headers["x-request-id"]
    errors = [json.loads(line) for line in log.getvalue().splitlines() if '"level": "error"' in line]
    assert [e["exception"] for e in errors] == ["ZeroDivisionError"]
    assert errors[0]["route"] == "/api/v1/explode"
