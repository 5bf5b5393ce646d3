"""What every part of the web app shares: settings, store, files, clock, and the
hot-path services (cache, click recorder, rate limiter, API keys, link writer).

Built once per worker process by ``steadylink.web.app.build_context``; handlers
get it from ``request.app.state.ctx`` (``get_context`` below). The API-key
cache and the link writer are made here from the store (and clock), so every
context has its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from starlette.requests import Request

from steadylink.clock import Clock
from steadylink.links.codes import RandomSource
from steadylink.links.files import FileStore
from steadylink.links.model import Link
from steadylink.links.service import KeyCache
from steadylink.links.store import Store
from steadylink.links.writer import LinkWriter
from steadylink.settings import Settings
from steadylink.web.offload import Offload


class LinkCache(Protocol):
    """Hot codes in memory; kept correct across workers through the store's change log."""

    def location(self, code: str) -> str | None:
        """The ``Location`` of a plain link held in memory, else None (then ``lookup``)."""
        ...

    def lookup(self, code: str) -> Link | None:
        """The link for ``code`` from memory, else from the store (then remembered)."""
        ...

    def held(self, code: str) -> Link | object | None:
        """The link for ``code`` (None: known missing) from memory alone, else ``NOT_HELD``."""
        ...

    def load(self, code: str) -> Link | None:
        """Read ``code`` from the store and remember it (a store call: run it in a thread)."""
        ...

    def invalidate(self, code: str) -> None:
        """Forget ``code`` now (this worker); other workers learn it from the change log."""
        ...


class ClickRecorder(Protocol):
    def record(self, code: str, *, referrer: str | None, user_agent: str | None) -> None:
        """Count one visit in memory; written to the visit spool in batches."""
        ...

    def take(self) -> list[str]:
        """The batch recorded since the last take (on the event loop)."""
        ...

    def write(self, batch: list[str]) -> int:
        """Write a batch from ``take`` (may run in a thread); return how many visits."""
        ...

    def flush(self) -> int:
        """``take`` and ``write`` at once; return how many visits were written."""
        ...


class PasswordChecker(Protocol):
    async def check(self, code: str, password_hash: str, password: str) -> bool:
        """Whether ``password`` opens link ``code`` (off the event loop); RateLimited past a limit."""
        ...

    def close(self) -> None: ...


class RateLimiter(Protocol):
    def check(self, bucket: str, client: str) -> None:
        """Raise RateLimited if ``client`` used up its allowance in ``bucket``."""
        ...


@dataclass
class AppContext:
    settings: Settings
    store: Store
    files: FileStore
    clock: Clock
    rng: RandomSource
    cache: LinkCache
    clicks: ClickRecorder
    limiter: RateLimiter
    passwords: PasswordChecker
    keys: KeyCache = field(init=False)
    writer: LinkWriter = field(init=False)
    # store and Redis calls of request handlers that must not wait on the event loop
    offload: Offload = field(init=False)

    def __post_init__(self) -> None:
        self.keys = KeyCache(self.store, self.clock)
        self.writer = LinkWriter(self.store)
        self.offload = Offload()


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def provide_context(request: Request) -> AppContext:
    """``get_context`` as a FastAPI dependency: async, so it runs without a thread hop."""
    return get_context(request)
