"""``/healthz``, ``/readyz`` and ``/metrics``: what probes and Prometheus read.

``/healthz`` says the process answers (no database: a slow database must not
get a live worker restarted). ``/readyz`` says this worker can serve: the
store answers, its schema fits this release — at its head revision, or
ahead of it (a newer release migrated it) with everything this release reads
still there (``links/compat.py``) — and the data dir's disk keeps more than
``store.disk_reserve_bytes`` free; otherwise 503 with the reason, so HAProxy
and the release guard keep traffic away. Both are plain ``def``: FastAPI runs
them in its thread pool, so the store's ping never waits on the event loop.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine

from steadylink.links.compat import SchemaFit, check_schema
from steadylink.links.files import free_bytes
from steadylink.links.migrate import current_revision
from steadylink.web.context import get_context
from steadylink.web.metrics import CONTENT_TYPE, AppMetrics

router = APIRouter(include_in_schema=False)


@router.api_route("/healthz", methods=["GET", "HEAD"])
def healthz(request: Request) -> JSONResponse:
    release = get_context(request).settings.release_id
    return JSONResponse({"status": "ok", "release": release})


@router.api_route("/readyz", methods=["GET", "HEAD"])
def readyz(request: Request) -> JSONResponse:
    ctx = get_context(request)
    release = ctx.settings.release_id
    try:
        ctx.store.ping()
        engine = getattr(ctx.store, "engine", None)
        if engine is not None:
            fit = schema_fit(engine)
            if not fit.is_servable:
                return _not_ready(f"This release cannot serve: {fit.explain()}.", release)
    except Exception as exc:  # any failure to answer means not ready, never a 500
        return _not_ready(f"The links database is not answering: {type(exc).__name__}.", release)
    free = free_bytes(ctx.settings.data_dir)
    reserve = ctx.settings.store.disk_reserve_bytes
    if free <= reserve:
        reason = (
            f"The data dir's disk is (nearly) full: {free // 1_048_576} MB free, more than "
            f"{reserve // 1_048_576} MB needed (store.disk_reserve_bytes)."
        )
        return _not_ready(reason, release)
    return JSONResponse({"status": "ready", "release": release})


@router.get("/metrics")
def metrics(request: Request) -> Response:
    app_metrics: AppMetrics = request.app.state.metrics
    return Response(app_metrics.render(), media_type=CONTENT_TYPE)


_fits: dict[tuple[int, str | None], SchemaFit] = {}


def schema_fit(engine: Engine) -> SchemaFit:
    """The fit of the schema at its current revision; inspecting the tables is done once per
    revision (probes come every few seconds; the revision is one cheap query)."""
    key = (id(engine), current_revision(engine))
    fit = _fits.get(key)
    if fit is None:
        fit = _fits[key] = check_schema(engine)
    return fit


def _not_ready(reason: str, release: str) -> JSONResponse:
    return JSONResponse(
        {"status": "not_ready", "reason": reason, "release": release}, status_code=503
    )
