"""The links in every stopped state that the guard puts into staging's copy."""

from __future__ import annotations

from pathlib import Path

from steadylink.clock import SystemClock
from steadylink.links.migrate import upgrade_to_head
from steadylink.links.service import Outcome, get_link, resolve_link
from steadylink.links.sql_store import open_store
from steadylink.release.stage_fixtures import EXPIRED, NOT_FOUND, add_stage_fixtures
from steadylink.settings import load_settings

STATUS = {Outcome.NOT_FOUND: NOT_FOUND, Outcome.GONE: EXPIRED}


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
