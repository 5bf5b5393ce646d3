"""Backups are verified snapshots; restores land whole or not at all (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from steadylink.clock import FakeClock
from steadylink.errors import StoreError
from steadylink.links import service
from steadylink.links.backup import create_backup, restore_backup, verify_backup
from steadylink.links.codes import SystemRandom
from steadylink.links.model import NewLink, VisitRow
from steadylink.links.sql_store import SqlStore
from steadylink.settings import Settings
from steadylink.types import Role


@pytest.fixture
def db_settings(settings: Settings, store: SqlStore) -> Settings:
    return settings.with_overrides(database=store.url)


def _fill(store: SqlStore, settings: Settings, clock: FakeClock, n: int = 3) -> None:
    for i in range(n):
        service.create_link(
            store=store,
            settings=settings,
            clock=clock,
            rng=SystemRandom(),
            new=NewLink(url=f"https://example.com/{i}", code=f"code-{i}", max_visits=i + 1),
        )
        clock.advance(1)
    service.create_key(store=store, clock=clock, name="ci", role=Role.EDITOR)
    day = clock.now().date().isoformat()
    store.fold_visits(["f1"], [VisitRow("code-0", day, "ref.example", "Firefox", False)], at=clock.now())


def scribble_over_pages(data: bytes, page_size: int = 4096) -> bytes:
    """The file with every page header after the first overwritten: a corrupt database."""
    broken = bytearray(data)
    for start in range(page_size, len(broken), page_size):
        broken[start : start + 12] = b"\x0d\xff" * 6
    return bytes(broken)


def _snapshot(store: SqlStore) -> tuple[object, ...]:
    links = [(link.code, link.url, link.visits, link.created_at) for link in store.iter_links()]
    return (links, [k.name for k in store.list_keys()], store.link_stats("code-0").per_day)


def test_backup_is_verified_and_named_by_time(
    store: SqlStore, db_settings: Settings, clock: FakeClock
) -> None:
    _fill(store, db_settings, clock)
    report = create_backup(settings=db_settings, clock=clock)
    assert report.backup.path.name == "links-20260101T000003Z.db"
    assert report.backup.path.parent == (db_settings.data_dir / "backups").absolute()
    assert report.backup.links == 3
    assert report.backup.size == report.backup.path.stat().st_size > 0
    assert verify_backup(report.backup.path).revision == report.backup.revision
    assert sorted(p.name for p in report.backup.path.parent.iterdir()) == [report.backup.path.name]


def test_second_backup_in_the_same_second_gets_its_own_name(
    store: SqlStore, db_settings: Settings, clock: FakeClock
) -> None:
    first = create_backup(settings=db_settings, clock=clock).backup.path
    second = create_backup(settings=db_settings, clock=clock).backup.path
    assert first != second and first.exists() and second.exists()


def test_restore_brings_back_every_table_and_invalidates_caches(
    store: SqlStore, db_settings: Settings, clock: FakeClock
) -> None:
    _fill(store, db_settings, clock)
    before = _snapshot(store)
    backup = create_backup(settings=db_settings, clock=clock).backup.path
    seq, _ = store.invalidations_since(0)
    service.delete_link(store=store, code="code-1")
    service.create_link(
        store=store,
        settings=db_settings,
        clock=clock,
        rng=SystemRandom(),
        new=NewLink(url="https://later.example/", code="later"),
    )
    clock.advance(60)
    report = restore_backup(settings=db_settings, clock=clock, source=backup)
    assert report.restored.links == 3
    assert report.safety_backup is not None and report.safety_backup.links == 3
    assert _snapshot(store) == before
    _, changed = store.invalidations_since(seq)
    assert {"code-0", "code-1", "code-2", "later"} <= set(changed)


def test_restore_refuses_a_corrupt_file_and_changes_nothing(
    store: SqlStore, db_settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    _fill(store, db_settings, clock)
    before = _snapshot(store)
    backup = create_backup(settings=db_settings, clock=clock).backup.path
    broken = tmp_path / "broken.db"
    broken.write_bytes(scribble_over_pages(backup.read_bytes()))
    with pytest.raises(StoreError):
        restore_backup(settings=db_settings, clock=clock, source=broken)
    assert _snapshot(store) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello, not a database", "not an SQLite file"),
        (None, "not a steadylink backup"),
    ],
)
def test_restore_refuses_foreign_files(
    store: SqlStore,
    db_settings: Settings,
    clock: FakeClock,
    tmp_path: Path,
    content: bytes | None,
    message: str,
) -> None:
    _fill(store, db_settings, clock)
    before = _snapshot(store)
    foreign = tmp_path / "foreign.db"
    if content is None:
        with sqlite3.connect(foreign) as conn:
            conn.execute("CREATE TABLE notes (body TEXT)")
        conn.close()
    else:
        foreign.write_bytes(content)
    with pytest.raises(StoreError, match=message):
        restore_backup(settings=db_settings, clock=clock, source=foreign)
    assert _snapshot(store) == before


def test_restore_refuses_an_unknown_revision(
    store: SqlStore, db_settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    backup = create_backup(settings=db_settings, clock=clock).backup.path
    with sqlite3.connect(backup) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    with pytest.raises(StoreError, match="9999"):
        restore_backup(settings=db_settings, clock=clock, source=backup)


def test_restore_that_fails_half_way_rolls_back(
    store: SqlStore, db_settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    _fill(store, db_settings, clock)
    backup = create_backup(settings=db_settings, clock=clock).backup.path
    with sqlite3.connect(backup) as conn:
        # SQLite stores it; reading it back as a timestamp fails half-way
        conn.execute("UPDATE links SET updated_at = 'garbage' WHERE code = 'code-1'")
    conn.close()
    service.delete_link(store=store, code="code-2")
    before = _snapshot(store)
    with pytest.raises(Exception):  # noqa: B017 - the database's own error
        restore_backup(settings=db_settings, clock=clock, source=backup)
    assert _snapshot(store) == before


def test_backup_counts_file_links_whose_file_is_missing(
    store: SqlStore, db_settings: Settings, clock: FakeClock
) -> None:
    from steadylink.links.files import FileStore

    files = FileStore(db_settings.files_dir, max_bytes=1000)
    kept = files.save_bytes(b"kept", name="kept.txt")
    lost = files.save_bytes(b"lost", name="lost.txt")
    for code, stored in (("kept", kept), ("lost", lost)):
        service.create_link(
            store=store,
            settings=db_settings,
            clock=clock,
            rng=SystemRandom(),
            new=NewLink(file=stored, code=code, expires_at=clock.now() + timedelta(days=1)),
        )
    files.path_of(lost.sha256).unlink()
    report = create_backup(settings=db_settings, clock=clock)
    assert (report.file_links, report.missing_files) == (2, 1)
