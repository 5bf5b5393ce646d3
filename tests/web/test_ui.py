"""The web UI in process: the home form, the link page, visits' HTML side."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from steadylink.clock import FakeClock
from steadylink.errors import RateLimited
from steadylink.links.spool import VisitSpool
from steadylink.links.sql_store import SqlStore
from steadylink.settings import Settings
from steadylink.web.app import build_context, create_app
from steadylink.web.context import AppContext
from steadylink.web.pages import HTML_CSP

BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
BASE = "http://127.0.0.1:8080"

pytestmark = pytest.mark.anyio



@pytest.fixture
def ctx(settings: Settings, clock: FakeClock, sqlite_store: SqlStore) -> Iterator[AppContext]:
    yield build_context(settings, clock=clock, store=sqlite_store)


@pytest.fixture
async def client(ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ctx.settings, ctx=ctx)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


async def create(
    client: httpx.AsyncClient, files: dict[str, tuple[str, bytes]] | None = None, **fields: str
) -> httpx.Response:
    # Browsers post the home form as multipart even without a file.
    parts = files or {"file": ("", b"")}
    return await client.post("/", data=fields, files=parts, headers=BROWSER)


def assert_html_headers(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == HTML_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


async def test_home_page_has_the_form_and_strict_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/", headers=BROWSER)
    assert response.status_code == 200
    assert_html_headers(response)
    html = response.text
    assert '<form method="post" action="/" enctype="multipart/form-data"' in html
    assert '<label for="url">' in html and '<label for="code">' in html
    assert "<script>" not in html and "style=" not in html  # nothing inline under the CSP


async def test_static_files_are_cached_for_long(client: httpx.AsyncClient) -> None:
    html = (await client.get("/")).text
    css = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', html)
    assert css is not None
    response = await client.get(css.group(1))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "immutable" in response.headers["cache-control"]
    assert (await client.get("/static/../settings.py")).status_code == 404


async def test_form_creates_a_link_with_a_custom_code(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    response = await create(client, url="https://example.com/spring", code="spring-sale")
    assert response.status_code == 303
    assert response.headers["location"] == "/s/spring-sale?new=1"
    link = ctx.store.get_link("spring-sale")
    assert link is not None and link.url == "https://example.com/spring"


async def test_result_page_shows_short_url_copy_button_and_qr(
    client: httpx.AsyncClient,
) -> None:
    await create(client, url="https://example.com/", code="promo")
    response = await client.get("/s/promo?new=1", headers=BROWSER)
    assert response.status_code == 200
    assert_html_headers(response)
    html = response.text
    assert f'href="{BASE}/promo"' in html
    assert f'data-copy="{BASE}/promo"' in html
    assert '<svg viewBox="' in html and 'class="qr"' in html
    assert f"<title>QR code for {BASE}/promo</title>" in html
    assert 'data-remember="1"' in html
    assert 'id="total-visits">0<' in html


async def test_generated_code_when_none_is_given(client: httpx.AsyncClient) -> None:
    response = await create(client, url="https://example.com/")
    assert response.status_code == 303
    assert re.fullmatch(r"/s/[A-Za-z0-9]{7}\?new=1", response.headers["location"])


@pytest.mark.parametrize(
    ("fields", "field", "status"),
    [
        ({"url": "javascript:alert(1)"}, "url", 422),
        ({"url": "example.com/no-scheme"}, "url", 422),
        ({"url": ""}, "url", 422),
        ({"url": "https://example.com/", "code": "a/../b"}, "code", 422),
        ({"url": "https://example.com/", "code": "api"}, "code", 422),
        ({"url": "https://example.com/", "max_visits": "-3"}, "max_visits", 422),
        ({"url": "https://example.com/", "expires_in": "forever"}, "expires_in", 422),
    ],
)
async def test_bad_input_re_renders_the_form_next_to_the_field(
    client: httpx.AsyncClient, fields: dict[str, str], field: str, status: int
) -> None:
    response = await create(client, **fields)
    assert response.status_code == status
    assert_html_headers(response)
    html = response.text
    assert f'<p class="field-error" id="{field}-error" role="alert">' in html
    assert f'aria-describedby="{field}-error"' in html
    if fields.get("url"):
        typed = fields["url"].replace("&", "&amp;")
        assert f'value="{typed}"' in html


async def test_taken_code_is_a_409_and_keeps_what_was_typed(client: httpx.AsyncClient) -> None:
    await create(client, url="https://example.com/one", code="taken")
    response = await create(client, url="https://example.com/two", code="Taken", password="s3")
    assert response.status_code == 409
    assert 'id="code-error"' in response.text
    assert 'value="https://example.com/two"' in response.text
    assert 'value="Taken"' in response.text
    assert "s3" not in response.text  # a password is never echoed back


async def test_typed_text_is_escaped(client: httpx.AsyncClient) -> None:
    response = await create(client, url='https://x"><script>alert(1)</script>', code="x y")
    assert response.status_code == 422
    assert "<script>alert" not in response.text


async def test_anonymous_create_turned_off(ctx: AppContext) -> None:
    from dataclasses import replace

    ctx.settings = replace(
        ctx.settings, links=replace(ctx.settings.links, anonymous_create=False)
    )
    app = create_app(ctx.settings, ctx=ctx)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        response = await create(http, url="https://example.com/")
    assert response.status_code == 403
    assert "turned off" in response.text
    assert ctx.store.count_links() == 0


async def test_creation_is_rate_limited(client: httpx.AsyncClient, ctx: AppContext) -> None:
    statuses = [
        (await create(client, url=f"https://example.com/{i}")).status_code
        for i in range(ctx.settings.limits.create_per_minute + 2)
    ]
    assert statuses[0] == 303
    assert statuses[-1] == 429


# files ------------------------------------------------------------------------


async def test_file_is_served_as_an_attachment_with_exact_bytes(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    body = b"<html><script>alert(1)</script></html>\x00\xff"
    response = await create(
        client, files={"file": ("../../etc/évil\r\n.html", body)}, kind="file", code="doc"
    )
    assert response.status_code == 303
    link = ctx.store.get_link("doc")
    assert link is not None and link.file is not None
    assert "/" not in link.file.name and ".." not in link.file.name
    download = await client.get("/doc", headers=BROWSER)
    assert download.status_code == 200
    assert download.content == body
    headers = download.headers
    assert headers["content-type"] == "application/octet-stream"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "sandbox; default-src 'none'"
    disposition = headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" in disposition
    assert "/" not in disposition.split("filename*=UTF-8''")[1]
    assert "\r" not in disposition and "\n" not in disposition
    head = await client.head("/doc")
    assert head.status_code == 200 and head.content == b""


async def test_oversize_upload_is_413_on_the_form(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    too_big = b"x" * (ctx.settings.links.upload_max_bytes + 1)
    response = await create(client, files={"file": ("big.bin", too_big)}, kind="file")
    assert response.status_code == 413
    assert ctx.store.count_links() == 0


async def test_file_kind_without_a_file_names_the_field(client: httpx.AsyncClient) -> None:
    response = await create(client, kind="file")
    assert response.status_code == 422
    assert 'id="file-error"' in response.text


# passwords ----------------------------------------------------------------------


async def test_password_flow(client: httpx.AsyncClient) -> None:
    await create(client, url="https://example.com/secret", code="vault", password="open sesame")
    page = await client.get("/vault", headers=BROWSER)
    assert page.status_code == 200
    assert_html_headers(page)
    assert '<form method="post" action="/vault">' in page.text
    wrong = await client.post("/vault", data={"password": "nope"}, headers=BROWSER)
    assert wrong.status_code == 403
    assert 'id="password-error"' in wrong.text
    # A browser gets a page that refreshes to the target: a 303 there would be
    # blocked by the CSP's form-action 'self' (Chromium stays on the form).
    right = await client.post("/vault", data={"password": "open sesame"}, headers=BROWSER)
    assert right.status_code == 200
    assert_html_headers(right)
    assert '<meta http-equiv="refresh" content="0; url=https://example.com/secret">' in right.text
    assert 'href="https://example.com/secret"' in right.text
    # Other clients (curl -L) get the 303.
    plain = await client.post("/vault", data={"password": "open sesame"})
    assert plain.status_code == 303
    assert plain.headers["location"] == "https://example.com/secret"


async def test_a_refresh_page_escapes_the_target(client: httpx.AsyncClient) -> None:
    await create(client, url='https://example.com/a?x="><script>alert(1)</script>&y=1', code="odd", password="p")
    right = await client.post("/odd", data={"password": "p"}, headers=BROWSER)
    assert "<script>alert" not in right.text and "&amp;y=1" in right.text


async def test_a_password_links_target_is_hidden_on_its_page(client: httpx.AsyncClient) -> None:
    await create(client, url="https://private.example/plan", code="hush", password="pw")
    for path in ("/s/hush", "/s/hush?new=1"):
        page = await client.get(path, headers=BROWSER)
        assert page.status_code == 200
        assert "private.example" not in page.text
        assert 'data-target=""' in page.text
    wrong = await client.post("/s/hush", data={"password": "no"}, headers=BROWSER)
    assert "private.example" not in wrong.text
    right = await client.post("/s/hush", data={"password": "pw"}, headers=BROWSER)
    assert "https://private.example/plan" in right.text
    assert "private.example" not in (await client.get("/hush", headers=BROWSER)).text


async def test_password_link_stats_need_the_password(client: httpx.AsyncClient) -> None:
    await create(client, url="https://example.com/", code="locked", password="pw")
    page = await client.get("/s/locked", headers=BROWSER)
    assert page.status_code == 200
    assert 'id="total-visits"' not in page.text
    assert '<svg viewBox="' in page.text  # the short URL and QR are not secret
    wrong = await client.post("/s/locked", data={"password": "no"})
    assert wrong.status_code == 403 and 'id="total-visits"' not in wrong.text
    right = await client.post("/s/locked", data={"password": "pw"})
    assert right.status_code == 200 and 'id="total-visits"' in right.text


# visits and errors ------------------------------------------------------------------


async def test_max_visits_is_exact_then_410(client: httpx.AsyncClient) -> None:
    await create(client, url="https://example.com/", code="once", max_visits="1")
    first = await client.get("/once")
    assert first.status_code == 302
    second = await client.get("/once", headers=BROWSER)
    assert second.status_code == 410
    assert "visit limit" in second.text
    assert_html_headers(second)


async def test_unknown_code_is_a_friendly_404_for_browsers_and_json_for_clients(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/nothing-here", headers=BROWSER)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert_html_headers(page)
    assert "This link does not exist" in page.text
    data = await client.get("/nothing-here", headers={"accept": "application/json"})
    assert data.status_code == 404
    assert data.json()["error"] == "not_found"
    assert data.json()["message"]


async def test_expired_link_is_410(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await create(client, url="https://example.com/", code="soon", expires_in="1h")
    clock.advance(3601)
    page = await client.get("/soon", headers=BROWSER)
    assert page.status_code == 410
    assert "expired" in page.text
    data = await client.get("/soon")
    assert data.status_code == 410 and data.json()["error"] == "gone"


async def test_visits_show_on_the_stats_page(client: httpx.AsyncClient, ctx: AppContext) -> None:
    await create(client, url="https://example.com/", code="counted")
    for _ in range(3):
        await client.get(
            "/counted", headers={"referer": "https://news.example/x", "user-agent": "curl/8.0"}
        )
    ctx.clicks.flush()
    VisitSpool(ctx.settings.visits_dir).fold(ctx.store, ctx.clock.now())
    html = (await client.get("/s/counted", headers=BROWSER)).text
    assert 'id="total-visits">3<' in html
    assert "news.example" in html
    assert '<rect class="bar"' in html


async def test_stats_page_of_unknown_code_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/s/nope", headers=BROWSER)
    assert response.status_code == 404
    assert_html_headers(response)


def test_templates_have_no_inline_scripts_or_styles() -> None:
    root = Path(__file__).parents[2] / "src" / "steadylink" / "web" / "templates"
    for template in root.glob("*.html"):
        text = template.read_text()
        assert "<style" not in text and " style=" not in text, template.name
        assert re.search(r"<script(?![^>]*\bsrc=)", text) is None, template.name
        assert " on" + "click=" not in text, template.name


async def test_head_answers_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    await create(client, url="https://example.com/", code="headed")
    css = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', (await client.get("/")).text)
    assert css is not None
    for path in ("/", "/s/headed", css.group(1)):
        got = await client.get(path, headers=BROWSER)
        head = await client.head(path, headers=BROWSER)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-length"] == got.headers["content-length"]
        assert head.headers["content-type"] == got.headers["content-type"]


async def test_the_upload_limit_reads_as_the_form_says_it(client: httpx.AsyncClient, ctx: AppContext) -> None:
    home = (await client.get("/", headers=BROWSER)).text
    assert "up to 10.0 MB" in home
    big = b"x" * (ctx.settings.links.upload_max_bytes + 1)
    refused = await create(client, files={"file": ("big.bin", big)}, kind="file")
    assert refused.status_code == 413
    assert "larger than the limit of 10.0 MB." in refused.text


async def test_password_guesses_past_the_links_limit_get_a_429_without_a_check(
    settings: Settings, clock: FakeClock, sqlite_store: SqlStore
) -> None:
    """The limit is per link and shared: new client addresses do not reset it."""
    limits = dataclasses.replace(settings.limits, password_attempts_per_minute=3, create_per_minute=0)
    settings = dataclasses.replace(settings, limits=limits)
    ctx = build_context(settings, clock=clock, store=sqlite_store)
    app = create_app(settings, ctx=ctx)
    statuses = []
    await_create = True
    for i in range(5):
        # every guess from another address, as through the front door with X-Forwarded-For
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 4000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            if await_create:
                await create(http, url="https://example.com/", code="guarded", password="right")
                await_create = False
            headers = {**BROWSER, "x-forwarded-for": f"198.51.100.{i}"}
            answer = await http.post("/guarded", data={"password": f"guess{i}"}, headers=headers)
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert int(answer.headers["retry-after"]) >= 1
    assert statuses == [403, 403, 403, 429, 429]
    # another worker of the host (its own context) sees the same count: the file is shared
    other = build_context(settings, clock=clock, store=sqlite_store)
    with pytest.raises(RateLimited):
        await other.passwords.check("guarded", "unused", "guess")
