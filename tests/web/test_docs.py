"""/api/docs and /ops/docs: Swagger UI from the package, no CDN, no inline script, the pages' CSP."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from steadylink.links.sql_store import SqlStore
from steadylink.ops.api import create_ops_app
from steadylink.release.guard import Guard
from steadylink.settings import Settings
from steadylink.web.app import build_context, create_app
from steadylink.web.pages import HTML_CSP

pytestmark = pytest.mark.anyio


def check_docs_page(page: httpx.Response, get: object, openapi_url: str) -> None:
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == HTML_CSP
    html = page.text
    assert "cdn" not in html.lower() and "https://" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script"
    assert f'data-openapi-url="{openapi_url}"' in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(sources) == 3 and all(s.startswith("/") for s in sources)
    for source in sources:
        asset = get(source)  # type: ignore[operator]
        assert asset.status_code == 200 and len(asset.content) > 100, source
        assert asset.headers["x-content-type-options"] == "nosniff"


async def test_the_api_docs_come_from_the_package(settings: Settings) -> None:
    app = create_app(settings, ctx=build_context(settings), log_stream=io.StringIO())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        page = await client.get("/api/docs")
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assets = {s: await client.get(s) for s in sources}
    check_docs_page(page, assets.__getitem__, "/api/openapi.json")


def test_the_ops_docs_come_from_the_package(sqlite_store: SqlStore, tmp_path: Path) -> None:
    guard = Guard(Settings(data_dir=tmp_path / "data", database=sqlite_store.url))
    with TestClient(create_ops_app(guard, sqlite_store, source_dir=None)) as client:
        check_docs_page(client.get("/ops/docs"), client.get, "/ops/openapi.json")
