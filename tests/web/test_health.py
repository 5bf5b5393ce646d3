"""/healthz and /readyz on real stores: reachable, unreachable, not migrated."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import httpx
import pytest
from tests.faults.disk import small_disk

from steadylink.links.sql_store import open_store
from steadylink.settings import Settings
from steadylink.web.app import build_context, create_app

pytestmark = pytest.mark.anyio



async def _get(settings: Settings, path: str, **ctx_changes: object) -> httpx.Response:
    ctx = build_context(settings)
    for name, value in ctx_changes.items():
        setattr(ctx, name, value)
    app = create_app(settings, ctx=ctx, log_stream=io.StringIO())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


async def test_healthz_answers_without_the_database(settings: Settings) -> None:
    unreachable = open_store("postgresql://nobody@127.0.0.1:1/none")
    response = await _get(settings.with_overrides(release_id="r42"), "/healthz", store=unreachable)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "release": "r42"}


async def test_readyz_when_the_store_answers_at_head(settings: Settings) -> None:
    response = await _get(settings, "/readyz")
    assert response.status_code == 200 and response.json()["status"] == "ready"


async def test_readyz_503_when_the_database_is_unreachable(settings: Settings) -> None:
    unreachable = open_store("postgresql://nobody@127.0.0.1:1/none")
    response = await _get(settings, "/readyz", store=unreachable)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready" and "not answering" in body["reason"]


async def test_readyz_503_when_the_schema_is_behind(settings: Settings, tmp_path: Path) -> None:
    empty = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    response = await _get(settings, "/readyz", store=empty)
    assert response.status_code == 503
    assert "steadylink db upgrade" in response.json()["reason"]


async def _metrics(settings: Settings, peer: str, forwarded: str | None = None) -> int:
    app = create_app(settings, ctx=build_context(settings), log_stream=io.StringIO())
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return (await client.get("/metrics", headers=headers)).status_code


@pytest.mark.parametrize(
    ("peer", "forwarded", "status"),
    [
        ("127.0.0.1", None, 200),  # this host's Prometheus
        ("::1", None, 200),
        ("203.0.113.7", None, 404),  # a public client straight at the worker
        ("127.0.0.1", "203.0.113.7", 404),  # a public client through the front door
        ("127.0.0.1", "127.0.0.1", 200),
        ("203.0.113.7", "127.0.0.1", 404),  # a forged header from outside counts for nothing
    ],
)
async def test_metrics_are_for_the_allowed_networks_only(
    settings: Settings, peer: str, forwarded: str | None, status: int
) -> None:
    assert await _metrics(settings, peer, forwarded) == status


async def test_metrics_networks_is_a_setting(settings: Settings) -> None:
    scraper = settings.with_overrides(metrics_networks=("10.0.0.0/8",))
    assert await _metrics(scraper, "127.0.0.1", "10.1.2.3") == 200
    assert await _metrics(scraper, "127.0.0.1", "203.0.113.7") == 404


def _ahead(path: Path, *statements: str) -> None:
    """The database as a newer release's migration 0099 left it."""
    import sqlalchemy as sa

    from steadylink.links.migrate import upgrade_to_head

    engine = sa.create_engine(f"sqlite:///{path}")
    upgrade_to_head(engine)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()


async def test_readyz_ready_on_a_newer_schema_that_fits(settings: Settings, tmp_path: Path) -> None:
    _ahead(tmp_path / "ahead.db", "ALTER TABLE links ADD COLUMN note TEXT")
    ahead = open_store(f"sqlite:///{tmp_path / 'ahead.db'}")
    response = await _get(settings, "/readyz", store=ahead)
    assert response.status_code == 200, response.text


async def test_readyz_503_naming_what_a_newer_schema_dropped(settings: Settings, tmp_path: Path) -> None:
    _ahead(tmp_path / "broken.db", "DROP INDEX ix_links_owner", "ALTER TABLE links DROP COLUMN owner")
    broken = open_store(f"sqlite:///{tmp_path / 'broken.db'}")
    response = await _get(settings, "/readyz", store=broken)
    assert response.status_code == 503
    assert "links.owner is missing" in response.json()["reason"]


async def test_readyz_503_when_the_data_dirs_disk_is_nearly_full(settings: Settings, tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", size="4m") as disk:
        on_disk = settings.with_overrides(data_dir=disk)
        reserve = dataclasses.replace(on_disk.store, disk_reserve_bytes=1024 * 1024)
        on_disk = dataclasses.replace(on_disk, store=reserve)
        assert (await _get(on_disk, "/readyz")).status_code == 200  # ~3 MB free, 1 MB kept
        filler = disk / "filler"
        with filler.open("wb") as out:
            out.write(b"\0" * 3 * 1024 * 1024)
        response = await _get(on_disk, "/readyz")
        assert response.status_code == 503
        assert "disk is (nearly) full" in response.json()["reason"]
