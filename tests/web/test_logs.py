"""JSON logs: a line per request with request and release ids; error frames."""

from __future__ import annotations

import contextlib
import errno
import io
import json

import httpx
import pytest
from tests.web.rsgi_client import rsgi_client

from steadylink.settings import Settings
from steadylink.web.app import build_context, create_app, run_lifespan
from steadylink.web.logs import innermost_app_frame, new_request_id

pytestmark = pytest.mark.anyio



async def _request_lines(
    settings: Settings, headers: dict[str, str]
) -> tuple[httpx.Response, list[dict[str, object]]]:
    log = io.StringIO()
    app = create_app(settings, ctx=build_context(settings), log_stream=log)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
    async with run_lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/healthz", headers=headers)
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    return response, [line for line in lines if line["event"] == "request"]


async def test_request_line_carries_request_and_release_ids(settings: Settings) -> None:
    settings = settings.with_overrides(release_id="r9")
    response, lines = await _request_lines(settings, {"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "abc-123" and line["release"] == "r9"
    assert (line["method"], line["route"], line["status"]) == ("GET", "/healthz", 200)
    assert line["client"] == "203.0.113.9"
    assert isinstance(line["duration_ms"], float)


async def test_a_request_id_is_made_when_none_is_given(settings: Settings) -> None:
    response, lines = await _request_lines(settings, {"X-Forwarded-For": "198.51.100.4, 10.0.0.1"})
    assert lines[0]["request_id"] == response.headers["x-request-id"]
    # a peer that is not the front door (loopback, unix socket) cannot name another client
    assert lines[0]["client"] == "203.0.113.9"


async def test_access_log_can_be_switched_off(settings: Settings) -> None:
    _response, lines = await _request_lines(settings.with_overrides(access_log=False), {})
    assert lines == []


def test_request_ids_are_unique() -> None:
    assert len({new_request_id() for _ in range(1000)}) == 1000


def test_innermost_app_frame_skips_library_frames() -> None:
    from steadylink.settings import load_settings

    try:
        load_settings(environ={"STEADYLINK_PORT": "not-a-number"})
    except Exception as exc:
        where = innermost_app_frame(exc)
    assert where.startswith("steadylink/settings.py:")


class _FullDisk(io.StringIO):
    """A log file on a disk that is full until ``full`` is cleared."""

    full = True

    def write(self, text: str) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(text)


@pytest.mark.parametrize("front", ["asgi", "rsgi"])
async def test_a_full_disk_under_the_log_never_changes_an_answer(settings: Settings, front: str) -> None:
    """The log refusing writes once turned every logged error into granian's empty 500."""
    log = _FullDisk()
    app = create_app(settings, ctx=build_context(settings), log_stream=log)

    def explode() -> None:
        raise ZeroDivisionError("boom")

    app.inner.add_api_route("/api/v1/explode", explode)  # type: ignore[attr-defined]
    if front == "asgi":
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client_of = httpx.AsyncClient(transport=transport, base_url="http://t")
        opened = contextlib.AsyncExitStack()
        await opened.enter_async_context(run_lifespan(app))
        client = await opened.enter_async_context(client_of)
    else:
        opened = contextlib.AsyncExitStack()
        client = await opened.enter_async_context(rsgi_client(app))
    async with opened:
        failed = await client.get("/api/v1/explode", headers={"X-Request-ID": "req-1"})
        assert failed.status_code == 500
        assert failed.json()["error"] == "internal" and failed.json()["request_id"] == "req-1"
        created = await client.post("/api/v1/links", json={"url": "https://example.com/a"})
        assert created.status_code == 201
        code = created.json()["code"]
        assert (await client.get(f"/{code}")).status_code == 302
        app.log.flush()  # type: ignore[attr-defined]
        log.full = False
        assert (await client.get("/healthz")).status_code == 200
        app.log.flush()  # type: ignore[attr-defined]
    lines = log.getvalue().splitlines()
    assert lines and "earlier writes to this log were lost: No space left on device" in lines[0]
    assert any(json.loads(line).get("route") == "/healthz" for line in lines[1:] if line.startswith("{"))
