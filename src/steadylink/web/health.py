"""``/healthz``, ``/readyz`` and ``/metrics``: what probes and Prometheus read.

``/metrics`` answers only clients in ``metrics_networks`` (loopback by
default); everyone else gets a 404, as for a path that does not exist.

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

import functools
import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine

from steadylink.errors import NotFound
from steadylink.links.compat import SchemaFit, check_schema
from steadylink.links.files import free_bytes
from steadylink.links.migrate import current_revision
from steadylink.web.auth import client_ip
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
    # Through the front door the client is the address HAProxy saw: the public
    # gets the 404 of a path that is not there (``metrics_networks``). A caller
    # on the worker's unix socket itself is this host's (the data folder is 0700).
    client = client_ip(request)
    is_socket_caller = client == "unknown"
    if not is_socket_caller and not may_read_metrics(client, get_context(request).settings.metrics_networks):
        raise NotFound(f"Nothing at {request.url.path}; see /api/openapi.json for the API.")
    app_metrics: AppMetrics = request.app.state.metrics
    return Response(app_metrics.render(), media_type=CONTENT_TYPE)


@functools.lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in allowed)


def may_read_metrics(client: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``client`` (an address) is inside one of the ``allowed`` networks."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(allowed))


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
