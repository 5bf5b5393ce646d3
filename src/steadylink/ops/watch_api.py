"""The watch's part of the ops API: events, alerts, acknowledgements, silences.

Included by ``ops/api.py`` with one call (``install_watch_routes``). Reading
needs the ``viewer`` role; acknowledging and silencing need ``deployer``
(both are recorded in the journal with the key's name).
"""

# no ``from __future__ import annotations``: FastAPI must see the Depends(caller)
# of the closure below as objects, not as strings it cannot resolve
import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Response
from pydantic import BaseModel, Field

from steadylink.errors import InvalidInput
from steadylink.links.model import ApiKey
from steadylink.types import Role
from steadylink.watch.alert_store import list_alerts
from steadylink.watch.durations import parse_since, parse_span
from steadylink.watch.journal import Journal
from steadylink.watch.metrics import CONTENT_TYPE, render_metrics
from steadylink.watch.watcher import Watcher

Caller = Callable[..., ApiKey]
Need = Callable[[ApiKey, Role, str], None]


class SilenceBody(BaseModel):
    rule: str = Field(min_length=1, max_length=100)
    duration: str = Field(default="1h", min_length=1, max_length=20, alias="for")
    reason: str = Field(min_length=1, max_length=500)


def install_watch_routes(
    app: FastAPI, *, caller: Caller, need: Need, journal: Journal | None, watch: Watcher | None
) -> None:
    if watch is not None:

        async def attach_loop() -> None:
            watch.loop_lag.attach(asyncio.get_running_loop())

        app.router.on_startup.append(attach_loop)

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text, no key: scrapers rarely carry one, and nothing here is secret."""
        body = render_metrics(watch) if watch is not None else b""
        return Response(body, media_type=CONTENT_TYPE)

    @app.get("/ops/v1/events")
    def events(
        key: Annotated[ApiKey, Depends(caller)],
        since: Annotated[str, Query(max_length=40)] = "1h",
        kind: Annotated[list[str] | None, Query(max_length=20)] = None,
        release: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        need(key, Role.VIEWER, "events")
        if journal is None:
            return []
        start = parse_since(since, now=journal.clock.now())
        found = journal.read(since=start, kinds=kind or (), release=release, limit=limit)
        return [e.to_json() for e in found]

    @app.get("/ops/v1/alerts")
    def alerts(key: Annotated[ApiKey, Depends(caller)]) -> dict[str, Any]:
        need(key, Role.VIEWER, "alerts")
        if watch is None or journal is None:
            return {"alerts": [], "silences": []}
        since = journal.clock.now().timestamp() - 7 * 86_400
        found = {a.alert_id: a for a in list_alerts(journal.path, since=since)}
        # the guard's own view of what is open wins: it is current while ops.db refuses writes
        found.update({a.alert_id: a for a in list(watch.book.open.values())})
        newest_first = sorted(found.values(), key=lambda a: a.started_at, reverse=True)
        return {
            "alerts": [a.to_json() for a in newest_first],
            "silences": [s.__dict__ for s in watch.book.silences.values()],
        }

    @app.post("/ops/v1/alerts/{alert}/ack")
    def ack(alert: str, key: Annotated[ApiKey, Depends(caller)]) -> dict[str, Any]:
        need(key, Role.DEPLOYER, "ack")
        if watch is None:
            raise InvalidInput("The watch is not running in this guard.", field="alert")
        return watch.acknowledge(alert, by=key.name).to_json()

    @app.post("/ops/v1/alerts/silences")
    def silence(body: SilenceBody, key: Annotated[ApiKey, Depends(caller)]) -> dict[str, Any]:
        need(key, Role.DEPLOYER, "silence")
        if watch is None:
            raise InvalidInput("The watch is not running in this guard.", field="rule")
        seconds = parse_span(body.duration, field="for")
        return watch.silence(body.rule, seconds=seconds, reason=body.reason, by=key.name)
