"""Who may do what: anonymous, viewer, editor (own links only), deployer, admin; client IPs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.requests import Request
from tests.web.api_harness import ApiHarness, running_api

from steadylink.clock import FakeClock
from steadylink.links import service
from steadylink.links.service import KEY_CACHE_SECONDS
from steadylink.links.sql_store import SqlStore
from steadylink.settings import Settings
from steadylink.web.auth import client_ip

URL = "https://example.com/"
pytestmark = pytest.mark.anyio



@pytest.fixture
async def api(settings: Settings, sqlite_store: SqlStore, clock: FakeClock) -> AsyncIterator[ApiHarness]:
    async with running_api(settings, sqlite_store, clock) as harness:
        yield harness


async def make_link(api: ApiHarness, code: str, role: str | None) -> None:
    headers = api.auth(role) if role else {}
    response = await api.client.post("/links", json={"url": URL, "code": code}, headers=headers)
    assert response.status_code == 201, response.text


READS = [("GET", "/links"), ("GET", "/links/mine"), ("GET", "/whoami")]
CHANGES = [("PATCH", "/links/mine"), ("DELETE", "/links/mine")]
KEYS = [("GET", "/keys"), ("POST", "/keys"), ("DELETE", "/keys/abc123")]


async def call(api: ApiHarness, method: str, path: str, headers: dict[str, str]) -> int:
    body: dict[str, object] | None = {"is_disabled": True} if method == "PATCH" else None
    if path == "/keys" and method == "POST":
        body = {"name": "new", "role": "viewer"}
    response = await api.client.request(method, path, json=body, headers=headers)
    if response.status_code != 204:
        assert response.headers["content-type"] == "application/json", response.text
    return response.status_code


async def test_anonymous_may_create_and_nothing_else(api: ApiHarness) -> None:
    response = await api.client.post("/links", json={"url": URL, "code": "anon"})
    assert response.status_code == 201 and response.json()["owner"] is None
    await make_link(api, "mine", "editor")
    for method, path in READS + CHANGES + KEYS:
        response = await api.client.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == "unauthorized"


async def test_anonymous_create_can_be_switched_off(
    settings: Settings, sqlite_store: SqlStore, clock: FakeClock
) -> None:
    closed = settings.with_overrides(links=settings.links.__class__(anonymous_create=False))
    async with running_api(closed, sqlite_store, clock) as api:
        response = await api.client.post("/links", json={"url": URL})
        assert response.status_code == 401
        upload = await api.client.post("/files", files={"file": ("a.txt", b"x")})
        assert upload.status_code == 401
        assert sqlite_store.count_links() == 0


@pytest.mark.parametrize(
    "header", ["Bearer slk_nope", "Bearer ", "Basic dXNlcjpwdw==", "Bearer " + "x" * 5000]
)
async def test_a_bad_key_is_401_even_where_anonymous_is_allowed(api: ApiHarness, header: str) -> None:
    response = await api.client.post("/links", json={"url": URL}, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["field"] == "authorization"
    assert api.ctx.store.count_links() == 0


async def test_a_revoked_key_is_401(api: ApiHarness) -> None:
    await api.client.delete(f"/keys/{api.key_ids['viewer']}", headers=api.auth("admin"))
    response = await api.client.get("/links", headers=api.auth("viewer"))
    assert response.status_code == 401


async def test_viewer_reads_but_changes_nothing(api: ApiHarness) -> None:
    await make_link(api, "mine", "editor")
    viewer = api.auth("viewer")
    for method, path in READS:
        assert await call(api, method, path, viewer) == 200, (method, path)
    for method, path in CHANGES + KEYS:
        assert await call(api, method, path, viewer) == 403, (method, path)
    response = await api.client.post("/links", json={"url": URL}, headers=viewer)
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    upload = await api.client.post("/files", files={"file": ("a.txt", b"x")}, headers=viewer)
    assert upload.status_code == 403
    assert api.ctx.store.count_links() == 1


@pytest.mark.parametrize("role", ["editor", "deployer"])
async def test_editors_change_only_their_own_links(api: ApiHarness, role: str) -> None:
    await make_link(api, "mine", role)
    await make_link(api, "theirs", "editor2")
    await make_link(api, "anon", None)
    headers = api.auth(role)
    assert await call(api, "GET", "/links/theirs", headers) == 200  # everyone reads
    for code in ("theirs", "anon"):
        assert await call(api, "PATCH", f"/links/{code}", headers) == 403
        assert await call(api, "DELETE", f"/links/{code}", headers) == 403
    assert await call(api, "PATCH", "/links/mine", headers) == 200
    assert await call(api, "DELETE", "/links/mine", headers) == 204
    for method, path in KEYS:
        assert await call(api, method, path, headers) == 403
    assert api.ctx.store.get_link("theirs") is not None


async def test_admin_changes_anything_and_manages_keys(api: ApiHarness) -> None:
    await make_link(api, "mine", "editor")
    await make_link(api, "anon", None)
    admin = api.auth("admin")
    assert await call(api, "PATCH", "/links/mine", admin) == 200
    assert await call(api, "DELETE", "/links/anon", admin) == 204
    assert await call(api, "GET", "/keys", admin) == 200
    assert await call(api, "POST", "/keys", admin) == 201


def request_from(peer: tuple[str, int] | None, forwarded: str | None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "client": peer, "headers": headers, "method": "GET", "path": "/"})


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        (("203.0.113.9", 5000), None, "203.0.113.9"),
        (("203.0.113.9", 5000), "198.51.100.1", "203.0.113.9"),  # not our proxy: ignored
        (("127.0.0.1", 5000), "198.51.100.1, 10.0.0.1", "198.51.100.1"),
        (("::1", 5000), "2001:db8::1", "2001:db8::1"),
        (None, "198.51.100.7", "198.51.100.7"),  # unix socket (HAProxy)
        (("127.0.0.1", 5000), "not-an-ip", "127.0.0.1"),
        (("127.0.0.1", 5000), None, "127.0.0.1"),
    ],
)
def test_client_ip_trusts_forwarded_for_only_from_the_local_proxy(
    peer: tuple[str, int] | None, forwarded: str | None, expected: str
) -> None:
    assert client_ip(request_from(peer, forwarded)) == expected


async def test_anonymous_creation_is_rate_limited_per_client(
    settings: Settings, sqlite_store: SqlStore, clock: FakeClock
) -> None:
    limited = settings.with_overrides(limits=settings.limits.__class__(create_per_minute=2))
    async with running_api(limited, sqlite_store, clock) as api:

        async def post(ip: str) -> int:
            response = await api.client.post("/links", json={"url": URL}, headers={"X-Forwarded-For": ip})
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["error"] == "rate_limited"
            return response.status_code

        assert [await post("198.51.100.1") for _ in range(3)] == [201, 201, 429]
        assert await post("198.51.100.2") == 201
        count = sqlite_store.count_links()
        clock.advance(120)
        assert await post("198.51.100.1") == 201
        assert sqlite_store.count_links() == count + 1
        # keys are not limited: the allowance is for anonymous web-form use
        for _ in range(3):
            response = await api.client.post("/links", json={"url": URL}, headers=api.auth("editor"))
            assert response.status_code == 201


async def test_a_key_revoked_through_this_worker_is_refused_at_once(api: ApiHarness) -> None:
    viewer = api.auth("viewer")
    assert (await api.client.get("/whoami", headers=viewer)).status_code == 200  # now cached
    await api.client.delete(f"/keys/{api.key_ids['viewer']}", headers=api.auth("admin"))
    assert (await api.client.get("/whoami", headers=viewer)).status_code == 401


async def test_a_key_revoked_elsewhere_is_refused_within_a_second(api: ApiHarness) -> None:
    editor = api.auth("editor")
    assert (await api.client.get("/whoami", headers=editor)).status_code == 200  # now cached
    # as `steadylink keys revoke` or another worker would: straight in the store
    service.revoke_key(store=api.ctx.store, clock=api.clock, key_id=api.key_ids["editor"])
    api.clock.advance(KEY_CACHE_SECONDS)
    assert (await api.client.get("/whoami", headers=editor)).status_code == 401
