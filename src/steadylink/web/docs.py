"""Interactive API docs (Swagger UI) served from the package: no CDN, no inline script.

FastAPI's own ``/docs`` page loads Swagger UI from a public CDN and starts it
with an inline script: blank offline, and impossible under the pages' CSP. So
the apps turn it off (``docs_url=None``) and include ``docs_router``: the page
is a template under the same headers as every other page, Swagger UI's files
come from the ``fastapi-offline`` wheel (which ships them for this purpose),
and ``static/docs.js`` starts it. The web app serves it at ``/api/docs``, the
guard's ops API at ``/ops/docs``.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from steadylink.web.pages import (
    STATIC_CACHE,
    STATIC_FILES,
    StaticFile,
    answer_head,
    render_page,
    static_file,
)

_SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}


@functools.cache
def docs_assets() -> dict[str, StaticFile]:
    """Swagger UI's files from the wheel, and our starter; read once, on first use."""
    shipped = resources.files("fastapi_offline") / "static"
    found = {"docs.js": STATIC_FILES["docs.js"]}
    for name, media_type in _SWAGGER_FILES.items():
        body = (shipped / name).read_bytes()
        found[name] = static_file(body, media_type)
    return found


def docs_router(*, path: str, openapi_url: str, title: str) -> APIRouter:
    """``GET path``: the docs page for ``openapi_url``; ``GET path/assets/NAME``: its files."""
    router = APIRouter(include_in_schema=False)

    def asset(name: str) -> str:
        return f"{path}/assets/{name}?v={docs_assets()[name].version}"

    @router.api_route(path, methods=["GET", "HEAD"])
    def docs_page(request: Request) -> Response:
        page = render_page("docs.html", title=title, openapi_url=openapi_url, asset=asset)
        return answer_head(request, page)

    @router.api_route(f"{path}/assets/{{name}}", methods=["GET", "HEAD"])
    def docs_asset(request: Request, name: str) -> Response:
        found = docs_assets().get(name)
        if found is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        headers = {"Cache-Control": STATIC_CACHE, "X-Content-Type-Options": "nosniff"}
        return answer_head(request, Response(found.body, media_type=found.media_type, headers=headers))

    return router
