"""``/status`` and ``/status.json``: the public status page, on the ops port, without a key.

Served by the guard, so it answers while the app does not. It shows only
``incidents.status_page.status_json``: probe-derived component states, daily
uptime and the public side of incidents.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from steadylink.incidents.service import Incidents
from steadylink.incidents.status_page import status_json
from steadylink.ops.pages import render_page
from steadylink.watch.opsdb import connect_ops_db

PUBLIC_HEADERS = {"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"}


def include_status_page(app: FastAPI, incidents: Incidents, *, title: str) -> None:
    store = incidents.store

    def current() -> dict[str, Any]:
        conn = connect_ops_db(store.path, read_only=True)  # the store made the file
        try:
            return status_json(conn, store, now=store.clock.now(), title=title)
        finally:
            conn.close()

    @app.get("/status.json", include_in_schema=False)
    def status_data() -> JSONResponse:
        return JSONResponse(current(), headers=PUBLIC_HEADERS)

    @app.get("/status", include_in_schema=False)
    def status_page() -> HTMLResponse:
        return render_page("status.html", page=current(), headers={"Cache-Control": "no-cache"})
