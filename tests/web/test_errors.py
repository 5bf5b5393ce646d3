"""Bad input gets a 4xx JSON body naming the field, and nothing is half-written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse, Response
from tests.faults.tcp_proxy import TcpProxy
from tests.web.api_harness import ApiHarness, running_api

from steadylink.clock import FakeClock
from steadylink.errors import StoreError
from steadylink.links import schema
from steadylink.links.model import LinkPage
from steadylink.links.sql_store import SqlStore, open_store
from steadylink.settings import LinkSettings, Settings
from steadylink.web.errors import MAX_JSON_BYTES, install_error_handlers

pytestmark = pytest.mark.anyio
URL = "https://example.com/"



@pytest.fixture
async def api(settings: Settings, sqlite_store: SqlStore, clock: FakeClock) -> AsyncIterator[ApiHarness]:
    async with running_api(settings, sqlite_store, clock) as harness:
        await harness.client.post(
            "/links", json={"url": URL, "code": "taken"}, headers=harness.auth("editor")
        )
        yield harness


async def refused(api: ApiHarness, status: int, field: str | None, **request: Any) -> dict[str, Any]:
    """Send ``request``; check the status, the JSON body, the field, and that nothing was stored."""
    before = api.ctx.store.count_links()
    method = request.pop("method", "POST")
    path = request.pop("path", "/links")
    headers = {**api.auth("admin"), **request.pop("headers", {})}
    response = await api.client.request(method, path, headers=headers, **request)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["error"] and body["message"]
    assert body.get("field") == field, body
    assert "Traceback" not in response.text
    assert api.ctx.store.count_links() == before
    return body


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "url"),
        ({"url": ""}, "url"),
        ({"url": "   "}, "url"),
        ({"url": 5}, "url"),
        ({"url": ["https://example.com"]}, "url"),
        ({"url": "example.com/page"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "data:text/html,<script>alert(1)</script>"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "https://bank.example@evil.example/"}, "url"),
        ({"url": "https://exa mple.com/"}, "url"),
        ({"url": "http://127.0.0.1:8080/loop"}, "url"),
        ({"url": URL, "max_visits": "x"}, "max_visits"),
        ({"url": URL, "max_visits": True}, "max_visits"),
        ({"url": URL, "max_visits": 0}, "max_visits"),
        ({"url": URL, "max_visits": 10**30}, "max_visits"),
        ({"url": URL, "expires_at": "tomorrow"}, "expires_at"),
        ({"url": URL, "expires_at": 1900000000}, "expires_at"),
        ({"url": URL, "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"url": URL, "code": 12}, "code"),
        ({"url": URL, "password": 12}, "password"),
        ({"url": URL, "password": "x" * 300}, "password"),
        ({"url": URL, "max_visit": 3}, "max_visit"),
        ([URL], "body"),
        ("just a string", "body"),
    ],
)
async def test_bad_link_fields_are_named(api: ApiHarness, payload: object, field: str) -> None:
    await refused(api, 422, field, json=payload)


@pytest.mark.parametrize(
    "code",
    [
        "",
        "a b",
        "a\x01b",
        "a\x00",
        "tab\tcode",
        "café",
        "ｃｏｄｅ",
        "a\u200bb",
        "a/b",
        "..",
        "../x",
        "x" * 65,
        "api",
        "Healthz",
        "static",
    ],
)
async def test_bad_codes_are_422_naming_code(api: ApiHarness, code: str) -> None:
    await refused(api, 422, "code", json={"url": URL, "code": code})


@pytest.mark.parametrize("code", ["taken", "TAKEN", "Taken"])
async def test_a_taken_code_is_409(api: ApiHarness, code: str) -> None:
    body = await refused(api, 409, "code", json={"url": URL, "code": code})
    assert body["error"] == "conflict"


async def test_malformed_json_is_named_body(api: ApiHarness) -> None:
    for raw in (b'{"url": ', b"{'url': 'x'}", b"\xff\xfe", b""):
        await refused(api, 422, "body", content=raw, headers={"Content-Type": "application/json"})


async def test_a_form_body_is_not_json(api: ApiHarness) -> None:
    await refused(api, 422, "body", data={"url": URL})


async def test_a_ten_megabyte_body_is_413_from_its_length(api: ApiHarness) -> None:
    big = b'{"url": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    body = await refused(api, 413, "body", content=big, headers={"Content-Type": "application/json"})
    assert body["error"] == "too_large"


async def test_a_streamed_body_is_cut_at_the_limit(api: ApiHarness) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"url": "'
        for _ in range(10_000):
            sent += 16 * 1024
            yield b"a" * (16 * 1024)

    await refused(api, 413, "body", content=endless(), headers={"Content-Type": "application/json"})
    assert sent <= MAX_JSON_BYTES * 2  # stopped reading early, not after 160 MB


async def test_patch_cannot_null_the_url(api: ApiHarness) -> None:
    await refused(api, 422, "url", method="PATCH", path="/links/taken", json={"url": None})
    await refused(api, 422, "is_disabled", method="PATCH", path="/links/taken", json={"is_disabled": "yes"})
    await refused(api, 422, "url", method="PATCH", path="/links/taken", json={"url": "ftp://x.example/"})
    link = api.ctx.store.get_link("taken")
    assert link is not None and link.url == URL and not link.is_disabled


@pytest.mark.parametrize(
    "path",
    ["/links/a%2Fb", "/links/..%2F..%2Fetc", "/links/%00", "/links/%2e%2e", "/links/caf%C3%A9", "/keys/%00"],
)
async def test_path_tricks_are_404(api: ApiHarness, path: str) -> None:
    method = "DELETE" if path.startswith("/keys") else "GET"
    response = await api.client.request(method, path, headers=api.auth("admin"))
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == "application/json"


async def test_unknown_api_paths_and_methods_are_json(api: ApiHarness) -> None:
    missing = await api.client.get("/nothing-here", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = await api.client.put("/links", json={})
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"
    assert set(wrong.headers["allow"].split(", ")) >= {"GET", "POST"}


def small_uploads(settings: Settings) -> Settings:
    return settings.with_overrides(links=LinkSettings(upload_max_bytes=1000))


async def test_an_oversize_upload_is_413_and_leaves_no_file(
    settings: Settings, sqlite_store: SqlStore, clock: FakeClock
) -> None:
    async with running_api(small_uploads(settings), sqlite_store, clock) as api:
        body = await refused(api, 413, "file", path="/files", files={"file": ("big.bin", b"x" * 1001)})
        assert body["error"] == "too_large"
        assert not [p for p in api.ctx.files.root.rglob("*") if p.is_file()]


async def test_an_upload_declared_too_large_is_refused_before_reading(
    settings: Settings, sqlite_store: SqlStore, clock: FakeClock
) -> None:
    async with running_api(small_uploads(settings), sqlite_store, clock) as api:
        read = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal read
            read += 1
            yield b"--x\r\n"

        headers = {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": "999999999"}
        answer = await refused(api, 413, "file", path="/files", content=body(), headers=headers)
        assert answer["message"] == "The file is larger than the limit of 1 KB."  # as the form says
        assert read == 0


@pytest.mark.parametrize(
    ("form", "field", "status"),
    [
        ({"code": "api"}, "code", 422),
        ({"code": "a/b"}, "code", 422),
        ({"code": "taken"}, "code", 409),
        ({"max_visits": "0"}, "max_visits", 422),
        ({"expires_at": "2020-01-01T00:00:00"}, "expires_at", 422),
    ],
)
async def test_bad_upload_fields_store_nothing(
    api: ApiHarness, form: dict[str, str], field: str, status: int
) -> None:
    await refused(api, status, field, path="/files", files={"file": ("a.txt", b"hello")}, data=form)
    assert not [p for p in api.ctx.files.root.rglob("*") if p.is_file()]


async def test_an_empty_or_missing_upload_is_422(api: ApiHarness) -> None:
    await refused(api, 422, "file", path="/files", files={"file": ("a.txt", b"")})
    await refused(api, 422, "file", path="/files", data={"code": "nofile"}, files={"other": ("a.txt", b"x")})


class FailingStore:
    """A store whose listing fails: with a bug, or because the database is down."""

    def __init__(self, real: SqlStore, error: Exception) -> None:
        self.real = real
        self.error = error

    def list_links(self, **_: object) -> LinkPage:
        raise self.error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def failing(sqlite_store: SqlStore) -> Iterator[FailingStore]:
    yield FailingStore(sqlite_store, RuntimeError("boom at /secret/path.py"))


async def test_a_bug_is_a_json_500_without_a_trace(
    settings: Settings, failing: FailingStore, clock: FakeClock
) -> None:
    async with running_api(settings, failing, clock) as api:
        response = await api.client.get("/links", headers=api.auth("viewer"))
        assert response.status_code == 500
        assert response.json()["error"] == "internal"
        assert "boom" not in response.text and "Traceback" not in response.text
        # and the app keeps serving
        assert (await api.client.get("/whoami", headers=api.auth("viewer"))).status_code == 200


async def test_a_store_outage_is_503(settings: Settings, failing: FailingStore, clock: FakeClock) -> None:
    failing.error = StoreError("The links database is not answering.")
    async with running_api(settings, failing, clock) as api:
        response = await api.client.get("/links", headers=api.auth("viewer"))
        assert response.status_code == 503 and response.json()["error"] == "store"


async def test_browsers_may_get_html_outside_the_api_only() -> None:
    app = FastAPI()

    def page(request: Request, status: int, body: dict[str, object]) -> Response:
        return HTMLResponse(f"<h1>{status}</h1>", status_code=status)

    install_error_handlers(app, render_html=page)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        html = await client.get("/nope", headers={"Accept": "text/html"})
        assert html.status_code == 404 and html.text == "<h1>404</h1>"
        api = await client.get("/api/v1/nope", headers={"Accept": "text/html"})
        assert api.status_code == 404 and api.json()["error"] == "not_found"


# a real database that goes away ------------------------------------------------

_INTERNALS = ("INSERT ", "SELECT ", "[SQL", "parameters", "sqlalche.me", "psycopg", "OperationalError")


def _leaks(text: str, *, port: int, urls: list[str]) -> list[str]:
    found = [word for word in _INTERNALS if word in text]
    found += [f":{port}"] if f":{port}" in text or f"port {port}" in text else []
    return found + [url for url in urls if url in text]


async def test_postgresql_errors_reach_no_client(
    settings: Settings, postgres_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL cut behind a proxy mid-use: every answer is a fixed sentence and the
    request id; no SQL, parameters, host:port or another user's URL (they go to the log)."""
    url = sa.engine.make_url(postgres_url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the session's database: other tests' keys and links go
        conn.execute(sa.text(f"TRUNCATE {', '.join(t.name for t in schema.metadata.sorted_tables)}"))
    engine.dispose()
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        store = open_store(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
        try:
            async with running_api(settings, store, clock) as api:
                made = await api.client.post(
                    "/links", json={"url": "https://before.example/x"}, headers=api.auth("editor")
                )
                assert made.status_code == 201
                code = made.json()["code"]
                proxy.close()  # cut: pooled connections break, new ones are refused
                urls = [f"https://private-{i}.example/secret-{i}" for i in range(8)]
                users = ["editor", "editor2", "admin"]
                creates = [
                    api.client.post("/links", json={"url": u}, headers=api.auth(users[i % 3]))
                    for i, u in enumerate(urls)
                ]
                answers = list(await asyncio.gather(*creates))
                answers.append(await api.client.get("/links", headers=api.auth("viewer")))
                answers.append(await api.client.get(f"/links/{code}", headers=api.auth("viewer")))
                root = "http://testserver"
                answers.append(await api.client.get(f"{root}/s/{code}", headers={"Accept": "text/html"}))
                answers.append(await api.client.get(f"{root}/nocache1"))
                forms = []
                for code_field in ("", "mine"):  # the home form, with and without a custom code
                    form = {"url": urls[0], "code": code_field}
                    forms.append(await api.client.post(
                        f"{root}/", data=form, files={"file": ("", b"")}, headers={"Accept": "text/html"}
                    ))  # fmt: skip
                for page in forms:  # shown again as typed: its own URL, and no one else's
                    assert page.status_code == 503
                    assert StoreError.public_message in page.text
                    assert not _leaks(page.text, port=proxy.port, urls=urls[1:]), page.text
                for answer in answers:
                    assert answer.status_code == 503, answer.text
                    assert not _leaks(answer.text, port=proxy.port, urls=urls), answer.text
                    if answer.headers["content-type"].startswith("application/json"):
                        body = answer.json()
                        assert body["error"] == "store"
                        assert body["message"] == StoreError.public_message
                        assert body["request_id"] == answer.headers["x-request-id"]
        finally:
            store.close()
    # the details are the operators': in the log
    assert any(str(proxy.port) in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("request_args", "message"),
    [
        (
            {"data": {"url": URL}},
            "The body must be JSON sent as Content-Type: application/json, not application/x-www-form-urlencoded.",
        ),
        (
            {"content": b'{"url": "https://example.com/", "co', "headers": {"Content-Type": "application/json"}},
            "The body is not valid JSON: it is cut off or malformed at character 32.",
        ),
        (
            {"content": b"", "headers": {"Content-Type": "application/json"}},
            "The body is empty; send a JSON object of the fields (see /api/openapi.json).",
        ),
        (
            {"content": b"[1, 2]", "headers": {"Content-Type": "application/json"}},
            "The body must be a JSON object of the fields (see /api/openapi.json).",
        ),
    ],
)
async def test_a_body_that_is_no_json_object_gets_one_sentence(
    api: ApiHarness, request_args: dict[str, Any], message: str
) -> None:
    body = await refused(api, 422, "body", **request_args)
    assert body["message"] == message
    assert all(d["field"] == "body" for d in body["details"])  # not a character offset


async def test_an_oversize_upload_names_the_limit_as_the_form_does(api: ApiHarness) -> None:
    limit = api.ctx.settings.links.upload_max_bytes
    big = b"x" * (limit + 10)
    body = await refused(api, 413, "file", path="/files", files={"file": ("big.bin", big)})
    assert body["message"] == "The file is larger than the limit of 10.0 MB."
    body = await refused(api, 413, "body", content=b"{" + b" " * 70_000 + b"}",
                         headers={"Content-Type": "application/json"})  # fmt: skip
    assert body["message"] == "The request body is larger than 64 KB; send less."
