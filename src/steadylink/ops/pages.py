"""The guard's HTML: templates, static files and the same strict headers as the app's pages.

The status page and the dashboard are rendered on the server (jinja2,
autoescaped: a ``<script>`` typed into a note shows as text). Static files are
read once and served with a content hash in their URL; there is no inline
script or style and nothing from another origin, so the CSP stays strict.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from steadylink.web.pages import (  # the app's pages' policy and static files: one way for every page
    HTML_CSP,
    load_static,
)

HTML_HEADERS = {
    "Content-Security-Policy": HTML_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_STATIC_DIR = Path(__file__).parent / "static"


STATIC_FILES = load_static(_STATIC_DIR)


def static_url(name: str) -> str:
    return f"/ops-static/{name}?v={STATIC_FILES[name].version}"


def when(value: str | datetime | None) -> str:
    """``2026-01-01 12:00:00 UTC`` from an ISO string or a datetime; ``-`` for none."""
    return f"{typed_time(value)} UTC" if value is not None else "-"


def typed_time(value: str | datetime | None) -> str:
    """``2026-01-01 12:00:00``: a moment as a form shows it to be corrected; empty for none."""
    if value is None:
        return ""
    at = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return f"{at:%Y-%m-%d %H:%M:%S}"


_templates = Environment(
    loader=PackageLoader("steadylink.ops", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.globals.update(static_url=static_url)
_templates.filters["when"] = when
_templates.filters["typed_time"] = typed_time


def render_page(
    name: str, *, http_status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    html = _templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=http_status, headers={**HTML_HEADERS, **(headers or {})})


def include_static(app: FastAPI) -> None:
    @app.get("/ops-static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        found = STATIC_FILES.get(name)
        if found is None:
            return Response(status_code=404)
        return Response(
            found.body,
            media_type=found.media_type,
            headers={
                "Cache-Control": "public, max-age=31536000, immutable",
                "X-Content-Type-Options": "nosniff",
            },
        )
