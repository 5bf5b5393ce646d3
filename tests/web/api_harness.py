"""The API under test: the real app (``create_app``) on a real store, in process.

``ApiHarness`` holds the app, its context (with a ``FakeClock`` and a
limiter on that clock) and one API key per role, so tests read as
``api.client.post(..., headers=api.auth("editor"))``.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

from steadylink.clock import FakeClock
from steadylink.links import service
from steadylink.links.store import Store
from steadylink.settings import Settings
from steadylink.types import Role
from steadylink.web.app import build_context, create_app
from steadylink.web.context import AppContext
from steadylink.web.ratelimit import build_rate_limiter

BASE = "http://testserver/api/v1"


@dataclass
class ApiHarness:
    ctx: AppContext
    client: httpx.AsyncClient
    clock: FakeClock
    secrets: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[role]}"}

    def add_key(self, name: str, role: Role) -> None:
        issued = service.create_key(store=self.ctx.store, clock=self.clock, name=name, role=role)
        self.secrets[name] = issued.secret
        self.key_ids[name] = issued.key.id


def make_context(settings: Settings, store: Store, clock: FakeClock) -> AppContext:
    ctx = build_context(settings, clock=clock, store=store)
    return dataclasses.replace(ctx, limiter=build_rate_limiter(settings, clock=clock))


@asynccontextmanager
async def running_api(settings: Settings, store: Store, clock: FakeClock) -> AsyncIterator[ApiHarness]:
    """The app with keys ``viewer``, ``editor``, ``editor2``, ``deployer``, ``admin``."""
    ctx = make_context(settings, store, clock)
    app = create_app(settings, ctx=ctx, log_stream=io.StringIO())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        harness = ApiHarness(ctx=ctx, client=client, clock=clock)
        for name, role in [
            ("viewer", Role.VIEWER),
            ("editor", Role.EDITOR),
            ("editor2", Role.EDITOR),
            ("deployer", Role.DEPLOYER),
            ("admin", Role.ADMIN),
        ]:
            harness.add_key(name, role)
        yield harness
