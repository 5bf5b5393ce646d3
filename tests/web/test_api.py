"""The /api/v1 routes on the real app and a real store (SQLite; PostgreSQL where marked)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
from tests.web.api_harness import ApiHarness, running_api

from steadylink.clock import FakeClock
from steadylink.links.sql_store import SqlStore
from steadylink.settings import Settings

URL = "https://example.com/page"



@pytest.fixture
async def api(settings: Settings, sqlite_store: SqlStore, clock: FakeClock) -> AsyncIterator[ApiHarness]:
    async with running_api(settings, sqlite_store, clock) as harness:
        yield harness


pytestmark = pytest.mark.anyio


async def create(api: ApiHarness, role: str = "editor", **fields: object) -> dict[str, object]:
    response = await api.client.post("/links", json={"url": URL, **fields}, headers=api.auth(role))
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_create_returns_the_link_with_location(api: ApiHarness) -> None:
    response = await api.client.post(
        "/links",
        json={"url": URL, "code": "docs-page", "max_visits": 3, "password": "pw"},
        headers=api.auth("editor"),
    )
    assert response.status_code == 201
    assert response.headers["location"] == "/api/v1/links/docs-page"
    body = response.json()
    assert body["short_url"] == "http://127.0.0.1:8080/docs-page"
    assert body["url"] == URL
    assert body["kind"] == "url"
    assert body["file"] is None
    assert body["max_visits"] == 3
    assert body["visits"] == 0
    assert body["has_password"] is True
    assert body["owner"] == api.key_ids["editor"]
    assert "password_hash" not in body and "password" not in body


async def test_create_takes_naive_expiry_as_utc(api: ApiHarness) -> None:
    body = await create(api, expires_at="2026-02-01T12:00:00")
    assert body["expires_at"] == "2026-02-01T12:00:00Z"
    body = await create(api, expires_at="2026-02-01T12:00:00+02:00")
    assert body["expires_at"] == "2026-02-01T10:00:00Z"


async def test_generated_codes_have_the_configured_length(api: ApiHarness) -> None:
    body = await create(api)
    assert isinstance(body["code"], str) and len(body["code"]) == 7


async def test_list_paginates_newest_first(api: ApiHarness) -> None:
    for i in range(5):
        await create(api, code=f"page-{i}")
        api.clock.advance(1)
    first = (await api.client.get("/links?limit=2", headers=api.auth("viewer"))).json()
    assert [item["code"] for item in first["items"]] == ["page-4", "page-3"]
    assert (first["total"], first["limit"], first["offset"], first["next_offset"]) == (5, 2, 0, 2)
    last = (await api.client.get("/links?limit=2&offset=4", headers=api.auth("viewer"))).json()
    assert [item["code"] for item in last["items"]] == ["page-0"]
    assert last["next_offset"] is None


async def test_list_filters_by_text_and_dates(api: ApiHarness) -> None:
    await create(api, code="alpha", url="https://one.example/")
    api.clock.advance(86400)  # 2026-01-02
    await create(api, code="beta", url="https://two.example/")
    viewer = api.auth("viewer")

    async def codes(query: str) -> list[str]:
        response = await api.client.get(f"/links?{query}", headers=viewer)
        assert response.status_code == 200, response.text
        return [item["code"] for item in response.json()["items"]]

    assert await codes("q=two.exa") == ["beta"]
    assert await codes("q=ALP") == ["alpha"]
    assert await codes("created_from=2026-01-02") == ["beta"]
    assert await codes("created_to=2026-01-01") == ["alpha"]  # the whole day counts
    assert await codes("created_from=2026-01-01T12:00:00Z&created_to=2026-01-03") == ["beta"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "offset=-1",
        "created_from=yesterday",
        "created_to=0.5",
        "created_from=1700000000",
    ],
)
async def test_list_rejects_bad_paging_and_dates(api: ApiHarness, query: str) -> None:
    response = await api.client.get(f"/links?{query}", headers=api.auth("viewer"))
    assert response.status_code == 422
    assert response.json()["field"] == query.split("=")[0]


async def test_show_has_stats(api: ApiHarness) -> None:
    await create(api, code="counted")
    response = await api.client.get("/links/counted", headers=api.auth("viewer"))
    assert response.status_code == 200
    stats = response.json()["stats"]
    assert stats == {
        "total": 0,
        "per_day": {},
        "referrers": {},
        "agents": {},
        "bots": 0,
        "humans": 0,
    }


async def test_show_unknown_is_404(api: ApiHarness) -> None:
    response = await api.client.get("/links/nothing", headers=api.auth("viewer"))
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "message": "No link with code 'nothing'.",
        "field": "code",
    }


async def test_patch_changes_only_the_fields_sent(api: ApiHarness) -> None:
    await create(api, code="change-me", max_visits=5, password="secret")
    api.clock.advance(10)
    response = await api.client.patch(
        "/links/change-me",
        json={"url": "https://other.example/x", "is_disabled": True},
        headers=api.auth("editor"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["url"] == "https://other.example/x"
    assert body["is_disabled"] is True
    assert body["max_visits"] == 5 and body["has_password"] is True
    assert body["updated_at"] == "2026-01-01T00:00:10Z"


async def test_patch_null_clears(api: ApiHarness) -> None:
    await create(api, code="clear-me", max_visits=5, password="x", expires_at="2027-01-01T00:00:00Z")
    response = await api.client.patch(
        "/links/clear-me",
        json={"max_visits": None, "expires_at": None, "password": ""},
        headers=api.auth("editor"),
    )
    body = response.json()
    assert (body["max_visits"], body["expires_at"], body["has_password"]) == (None, None, False)


async def test_patch_and_delete_invalidate_the_cache(api: ApiHarness) -> None:
    await create(api, code="cached")
    assert api.ctx.cache.lookup("cached") is not None
    await api.client.patch("/links/cached", json={"is_disabled": True}, headers=api.auth("editor"))
    cached = api.ctx.cache.lookup("cached")
    assert cached is not None and cached.is_disabled
    response = await api.client.delete("/links/cached", headers=api.auth("editor"))
    assert response.status_code == 204 and response.content == b""
    assert api.ctx.cache.lookup("cached") is None
    assert (await api.client.get("/links/cached", headers=api.auth("viewer"))).status_code == 404


async def test_upload_creates_a_file_link(api: ApiHarness) -> None:
    response = await api.client.post(
        "/files",
        files={"file": ("report.pdf", b"%PDF-1.4 hello", "application/pdf")},
        data={"code": "report", "max_visits": "2"},
        headers=api.auth("editor"),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "file" and body["url"] is None
    assert body["file"] == {"name": "report.pdf", "size": 14, "content_type": "application/pdf"}
    assert body["max_visits"] == 2
    assert response.headers["location"] == "/api/v1/links/report"
    link = api.ctx.store.get_link("report")
    assert link is not None and link.file is not None
    assert api.ctx.files.path_of(link.file.sha256).read_bytes() == b"%PDF-1.4 hello"


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("\x00evil\n.sh", "_00evil_0A.sh"),
        ("..", "file"),
    ],
)
async def test_upload_file_names_lose_their_paths(api: ApiHarness, name: str, stored: str) -> None:
    response = await api.client.post("/files", files={"file": (name, b"data")}, headers=api.auth("editor"))
    assert response.status_code == 201, response.text
    assert response.json()["file"]["name"] == stored
    written = [p for p in api.ctx.files.root.rglob("*") if p.is_file()]
    assert [p.name for p in written] == [hashlib.sha256(b"data").hexdigest()]


async def test_keys_lifecycle(api: ApiHarness) -> None:
    admin = api.auth("admin")
    response = await api.client.post("/keys", json={"name": "ci bot", "role": "viewer"}, headers=admin)
    assert response.status_code == 201, response.text
    issued = response.json()
    assert issued["secret"].startswith("slk_") and issued["role"] == "viewer"
    listed = (await api.client.get("/keys", headers=admin)).json()
    assert issued["id"] in [k["id"] for k in listed]
    assert all("secret" not in k for k in listed)
    fresh = {"Authorization": f"Bearer {issued['secret']}"}
    assert (await api.client.get("/whoami", headers=fresh)).json()["key"]["name"] == "ci bot"
    assert (await api.client.delete(f"/keys/{issued['id']}", headers=admin)).status_code == 204
    assert (await api.client.get("/whoami", headers=fresh)).status_code == 401
    assert (await api.client.delete(f"/keys/{issued['id']}", headers=admin)).status_code == 404


async def test_key_create_rejects_unknown_roles(api: ApiHarness) -> None:
    response = await api.client.post("/keys", json={"name": "x", "role": "root"}, headers=api.auth("admin"))
    assert response.status_code == 422 and response.json()["field"] == "role"


async def test_whoami(api: ApiHarness) -> None:
    body = (await api.client.get("/whoami", headers=api.auth("editor"))).json()
    assert body["role"] == "editor"
    assert body["key"]["id"] == api.key_ids["editor"]
    assert body["can"] == ["read", "create", "change_own"]
    assert body["client_ip"] == "127.0.0.1"


async def _create_concurrently(api: ApiHarness, n: int) -> list[str]:
    async def one(i: int) -> str:
        response = await api.client.post(
            "/links", json={"url": f"https://example.com/{i}"}, headers=api.auth("editor")
        )
        assert response.status_code == 201, response.text
        code: str = response.json()["code"]
        return code

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def test_fifty_concurrent_creates_get_distinct_codes(
    settings: Settings, store: SqlStore, clock: FakeClock
) -> None:
    async with running_api(settings, store, clock) as api:
        codes = await _create_concurrently(api, 50)
        assert len(set(codes)) == 50
        assert store.count_links() == 50


async def test_a_password_links_target_is_its_owners_and_the_admins(api: ApiHarness) -> None:
    secret = "https://private.example/plans"
    await create(api, url=secret, code="hush", password="pw")
    await create(api, code="plain")
    readers = {"editor": True, "admin": True, "viewer": False, "editor2": False, "deployer": False}
    for role, sees in readers.items():
        shown = (await api.client.get("/links/hush", headers=api.auth(role))).json()
        assert (shown["url"] == secret) is sees, role
        assert shown["url"] is None or sees
        listed = (await api.client.get("/links", headers=api.auth(role))).json()
        urls = {item["code"]: item["url"] for item in listed["items"]}
        assert (urls["hush"] == secret) is sees and urls["plain"] == URL
        # nor can a search by URL tell them where it points
        found = (await api.client.get("/links?q=private.example", headers=api.auth(role))).json()
        assert found["total"] == (1 if sees else 0), role
        assert (await api.client.get("/links?q=hush", headers=api.auth(role))).json()["total"] == 1


async def test_a_second_key_of_the_same_name_is_refused(api: ApiHarness) -> None:
    body = {"name": "ci", "role": "editor"}
    assert (await api.client.post("/keys", json=body, headers=api.auth("admin"))).status_code == 201
    again = await api.client.post("/keys", json=body, headers=api.auth("admin"))
    assert again.status_code == 409 and again.json()["field"] == "name"


async def test_deleting_a_link_removes_its_file_once_no_link_uses_it(api: ApiHarness) -> None:
    for code in ("one", "two"):  # the same content: one stored file
        response = await api.client.post(
            "/files", files={"file": ("r.txt", b"shared")}, data={"code": code}, headers=api.auth("editor")
        )
        assert response.status_code == 201
    link = api.ctx.store.get_link("one")
    assert link is not None and link.file is not None
    path = api.ctx.files.path_of(link.file.sha256)
    assert (await api.client.delete("/links/one", headers=api.auth("editor"))).status_code == 204
    assert path.exists()  # "two" still serves it
    assert (await api.client.delete("/links/two", headers=api.auth("editor"))).status_code == 204
    assert not path.exists()
