"""Build the app of one worker process: its context, the FastAPI app, the redirect front.

granian runs ``steadylink.web.app:app`` (built on first access from
``load_settings()``, i.e. ``steadylink.toml`` and ``STEADYLINK_*``), e.g.::

    granian --interface rsgi --http 1 --loop uvloop steadylink.web.app:app --uds /run/s.sock

``create_app`` returns the redirect front, callable as RSGI (what ``serve``
runs) and as raw ASGI (tests, any ASGI server): ``GET``/``HEAD /{code}`` is
answered by ``web/redirect.py``; everything else (and the lifespan) goes to
the inner FastAPI app. The lifespan warms the link cache and runs the
background task that flushes clicks and logs and polls the store's change
log to keep the cache correct.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, TextIO

from fastapi import FastAPI

from steadylink import heartbeat
from steadylink.clock import Clock, SystemClock
from steadylink.errors import SteadylinkError, StoreError
from steadylink.links.cache import MemoryLinkCache
from steadylink.links.clicks import BatchClickRecorder
from steadylink.links.codes import RandomSource, SystemRandom
from steadylink.links.compat import prepare_schema
from steadylink.links.files import FileStore
from steadylink.links.spool import VisitSpool
from steadylink.links.sql_store import open_store
from steadylink.links.store import Store
from steadylink.settings import Settings, load_settings
from steadylink.streams import protect_std_streams

# Plain module imports on purpose: the release import gate imports this
# module, so a release whose API or UI cannot load fails that gate.
from steadylink.web import api, docs, errors, health, ui
from steadylink.web.bridge import run_lifespan
from steadylink.web.context import AppContext
from steadylink.web.logs import RequestLog
from steadylink.web.metrics import AppMetrics
from steadylink.web.pages import render_error_html
from steadylink.web.ratelimit import build_rate_limiter
from steadylink.web.redirect import RedirectDispatcher
from steadylink.web.unlock import build_password_checks

__all__ = ["build_context", "create_app", "run_lifespan"]

_log = logging.getLogger(__name__)


def build_context(
    settings: Settings,
    *,
    clock: Clock | None = None,
    rng: RandomSource | None = None,
    store: Store | None = None,
) -> AppContext:
    """Open the store (migrating one behind this release; one ahead of it must fit, see
    ``links/compat.py``) and build the worker's services."""
    clock = clock or SystemClock()
    if store is None:
        # every call of a worker waits at most store.timeout_seconds for an answer;
        # migrating a database behind this release may take longer: a store of its own
        opened = open_store(settings.database_url, answer_seconds=settings.store.timeout_seconds)
        migrating = open_store(settings.database_url)
        try:
            prepare_schema(migrating.engine)
        finally:
            migrating.close()
        store = opened
    return AppContext(
        settings=settings,
        store=store,
        files=FileStore(
            settings.files_dir,
            max_bytes=settings.links.upload_max_bytes,
            reserve_bytes=settings.store.disk_reserve_bytes,
        ),
        clock=clock,
        rng=rng or SystemRandom(),
        cache=MemoryLinkCache(
            store, clock, size=settings.links.cache_size,
            negative_seconds=settings.links.invalidation_poll_seconds,
        ),
        clicks=BatchClickRecorder(VisitSpool(settings.visits_dir), clock),
        limiter=build_rate_limiter(settings, clock=clock),
        passwords=build_password_checks(settings, clock=clock),
    )


def create_app(
    settings: Settings, *, ctx: AppContext | None = None, log_stream: TextIO | None = None
) -> RedirectDispatcher:
    """The ASGI app of one worker: the redirect front around the FastAPI app."""
    ctx = ctx or build_context(settings)
    metrics = AppMetrics(settings.release_id)
    log = RequestLog(release=settings.release_id, enabled=settings.access_log, stream=log_stream)
    inner = FastAPI(
        title="steadylink",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served from the package by web/docs.py, under the pages' CSP
        redoc_url=None,
        lifespan=_lifespan(ctx, metrics, log),
    )
    inner.state.ctx = ctx
    inner.state.metrics = metrics
    inner.state.request_log = log
    _include_routers(inner)
    return RedirectDispatcher(ctx=ctx, inner=inner, metrics=metrics, log=log)


def _include_routers(inner: FastAPI) -> None:
    inner.include_router(health.router)
    inner.include_router(api.router, prefix="/api/v1")
    api_docs = docs.docs_router(path="/api/docs", openapi_url="/api/openapi.json", title=inner.title)
    inner.include_router(api_docs)
    inner.include_router(ui.router)
    errors.install_error_handlers(inner, render_html=render_error_html)


def _lifespan(ctx: AppContext, metrics: AppMetrics, log: RequestLog) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if ctx.settings.links.cache_warm and isinstance(ctx.cache, MemoryLinkCache):
            started = time.monotonic()
            try:
                warmed = ctx.cache.warm()
            except StoreError as exc:  # serve anyway: misses are read one by one
                log.event("cache_warm_failed", message=exc.message)
                warmed = len(ctx.cache)
            log.event("cache_warmed", links=warmed, seconds=round(time.monotonic() - started, 3))
        task = asyncio.create_task(_run_background(ctx, metrics, log))
        # the guard's supervisor reads it: a worker whose loop stops turning is killed
        beating = asyncio.create_task(heartbeat.beat(ctx.settings.data_dir))
        log.event("started")
        try:
            yield
        finally:
            for running in (task, beating):
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            _write_clicks(ctx, log, ctx.clicks.take())
            _flush_counters(ctx, metrics, log)
            log.event("stopped")
            log.flush()
            ctx.writer.close()
            ctx.offload.close()
            ctx.passwords.close()
            ctx.store.close()

    return lifespan


async def _run_background(ctx: AppContext, metrics: AppMetrics, log: RequestLog) -> None:
    """Flush clicks, logs and cache counters; poll the change log. Never dies on an error."""
    links = ctx.settings.links
    loop = asyncio.get_running_loop()
    # the first poll one interval after start: warm() read the store after the
    # cache noted the change log's position, so that poll catches what warm-up missed
    next_flush = loop.time()
    next_poll = next_flush + links.invalidation_poll_seconds
    while True:
        now = loop.time()
        if now >= next_poll:
            next_poll = now + links.invalidation_poll_seconds
            poll = getattr(ctx.cache, "poll_invalidations", None)
            if poll is not None:
                # in a thread: a silent database holds the poll, never the redirects
                await asyncio.to_thread(_poll, ctx, log, poll)
        if now >= next_flush:
            next_flush = now + links.click_flush_seconds
            # The batch is taken here, on the loop that records visits; the file
            # write runs in a thread, so a slow disk never stalls the redirects.
            await asyncio.to_thread(_write_clicks, ctx, log, ctx.clicks.take())
            _flush_counters(ctx, metrics, log)
        await asyncio.sleep(max(min(next_poll, next_flush) - loop.time(), 0.01))


def _poll(ctx: AppContext, log: RequestLog, poll: Any) -> None:
    try:
        poll()
    except Exception as exc:
        message = exc.message if isinstance(exc, SteadylinkError) else str(exc)
        log.event("cache_poll_failed", exception=type(exc).__name__, message=message)


def _write_clicks(ctx: AppContext, log: RequestLog, batch: list[str]) -> int:
    try:
        return ctx.clicks.write(batch)
    except Exception as exc:
        log.event("click_flush_failed", exception=type(exc).__name__, message=str(exc))
        return 0


def _flush_counters(ctx: AppContext, metrics: AppMetrics, log: RequestLog) -> None:
    """Runs on the event loop: the request log and the counters are not shared with threads."""
    metrics.fold()
    cache = ctx.cache
    if isinstance(cache, MemoryLinkCache):
        metrics.sync_cache_counts(cache.hits, cache.misses)
    log.flush()


def __getattr__(name: str) -> Any:
    # ``app`` is built on first access, so importing this module has no side effects.
    if name == "app":
        protect_std_streams()  # a worker: its output is run/slot*.log in the data folder
        built = create_app(load_settings())
        globals()["app"] = built
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
