"""The links in every stopped state that the guard puts into staging's copy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from steadylink.clock import SystemClock
from steadylink.links.codes import SystemRandom
from steadylink.links.migrate import upgrade_to_head
from steadylink.links.model import NewLink
from steadylink.links.service import Outcome, create_link, get_link, resolve_link
from steadylink.links.sql_store import open_store
from steadylink.release.stage_fixtures import EXPIRED, NOT_FOUND, add_stage_fixtures, locations_before
from steadylink.settings import load_settings

STATUS = {Outcome.NOT_FOUND: NOT_FOUND, Outcome.GONE: EXPIRED}


def test_the_reference_holds_plain_links_and_their_locations_only(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path)
    store = open_store(settings.database_url)
    try:
        upgrade_to_head(store.engine)
        clock, rng = SystemClock(), SystemRandom()

        def make(**fields: object) -> str:
            new = NewLink(**fields)  # type: ignore[arg-type]
            return create_link(store=store, settings=settings, clock=clock, rng=rng, new=new).code

        plain = make(url="https://example.com/a?b=1")
        accented = make(url="https://example.com/caf\u00e9")
        locked = make(url="https://example.com/secret", password="correct horse")
        expiring = make(url="https://example.com/soon", expires_at=clock.now() + timedelta(days=1))
        before = locations_before(store, [plain, accented, locked, expiring, plain, "missing"])
        assert before == {plain: "https://example.com/a?b=1", accented: "https://example.com/caf%C3%A9"}
    finally:
        store.close()


def test_each_fixture_is_stopped_the_way_its_status_says(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path)
    store = open_store(settings.database_url)
    try:
        upgrade_to_head(store.engine)
        clock = SystemClock()
        expected = add_stage_fixtures(store, settings, clock)
        assert sorted(expected.values()) == [NOT_FOUND, EXPIRED, EXPIRED]
        for code, status in expected.items():
            resolution = resolve_link(link=get_link(store=store, code=code), now=clock.now())
            assert STATUS.get(resolution.outcome) == status, (code, resolution)
        assert store.count_links() == 3  # nothing else was written
    finally:
        store.close()
