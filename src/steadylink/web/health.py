"""``/healthz``, ``/readyz`` and ``/metrics``: what probes and Prometheus read.

``/healthz`` says the process answers (no database: a slow database must not
get a live worker restarted). ``/readyz`` says this worker can serve: the
store answers and its schema is at the head revision; otherwise 503 with the
reason, so HAProxy and the release guard keep traffic away.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from steadylink.links.migrate import head_revision, is_at_head
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
        if engine is not None and not is_at_head(engine):
            reason = f"The schema is not at {head_revision()}; run `steadylink db upgrade`."
            return _not_ready(reason, release)
    except Exception as exc:  # any failure to answer means not ready, never a 500
        return _not_ready(f"The links database is not answering: {type(exc).__name__}.", release)
    return JSONResponse({"status": "ready", "release": release})


@router.get("/metrics")
def metrics(request: Request) -> Response:
    app_metrics: AppMetrics = request.app.state.metrics
    return Response(app_metrics.render(), media_type=CONTENT_TYPE)


def _not_ready(reason: str, release: str) -> JSONResponse:
    return JSONResponse(
        {"status": "not_ready", "reason": reason, "release": release}, status_code=503
    )
