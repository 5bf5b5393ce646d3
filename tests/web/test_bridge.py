"""The RSGI bridge: granian's request shapes turned into ASGI for the FastAPI app."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from tests.web.rsgi_client import Headers, rsgi_client

from steadylink.clock import FakeClock
from steadylink.settings import Settings
from steadylink.web.app import build_context, create_app
from steadylink.web.bridge import asgi_scope

pytestmark = pytest.mark.anyio


def test_the_asgi_scope_carries_what_starlette_reads() -> None:
    scope = SimpleNamespace(
        http_version="1.1", method="POST", scheme="http", path="/a b", query_string="q=%20x",
        headers=Headers([("Host", "x"), ("X-Dup", "1"), ("X-Dup", "2")]),
        client="[::1]:5000", server="/run/slot0.sock",
    )  # fmt: skip
    converted = asgi_scope(scope)
    assert converted["path"] == "/a b" and converted["query_string"] == b"q=%20x"
    assert converted["headers"] == [(b"host", b"x"), (b"x-dup", b"1"), (b"x-dup", b"2")]
    assert converted["client"] == ("::1", 5000)
    assert converted["server"] == ("/run/slot0.sock", None)
    assert asgi_scope(SimpleNamespace(**{**vars(scope), "client": ""}))["client"] is None


async def test_api_uploads_and_downloads_go_through_the_bridge(settings: Settings, clock: FakeClock) -> None:
    ctx = build_context(settings, clock=clock)
    app = create_app(settings, ctx=ctx, log_stream=io.StringIO())
    async with rsgi_client(app) as client:
        created = await client.post("/api/v1/links", json={"url": "https://example.com/x", "code": "via-rsgi"})
        assert created.status_code == 201 and created.json()["code"] == "via-rsgi"
        payload = bytes(range(256)) * 1000  # several body chunks
        uploaded = await client.post("/api/v1/files", files={"file": ("data.bin", payload)})
        assert uploaded.status_code == 201, uploaded.text
        download = await client.get(f"/{uploaded.json()['code']}")
        assert download.status_code == 200 and download.content == payload
        assert download.headers["x-content-type-options"] == "nosniff"
        too_big = await client.post(
            "/api/v1/files", files={"file": ("big.bin", b"x" * (settings.links.upload_max_bytes + 1))}
        )
        assert too_big.status_code == 413 and too_big.json()["error"] == "too_large"
        bad = await client.post("/api/v1/links", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code in (400, 422) and "x-request-id" in bad.headers
        assert (await client.get("/api/openapi.json")).json()["info"]["title"] == "steadylink"
